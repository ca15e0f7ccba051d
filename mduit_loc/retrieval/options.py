"""Options of ``build_index`` and ``localize``; each field mirrors a CLI flag of ``index`` / ``query``.

Keyword-only, and nested rather than copied: the FAISS index settings are an ``IndexParams``, the
image loading settings an ``ExtractOptions``, the search settings a ``SearchOptions``::

    IndexOptions(params=IndexParams(type="ivf-pq"), extract=ExtractOptions(batch_size=32), translate_db=True)
    QueryOptions(search=SearchOptions(k=5, per_camera=True), pose="pnp", device=torch.device("cuda"))
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from mduit_loc.errors import MduitError
from mduit_loc.retrieval.extract import ExtractOptions
from mduit_loc.retrieval.faiss_index import IndexParams
from mduit_loc.retrieval.pose_estimation import DEFAULT_ALPHA, POSE_METHODS
from mduit_loc.retrieval.query_translation import QueryTranslationOptions
from mduit_loc.retrieval.refine import RefineOptions
from mduit_loc.retrieval.search import SearchOptions
from mduit_loc.retrieval.translated_db import AppearanceOptions
from mduit_loc.runtime import default_device

DEFAULT_FUSE_WEIGHT = 0.5   # --fuse-translations without a value; the comparisons' (Table 1, demo, Nordland) weight


@dataclass(kw_only=True)
class IndexOptions:
    params: IndexParams = field(default_factory=IndexParams)       # --index-type, --nlist, --pq-m, --pq-nbits, --nprobe
    extract: ExtractOptions = field(default_factory=ExtractOptions)  # --batch-size, --num-workers, --on-error,
    #                                                                  --fp16, --overwrite, --no-progress
    translate_db: bool = False             # --translate-db
    translator: str | None = None          # --translator RUN (default: the model, if MDUIT)
    appearances: AppearanceOptions = field(default_factory=AppearanceOptions)
    save_translations: bool = False        # --save-translations
    # --fuse-translations W: one vector per database image, normalise((1 - W) z(original) + W mean z(copies)),
    # instead of one vector per copy searched with a maximum (None, the paper's augmentation), which lets a
    # blurred copy of a wrong place win (measured in docs/results/table1.md); the index is also smaller.
    fuse_translations: float | None = None
    image_root: str | None = None          # --image-root (COLMAP maps)
    device: torch.device = field(default_factory=default_device)   # --device

    def __post_init__(self) -> None:
        if self.fuse_translations is not None:
            if not self.translate_db:
                raise MduitError("--fuse-translations needs --translate-db (there are no translated copies to fuse)")
            if not 0.0 <= self.fuse_translations <= 1.0:
                raise MduitError(f"--fuse-translations must be in [0, 1], got {self.fuse_translations}")


@dataclass(kw_only=True)
class QueryOptions:
    search: SearchOptions = field(default_factory=SearchOptions)     # --top-k, --per-camera, --per-location, --nprobe
    extract: ExtractOptions = field(default_factory=ExtractOptions)  # --batch-size, --num-workers, --on-error,
    #                                                                  --no-progress (also of the PnP stage)
    pose: str = "top1"                     # --pose top1|mean|weighted|pnp
    pose_top_k: int | None = None          # --pose-top-k (images averaged; default: --top-k)
    alpha: float = DEFAULT_ALPHA           # --alpha (weighted)
    model: str | None = None               # --model (default: the model stored in the index)
    data: str | None = None                # --data (dataset for locations, intrinsics, 3D; default: the index's)
    image_root: str | None = None          # --image-root (for list files)
    split: str = "all"                     # --split test|train|all (dataset given as --images)
    refine: RefineOptions = field(default_factory=RefineOptions)
    translate_queries: QueryTranslationOptions | None = None        # --translate-queries-to, --translator
    device: torch.device = field(default_factory=default_device)   # --device (description and search)

    def __post_init__(self) -> None:
        if self.pose not in POSE_METHODS:
            raise MduitError(f"--pose must be one of {', '.join(POSE_METHODS)}, got {self.pose!r}")

"""Options of ``build_index`` and ``localize``; each field mirrors a CLI flag of ``index`` / ``query``."""
from __future__ import annotations

from dataclasses import dataclass, field

from mduit_loc.retrieval.extract import ExtractOptions
from mduit_loc.retrieval.index import IndexParams
from mduit_loc.retrieval.pose_estimation import DEFAULT_ALPHA, POSE_METHODS
from mduit_loc.retrieval.refine import RefineOptions
from mduit_loc.retrieval.translated_db import AppearanceOptions
from mduit_loc.errors import MduitError


@dataclass
class IndexOptions:
    index_type: str = "flat"               # --index-type flat|ivf|ivf-pq
    nlist: int | None = None               # --nlist
    pq_m: int | None = None                # --pq-m
    pq_nbits: int = 8                      # --pq-nbits
    nprobe: int | None = None              # --nprobe (stored default for queries)
    translate_db: bool = False             # --translate-db
    translator: str | None = None          # --translator RUN (default: the model, if MDUIT)
    appearances: AppearanceOptions = field(default_factory=AppearanceOptions)
    save_translations: bool = False        # --save-translations
    image_root: str | None = None          # --image-root (COLMAP maps)
    batch_size: int = 16                   # --batch-size
    num_workers: int | None = None         # --num-workers
    on_error: str = "fail"                 # --on-error fail|skip
    fp16: bool = False                     # --fp16 (HDF5 descriptors)
    overwrite: bool = False                # --overwrite (re-extract descriptors)
    device: str = "auto"                   # --device
    progress: bool = True

    def params(self) -> IndexParams:
        return IndexParams(self.index_type, self.nlist, self.pq_m, self.pq_nbits, self.nprobe)

    def extract(self) -> ExtractOptions:
        return ExtractOptions(self.batch_size, self.num_workers, self.on_error, self.fp16, self.overwrite,
                              self.progress)


@dataclass
class QueryOptions:
    top_k: int = 10                        # --top-k
    per_camera: bool = False               # --per-camera
    per_location: bool = False             # --per-location
    pose: str = "top1"                     # --pose top1|mean|weighted|pnp
    pose_top_k: int | None = None          # --pose-top-k (images averaged; default: --top-k)
    alpha: float = DEFAULT_ALPHA           # --alpha (weighted)
    nprobe: int | None = None              # --nprobe (IVF indexes)
    model: str | None = None               # --model (default: the model stored in the index)
    data: str | None = None                # --data (dataset for locations, intrinsics, 3D; default: the index's)
    image_root: str | None = None          # --image-root (for list files)
    split: str = "all"                     # --split test|train|all (dataset given as --images)
    refine: RefineOptions = field(default_factory=RefineOptions)
    batch_size: int = 16
    num_workers: int | None = None
    on_error: str = "fail"
    device: str = "auto"
    query_chunk: int = 256                 # queries per search chunk (bounds memory)
    progress: bool = True

    def __post_init__(self):
        if self.pose not in POSE_METHODS:
            raise MduitError(f"--pose must be one of {', '.join(POSE_METHODS)}, got {self.pose!r}")
        if self.top_k < 1:
            raise MduitError(f"--top-k must be >= 1, got {self.top_k}")

    def extract(self) -> ExtractOptions:
        return ExtractOptions(self.batch_size, self.num_workers, self.on_error, progress=self.progress)

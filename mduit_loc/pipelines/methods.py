"""What a comparison is made of: the methods (how each is trained and indexed) and one retrieval protocol."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from mduit_loc.errors import MduitError
from mduit_loc.retrieval.options import DEFAULT_FUSE_WEIGHT
from mduit_loc.runtime import default_device

METHOD_KINDS = ("mduit", "netvlad", "raw")
RAW_PIXELS_SPEC = "raw-pixels"     # the untrained baseline: a 16 x 16 normalised thumbnail
# Translated databases of the comparisons fuse each image's copies into its vector at this weight
# (``IndexOptions.fuse_translations``): keeping each copy as its own vector let blurred copies of wrong
# places win (Table 1's Full, night: 29.4 % with the best copy, 34.0 % fused, 33.3 % without copies).
FUSED_WEIGHT = DEFAULT_FUSE_WEIGHT


@dataclass(frozen=True, kw_only=True)
class MethodSpec:
    """A method of the comparison: how to train it and how to index with it."""

    label: str                     # shown in tables ("NetVLAD", "w/o I2I, NCE", "Full", ...)
    key: str                       # folder name ("netvlad", "mduit-full", ...)
    kind: str                      # "netvlad", "mduit" or "raw" (raw pixels: nothing to train)
    # MDUIT: TranslationConfig settings of this variant (the ablations: {"use_i2i": False, ...})
    train_settings: dict[str, Any] = field(default_factory=dict)
    translate_db: bool = False     # index translated copies of the database (needs the I2I module)
    # with translate_db: fuse the copies into each image's vector at this weight; None: one vector per
    # copy, an image scoring its best copy (the paper's rule)
    fuse_translations: float | None = None
    view: str | None = None        # MDUIT descriptor view ("content:4x4" -> RUN#content:4x4); None: z
    trained_by: str | None = None  # key of the method whose model this one reuses (no training of its own)
    # Query-side translation: queries translated into this condition before they are described, by the
    # model of the MDUIT method ``translator`` (a key); the database is indexed as without it.
    translate_queries_to: str | None = None
    translator: str | None = None

    @property
    def run_key(self) -> str:
        """The run folder (``runs/<run_key>``) holding this method's model."""
        return self.trained_by or self.key

    @property
    def index_key(self) -> str:
        """The index folder: rows that describe the database alike share one."""
        return self.run_key + (f"-{self.view.replace(':', '-')}" if self.view else "") + \
            ("-translated-db" if self.translate_db else "") + \
            (f"-fused{self.fuse_translations:g}" if self.fuse_translations is not None else "")

    def __post_init__(self) -> None:
        if self.fuse_translations is not None and not self.translate_db:
            raise MduitError(f"method {self.key}: fuse_translations needs translate_db (no copies to fuse)")


@dataclass(frozen=True, kw_only=True)
class RetrievalProtocol:
    """How queries are localized; the same for every method of a comparison."""

    per_camera: bool = True
    per_location: bool = True
    pose: str = "top1"
    top_k: int = 10
    batch_size: int = 16
    num_workers: int | None = None
    device: torch.device = field(default_factory=default_device)
    progress: bool = True

    def describe(self) -> str:
        masks = [m for m, on in (("same camera", self.per_camera), ("same location", self.per_location)) if on]
        where = f"retrieval restricted to the {' and '.join(masks)}" if masks else "retrieval over the whole map"
        pose = ("the pose of the top-1 database image" if self.pose == "top1"
                else f"the pose from the retrieved database images ({self.pose})")
        return f"{where}; {pose}"

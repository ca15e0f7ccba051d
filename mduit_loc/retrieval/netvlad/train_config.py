"""Hyper-parameters of NetVLAD training, and the training budget shared with MDUIT comparisons.

Paper settings (Arandjelović et al. 2016) where they apply: K = 64, margin m = 0.1 on squared
distances, 10 hard negatives per query from a pool of 1000, positives within the GPS radius
(here 7 m and 8 degrees, the MDUIT thresholds), negatives beyond 25 m, VGG-16 trained from
conv5 upwards. CPU defaults (``light``) are smaller: K = 32, 5 negatives, 128 px images.

Budget: a run stops at the first of ``epochs``, ``max_steps`` or ``max_seconds`` (``epochs=None``:
no epoch limit). One step
back-propagates ``batch_size * (2 + n_negatives)`` images (``images_per_step``); run.json
reports steps, images seen and wall seconds so that MDUIT and NetVLAD can be given the
same budget by either measure.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TypeVar, cast

from mduit_loc.errors import MduitError
from mduit_loc.retrieval.netvlad.backbones import BACKBONES, LIGHT_CHANNELS
from mduit_loc.retrieval.netvlad.model import NetVLADArchitecture

LOSSES = ("triplet", "contrastive")
DEFAULT_CLUSTERS = {"vgg16": 64, "light": 32}
DEFAULT_IMAGE_SIZE = {"vgg16": (240, 320), "light": (128, 128)}
DEFAULT_LR = {"vgg16": 1e-5, "light": 1e-3}
# VGG-16 is fine-tuned from conv5_1 upwards (the paper's best setting); features.24 is conv5_1.
VGG16_FIRST_TRAINED_MODULE = 24


@dataclass(kw_only=True)
class NetVLADTrainConfig:
    backbone: str = "light"
    num_clusters: int | None = None              # None: 64 for vgg16, 32 for light
    light_channels: tuple[int, ...] = LIGHT_CHANNELS
    assignment_bias: bool = False
    image_size: tuple[int, int] | None = None    # (H, W); None: 240x320 vgg16, 128x128 light
    # --- weak supervision -------------------------------------------------------------------
    positive_distance_m: float = 7.0
    positive_angle_deg: float = 8.0
    negative_distance_m: float = 25.0
    cross_domain_positives: bool = True          # prefer positives from another condition
    n_negatives: int = 5                         # per anchor (paper 10)
    negative_pool: int = 1000                    # random images searched for hard negatives
    anchors_per_epoch: int | None = None         # None: every eligible image
    # --- loss and optimisation ----------------------------------------------------------------
    loss: str = "triplet"                        # triplet (paper) or contrastive
    margin: float = 0.1                          # triplet: on squared distances
    contrastive_margin: float = 0.7              # contrastive: on distances
    batch_size: int = 4                          # anchors (tuples) per step
    lr: float | None = None                      # None: 1e-5 vgg16 (fine-tuning), 1e-3 light
    weight_decay: float = 0.0
    fine_tune_all: bool = False                  # vgg16: also train conv1-conv4
    # --- budget -------------------------------------------------------------------------------
    epochs: int | None = 5                       # None: no epoch limit (max_steps or max_seconds ends the run)
    max_steps: int | None = None
    max_seconds: float | None = None
    # --- initialisation and whitening ---------------------------------------------------------
    kmeans_images: int = 500
    kmeans_descriptors: int = 50000
    kmeans_iterations: int = 25
    whiten_dim: int | None = None                # PCA-whiten to this size after training
    pca_images: int = 2000
    # --- machinery ----------------------------------------------------------------------------
    describe_batch_size: int = 16
    num_workers: int | None = None               # None: runtime.default_num_workers()
    mixed_precision: bool = True                 # CUDA only
    checkpoint_every: int = 200                  # steps (and at every epoch end)
    seed: int = 0

    def __post_init__(self) -> None:
        self.light_channels = tuple(int(c) for c in self.light_channels)
        if self.backbone not in BACKBONES:
            raise MduitError(f"--backbone must be one of {', '.join(BACKBONES)}, got {self.backbone!r}")
        if self.num_clusters is None:
            self.num_clusters = DEFAULT_CLUSTERS[self.backbone]
        if self.image_size is None:
            self.image_size = DEFAULT_IMAGE_SIZE[self.backbone]
        # lists from JSON; a wrong length is reported by validate()
        self.image_size = cast("tuple[int, int]", tuple(int(v) for v in self.image_size))
        if self.lr is None:
            self.lr = DEFAULT_LR[self.backbone]
        self.validate()

    # The backbone-dependent settings once construction has filled in their defaults (never None).
    @property
    def size(self) -> tuple[int, int]:
        """``image_size`` (H, W)."""
        return _resolved(self.image_size, "image_size")

    @property
    def clusters(self) -> int:
        """``num_clusters`` (K)."""
        return _resolved(self.num_clusters, "num_clusters")

    @property
    def learning_rate(self) -> float:
        """``lr``."""
        return _resolved(self.lr, "lr")

    def validate(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise MduitError(f"NetVLAD training config: {message}")

        need(self.loss in LOSSES, f"loss must be one of {LOSSES}")
        need(len(self.size) == 2 and min(self.size) >= 16, "image_size must be (H, W) >= 16 px")
        need(self.clusters >= 1 and self.n_negatives >= 1 and self.batch_size >= 1, "num_clusters, "
             "n_negatives and batch_size must be >= 1")
        need(self.epochs is None or self.epochs >= 1, "epochs must be >= 1")
        need(self.epochs is not None or self.max_steps is not None or self.max_seconds is not None,
             "epochs=None (no epoch limit) needs max_steps or max_seconds to end the run")
        need(self.max_steps is None or self.max_steps >= 1, "max_steps must be >= 1")
        need(self.max_seconds is None or self.max_seconds > 0, "max_seconds must be > 0")
        need(self.negative_pool >= self.n_negatives, "negative_pool must be >= n_negatives")
        need(self.positive_distance_m < self.negative_distance_m, "positives must be closer than negatives")
        need(self.whiten_dim is None or self.whiten_dim >= 1, "whiten_dim must be >= 1")
        need(self.kmeans_images >= 1 and self.kmeans_descriptors >= self.clusters,
             "k-means needs images and at least num_clusters descriptors")

    @property
    def images_per_step(self) -> int:
        return self.batch_size * (2 + self.n_negatives)

    def architecture(self) -> NetVLADArchitecture:
        """Without whitening: it is added (and recorded) only once PCA has been fitted."""
        return NetVLADArchitecture(backbone=self.backbone, num_clusters=self.clusters,
                                   light_channels=self.light_channels, assignment_bias=self.assignment_bias,
                                   whiten_dim=None, image_size=self.size)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "NetVLADTrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    # Fields that change what is trained (a resumed run must not change them).
    MODEL_FIELDS = ("backbone", "num_clusters", "light_channels", "assignment_bias", "image_size",
                    "n_negatives", "batch_size", "loss", "seed", "fine_tune_all")


T = TypeVar("T")


def _resolved(value: T | None, name: str) -> T:
    if value is None:  # __post_init__ fills every one in
        raise AssertionError(f"NetVLADTrainConfig.{name} was not resolved")
    return value


def parse_image_size(text: str) -> tuple[int, int]:
    """``"256"`` -> (256, 256); ``"240x320"`` -> (240, 320) (height x width)."""
    try:
        parts = [int(v) for v in str(text).lower().split("x")]
    except ValueError:
        raise MduitError(f"--image-size {text!r}: expected PX or HxW, e.g. 128 or 240x320") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 16:
        raise MduitError(f"--image-size {text!r}: expected PX or HxW with sides >= 16")
    return parts[0], parts[1]

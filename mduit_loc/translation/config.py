"""MDUIT hyper-parameters: one flat dataclass, two presets (``tiny`` and ``paper``).

``paper`` holds the published settings (Jeong et al., §3.1): content channels c = 256, appearance
filter 256 x 256 x 5 x 5 applied as a grouped convolution with 256 groups (one 1 x 5 x 5 filter per
channel), VGG-16 ``relu3_3`` appearance features, N(0, 0.001) initialisation, Adam (lr 2e-4,
betas 0.5/0.999), batch 1, 35 + 15 epochs, m_c = 0.1, tau = 0.07, N_neg = 16 and loss weights
(rs, rc, cc, ca, NCE) = (100, 100, 10, 1, 1). What the paper leaves open is chosen here and
documented per field (image size 256, descriptor dimension K = 1024, MUNIT-sized networks).

``tiny`` keeps every mechanism but shrinks widths and image size so that a run on ~400 images
finishes in a few minutes on two CPU cores; it keeps PyTorch's default initialisation, with which
its short runs learn faster than with a small Gaussian (measured in the tests and on the synthetic
benchmark).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, cast

from mduit_loc.errors import ConfigMismatchError, MduitError

PRESETS = ("tiny", "tiny-translator", "paper")
GAN_MODES = ("nonsaturating", "lsgan")
NEGATIVE_MINING = ("random", "hard", "mixed")
HEAD_KINDS = ("grid", "gem-mlp", "netvlad")
TRANSLATED_POSITIVE = ("backprop", "detached", "off")
GENERATOR_NORMS = ("ln", "none")
TARGET_CHOICES = ("z", "pose")
NCE_ABLATION_LOSSES = ("l1", "margin")
PAIRED_NORMS = ("l1", "l2")


@dataclass(kw_only=True)
class TranslationConfig:
    preset: str = "tiny"
    # --- images -----------------------------------------------------------------------------
    image_size: tuple[int, int] = (64, 64)        # (H, W) training resolution
    # --- content encoder E_c (MUNIT-style: stem, strided convs, residual blocks, IN) -------------
    encoder_base_channels: int = 8                # c = base * 2**n_downsample
    n_downsample: int = 2
    encoder_res_blocks: int = 1
    # --- appearance filter encoder E_a ----------------------------------------------------------
    vgg_layer: str = "relu3_3"                    # as the paper; relu2_2 is a lighter option
    appearance_input_size: int | None = 32        # resize the appearance image to this square size
    appearance_hidden: int = 64                   # channels of E_a's conv layers after VGG
    appearance_convs: int = 2                     # stride-2 3x3 convs before average pooling
    freeze_vgg: bool | None = None                # None: frozen iff pretrained weights were given
    filter_size: int = 5                          # k
    filter_groups: int = 32                       # groups of f ⊗ W; = c gives one 1xkxk filter/channel
    # --- generator G ---------------------------------------------------------------------------
    generator_res_blocks: int = 1
    generator_norm: str = "ln"                    # ln (layer norm, MUNIT's decoder) or none
    # Beyond the paper: G also reads each pixel's row and column (CoordConv): with reflect padding a fully
    # convolutional G cannot know where in the frame it paints, so it cannot put a condition's sky,
    # lamps or headlight cone in their place (docs/results/translation.md#what-limits-it-earlier-rendering)
    generator_coordinates: bool = False
    generator_width: int = 0                      # channels of G's first stage (0: c, the content channels)
    # --- discriminators D_i, D_a ------------------------------------------------------------------
    disc_base_channels: int = 16
    disc_layers: int = 3
    gan_mode: str = "nonsaturating"               # eq. 2's log form (non-saturating G), or lsgan
    # --- projection head H (see head.py) ----------------------------------------------------------
    head: str = "grid"                            # grid (spatial cells; measured best), gem-mlp (the paper's H)
                                                  # or netvlad (NetVLAD aggregation of E_c)
    head_grid: tuple[int, int] = (4, 4)           # cells of the grid head
    head_clusters: int = 16                       # clusters of the netvlad head
    head_hidden: int = 128                        # gem-mlp only
    descriptor_dim: int = 128                     # K; the grid head's projection (0: no projection, c * cells)
    gem_p: float = 3.0
    # --- initialisation -------------------------------------------------------------------------
    init_std: float | None = None                 # paper 0.001; None keeps PyTorch's defaults (tiny: learns
                                                  # faster than N(0, 0.02) in the tests and on the synthetic set)
    # --- losses (eq. 2-6) -----------------------------------------------------------------------
    content_margin: float = 0.1                   # m_c
    nce_temperature: float = 0.07                 # tau
    n_negatives: int = 8                          # N_neg (paper 16)
    weight_adv_image: float = 1.0
    weight_adv_appearance: float = 1.0
    weight_rec_self: float = 100.0                # beta_rs
    weight_rec_cycle: float = 100.0               # beta_rc
    weight_con_content: float = 10.0              # beta_cc
    weight_con_appearance: float = 1.0            # beta_ca
    weight_nce: float = 1.0                       # beta_NCE
    # Beyond the paper: where the target I_t shows the source's place (poses or place labels), L1
    # between I_{s->t} and I_t average-pooled onto paired_grid cells: coarse colour layout only, which
    # survives the up to 7 m / 8 degrees between the two views (0 turns it off).
    weight_paired: float = 0.0
    paired_grid: tuple[int, int] = (4, 4)
    # The layout loss's distance per cell: "l1" pulls a cell towards the median over the same-place views it
    # meets, "l2" towards their mean, the colour that PSNR (a mean squared error) rewards
    paired_norm: str = "l1"
    # How the target I_t is chosen among the same-place images of other domains: the most similar by z
    # (§3.1) or the nearest posed view ("pose", beyond the paper), which brings the layout loss's pairs
    # closer to pixel-aligned
    target_choice: str = "z"
    # Beyond the paper: each domain's filters kept together, max(0, 1 - cos(W_t, W_t+) + cos(W_t, W_t-))
    # with I_t+ another image of the target's domain and I_t- one of another domain, so that a domain's
    # mean filter describes the domain (E_a learns from scratch without ImageNet weights; 0 turns it off).
    weight_domain_filters: float = 0.0
    # --- pairing and negatives (§3.1) ------------------------------------------------------------
    # Images within both thresholds show the same place: positives of each other, never negatives.
    negative_min_distance_m: float = 7.0
    negative_min_angle_deg: float = 8.0
    place_sequence_tolerance: int | None = None   # place labels as frame numbers: within this many = same place
    pose_positives: bool = True                   # real same-place images are positives too (§3.1), not only I_{s->t}
    in_batch_negatives: bool = True               # every other real image of the step that is not the same place
    # How I_{s->t} enters the NCE loss: as eq. 5 (gradients reach G through it), as a fixed augmented
    # copy ("detached": no gradient into G), or not at all ("off": real positives only)
    translated_positive: str = "backprop"
    # Beyond the paper: with I2I, the w/o I2I ablation's colour-jittered copy of the source is a third
    # positive beside the real image and I_{s->t} (Full then holds everything w/o I2I learns from)
    jitter_positive: bool = False
    # Whether the translation losses (adversarial, reconstruction, content consistency, layout) train E_c. False:
    # G reads a detached content code and E_c(I_{s->t}) runs with frozen weights (gradients still reach G
    # through it), so E_c and H learn from the contrastive module alone (a diagnostic of the w/o NCE row)
    translation_trains_content: bool = True
    negative_mining: str = "mixed"                # random, hard (most similar beyond the thresholds) or half of each
    # --- ablations (Table 1) ---------------------------------------------------------------------
    use_i2i: bool = True                          # False: colour-jittered copy replaces I_{s->t}
    use_nce: bool = True                          # False: nce_ablation_loss replaces NCE
    # What replaces eq. 5 when use_nce is False: the paper's "simple L1 consistency loss between the positive
    # vectors" ("l1"; with nothing pushing places apart z collapses towards a constant: 9.0 % at night, below
    # raw pixels), or eq. 4's margin form on z ("margin": max(0, D(z_s, z_p) - D(z_s, z_n) + m_c), D the cosine
    # distance, averaged over the active pairs), which keeps the negatives but drops eq. 5's softmax
    nce_ablation_loss: str = "l1"
    # --- optimisation ------------------------------------------------------------------------
    batch_size: int = 8                           # samples per step (contrastive module)
    translation_batch_size: int | None = None     # of which the first this many also train translation (None: all)
    epochs: int | None = 4                        # None: no epoch limit (max_steps or the time budget ends the run)
    max_steps: int | None = None                  # overrides epochs; the lr schedule spans these steps
    time_budget_min: float | None = None          # wall-clock cap; the schedule is fitted to it (see budget)
    lr: float = 2e-4
    lr_descriptor: float | None = None            # E_c and H (the descriptor's networks); None: lr
    beta1: float = 0.5
    beta2: float = 0.999
    constant_lr_fraction: float = 0.7             # paper: 35 of 50 epochs constant, then linear to 0
    mixed_precision: bool = True                  # CUDA only (bf16, or fp16 with loss scaling)
    channels_last: bool = False                   # speed only: NHWC activations (cuDNN tensor-core kernels)
    compile_model: bool = False                   # speed only: torch.compile each network (eager if it fails)
    # Beyond the paper: the model written at the end is an exponential moving average of the training weights
    # with this decay per step (weight_average.py; GAN toolkits evaluate such an average); 0: the last weights
    ema_decay: float = 0.0
    seed: int = 0
    # --- bookkeeping -------------------------------------------------------------------------
    checkpoint_every: int = 100                   # steps
    checkpoint_every_s: float = 60.0              # ... and seconds (a slow run can still be resumed early)
    log_every: int = 1                            # steps per CSV row
    pairing_batch_size: int = 64
    cache_limit_mb: int = 2048                    # decoded training images kept in RAM below this size
    appearance_samples_per_domain: int = 32       # images averaged into each domain's mean filter
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes (kept in run.json)

    def __post_init__(self) -> None:
        # lists from JSON; a wrong length is reported by validate()
        self.image_size = cast("tuple[int, int]", tuple(int(v) for v in self.image_size))
        self.head_grid = cast("tuple[int, int]", tuple(int(v) for v in self.head_grid))
        self.paired_grid = cast("tuple[int, int]", tuple(int(v) for v in self.paired_grid))
        self.validate()

    @property
    def content_channels(self) -> int:
        return self.encoder_base_channels * 2 ** self.n_downsample

    @property
    def downsample_factor(self) -> int:
        return 2 ** self.n_downsample

    @property
    def filter_shape(self) -> tuple[int, int, int, int]:
        """(c', c / groups, k, k) of one image's appearance filter W (c' = c here)."""
        c = self.content_channels
        return (c, c // self.filter_groups, self.filter_size, self.filter_size)

    @property
    def rows_per_sample(self) -> int:
        """Images loaded per training sample: source, target, target+, target-, real positive, negatives."""
        return 5 + self.n_negatives

    def validate(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise MduitError(f"translation config: {message}")

        need(self.preset in PRESETS or self.preset == "custom", f"preset must be one of {PRESETS}")
        need(len(self.image_size) == 2 and min(self.image_size) >= 4 * self.downsample_factor,
             f"image_size {self.image_size} must be (H, W), each >= {4 * self.downsample_factor}")
        need(all(v % self.downsample_factor == 0 for v in self.image_size),
             f"image_size {self.image_size} must be a multiple of {self.downsample_factor} (2**n_downsample)")
        need(self.filter_size % 2 == 1, f"filter_size must be odd, got {self.filter_size}")
        need(self.filter_groups >= 1 and self.content_channels % self.filter_groups == 0,
             f"filter_groups {self.filter_groups} must divide the content channels {self.content_channels}")
        need(self.gan_mode in GAN_MODES, f"gan_mode must be one of {GAN_MODES}, got {self.gan_mode!r}")
        need(self.negative_mining in NEGATIVE_MINING,
             f"negative_mining must be one of {NEGATIVE_MINING}, got {self.negative_mining!r}")
        need(self.generator_norm in GENERATOR_NORMS,
             f"generator_norm must be one of {GENERATOR_NORMS}, got {self.generator_norm!r}")
        need(self.nce_ablation_loss in NCE_ABLATION_LOSSES,
             f"nce_ablation_loss must be one of {NCE_ABLATION_LOSSES}, got {self.nce_ablation_loss!r}")
        need(self.paired_norm in PAIRED_NORMS, f"paired_norm must be one of {PAIRED_NORMS}, got {self.paired_norm!r}")
        need(self.target_choice in TARGET_CHOICES,
             f"target_choice must be one of {TARGET_CHOICES}, got {self.target_choice!r}")
        need(self.head in HEAD_KINDS, f"head must be one of {HEAD_KINDS}, got {self.head!r}")
        need(self.translated_positive in TRANSLATED_POSITIVE,
             f"translated_positive must be one of {TRANSLATED_POSITIVE}, got {self.translated_positive!r}")
        need(len(self.head_grid) == 2 and min(self.head_grid) >= 1,
             f"head_grid must be (H, W) >= 1, got {self.head_grid}")
        need(self.descriptor_dim >= 0 and (self.descriptor_dim > 0 or self.head in ("grid", "netvlad")),
             "descriptor_dim must be > 0 (0 is allowed for the grid and netvlad heads: no projection)")
        need(self.head_clusters >= 1, f"head_clusters must be >= 1, got {self.head_clusters}")
        need(self.place_sequence_tolerance is None or self.place_sequence_tolerance >= 0,
             "place_sequence_tolerance must be >= 0")
        need(self.n_negatives >= 1, "n_negatives must be >= 1")
        need(self.batch_size >= 1 and (self.epochs is None or self.epochs >= 1), "batch_size and epochs must be >= 1")
        need(self.epochs is not None or self.max_steps is not None or self.time_budget_min is not None,
             "epochs=None (no epoch limit) needs max_steps or time_budget_min to end the run")
        need(self.max_steps is None or self.max_steps >= 1, "max_steps must be >= 1")
        need(self.lr > 0 and (self.lr_descriptor is None or self.lr_descriptor > 0), "learning rates must be > 0")
        need(self.translation_batch_size is None or self.translation_batch_size >= 1,
             "translation_batch_size must be >= 1 (a larger value than batch_size means all samples)")
        need(self.time_budget_min is None or self.time_budget_min > 0, "time_budget_min must be > 0")
        need(0.0 <= self.constant_lr_fraction <= 1.0, "constant_lr_fraction must be in [0, 1]")
        need(self.checkpoint_every >= 1 and self.log_every >= 1, "checkpoint_every and log_every must be >= 1")
        need(self.nce_temperature > 0, "nce_temperature must be > 0")
        need(self.generator_width == 0 or self.generator_width >= 2 ** self.n_downsample,
             f"generator_width must be 0 (the content channels) or >= {2 ** self.n_downsample}")
        need(self.weight_domain_filters >= 0 and self.weight_paired >= 0, "loss weights must be >= 0")
        need(0.0 <= self.ema_decay < 1.0, f"ema_decay must be in [0, 1) (0: no average), got {self.ema_decay}")

    # --- (de)serialisation -----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["image_size"] = list(self.image_size)
        data["head_grid"] = list(self.head_grid)
        data["paired_grid"] = list(self.paired_grid)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "config") -> "TranslationConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigMismatchError(f"{where}: unknown translation settings {unknown}; "
                                      "was it written by a newer mduit-loc?")
        # Runs saved before the grid head and the pose-supervised positives existed were trained with
        # the paper's H and translated positives only: read them as what they are.
        legacy = {"head": "gem-mlp", "pose_positives": False, "in_batch_negatives": False}
        return cls(**{**legacy, **data} if "head" not in data else data)


# The CPU recipe of the tiny preset, measured on the synthetic `small` benchmark (docs/results/learning.md):
# - the contrastive module learns from many samples (32 per step, in-batch negatives), the translation
#   module from the first 8 of them (its step costs ~4x more per sample);
# - E_c and H learn at 1e-3 with Adam's usual momentum; E_a, G and the discriminators at the paper's
#   2e-4 with beta1 = 0.5;
# - beta_NCE = 10: with the paper's 1 the reconstruction losses (x100) dominate E_c's gradient and the
#   descriptor stays below an untrained thumbnail at night (83.7 / 31.4 % against 91.4 / 51.1 % day /
#   night at 5 m / 10 degrees after 500 steps);
# - I_{s->t} is a positive of the NCE loss as a fixed augmented copy (no gradient into G through it);
# - the grid head without projection (c x 16 = 512-D);
# - G reads each pixel's position, and the weakly-paired layout loss (weight 200 on 8 x 8 cells) teaches
#   it each condition's colour layout: +1.64 / +2.49 dB PSNR day -> night / night -> day over a global
#   colour transfer after 1000 steps, against +0.62 / +0.93 with weight 10 on 4 x 4 cells and no position;
#   weight 400 / 800 translate a little better (+1.87 / +1.93 dB day -> night) but lower z at night
#   (26.8 / 24.8 against 29.4 %) (docs/results/translation.md);
# - the target I_t is the nearest posed view of the same place, not the most similar by z: z's night recall
#   37.7 / 45.4 % on seeds 0 / 1 against 34.0 / 39.7 %, translation +0.09 / +0.09 dB
#   (docs/results/translation.md#the-target-by-pose).
# - the w/o NCE ablations replace eq. 5 by eq. 4's margin form on z, not by the paper's plain L1 pull, which
#   collapses z (9.0 % at night, below raw pixels' 14.5 %) and so measures nothing (docs/results/table1.md).
TINY_RECIPE: dict[str, Any] = dict(
    batch_size=32, translation_batch_size=8, n_negatives=4, lr_descriptor=1e-3, weight_nce=10.0,
    translated_positive="detached", descriptor_dim=0,
    generator_coordinates=True, weight_paired=200.0, paired_grid=(8, 8), target_choice="pose",
    nce_ablation_loss="margin",
)


# The tiny preset tuned for translation rather than for z (for `mduit-loc query --translate-queries-to` or
# `mduit-loc translate`), measured on `small` after 1000 steps (docs/results/translation.md):
# - the layout loss 4x stronger (towards the nearest posed view, as tiny's): seeds 0 / 1 / 2 give +1.86 / +1.85 /
#   +1.80 dB day -> night and +3.17 / +3.81 / +3.47 night -> day over colour transfer on the whole aligned set;
# - a quarter of the adversarial weights: +0.1 dB day -> night and +0.3-0.6 night -> day on both seeds measured;
# - E_c downsampling once, not twice, with twice the base channels (the same 32 content channels, on a 32x32 map
#   instead of 16x16; parameters unchanged, 1.7x the seconds per step): the translations keep the facades'
#   windows, doors and trees where the 16x16 map smeared them into streaks (grids viewed), and queries translated
#   into overcast-reference keep more of the thumbnail's day recall (58.5 / 61.9 % on seeds 0 / 1 against 54.3 /
#   56.0; untranslated 65.0) with night 24.3 / 25.4 % against 20.4 / 26.3 (14.5 untranslated). PSNR is the same:
#   +1.99 / +1.93 dB day -> night against +1.95 / +1.97 with the 16x16 map
#   (docs/results/translation.md#a-finer-content-map-the-translator-preset-since-2026-12-08).
# Layout weight 1600, paired_norm="l2", 2000 steps, ema_decay=0.999, a quarter of the cycle weight, 16 translated
# samples per step or a 3.5x wider G all stop at 16.94-17.04 dB day -> night (95 % interval over the poses about
# +-0.13 dB). The same networks fine-tuned on pixel-aligned pairs reach only 0.2-0.3 dB more on unseen buildings:
# a day frame does not show what glows at night. See
# docs/results/translation.md#beyond-the-layout-weight-the-adversarial-weight-and-the-layout-norm and
# docs/results/translation.md#with-pixel-aligned-supervision-how-far-could-these-networks-go.
TRANSLATOR_RECIPE: dict[str, Any] = {
    **TINY_RECIPE, "weight_paired": 800.0, "weight_adv_image": 0.25, "weight_adv_appearance": 0.25,
    "n_downsample": 1, "encoder_base_channels": 16,
}


def preset(name: str) -> TranslationConfig:
    """The ``tiny``, ``tiny-translator`` or ``paper`` settings."""
    if name == "tiny":
        return TranslationConfig(preset="tiny", **TINY_RECIPE)
    if name == "tiny-translator":
        return TranslationConfig(preset="tiny-translator", **TRANSLATOR_RECIPE)
    if name == "paper":
        return TranslationConfig(
            preset="paper", image_size=(256, 256),
            encoder_base_channels=64, n_downsample=2, encoder_res_blocks=4,     # c = 256
            vgg_layer="relu3_3", appearance_input_size=None, appearance_hidden=256, appearance_convs=2,
            filter_size=5, filter_groups=256,
            generator_res_blocks=4, disc_base_channels=64, disc_layers=4,
            head="gem-mlp", head_hidden=1024, descriptor_dim=1024,       # the paper's H
            init_std=0.001, n_negatives=16,
            batch_size=1, epochs=50, checkpoint_every=2000, log_every=10,
            pairing_batch_size=32, appearance_samples_per_domain=64,
        )
    raise MduitError(f"unknown preset {name!r}; one of {', '.join(PRESETS)}")


def _parse_value(field_type: str, text: str) -> Any:
    """Parse a command-line override for a field annotated ``field_type``."""
    if text.lower() in ("none", "null") and "None" in field_type:
        return None
    if field_type.startswith("bool"):
        if text.lower() in ("1", "true", "yes", "on"):
            return True
        if text.lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError("expected true/false")
    if field_type.startswith("int"):
        return int(text)
    if field_type.startswith("float"):
        return float(text)
    if field_type.startswith("tuple"):
        parts = text.lower().replace("x", ",").split(",")
        values = tuple(int(p) for p in parts if p.strip())
        return values * 2 if len(values) == 1 else values
    if field_type.startswith("dict"):
        return json.loads(text)
    return text


def parse_assignments(items: Iterable[str], option: str = "--set") -> dict[str, str]:
    """``["KEY=VALUE", ...]`` -> ``{KEY: VALUE}`` (values stay text; ``apply_overrides`` parses them by type)."""
    settings = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise MduitError(f"{option} {item!r}: expected KEY=VALUE, e.g. {option} nce_temperature=0.1")
        settings[key.strip()] = value.strip()
    return settings


def typed_settings(overrides: dict[str, Any]) -> dict[str, Any]:
    """``overrides`` with string values parsed by their field's type; unknown settings are refused."""
    fields = {f.name: str(f.type) for f in dataclasses.fields(TranslationConfig)}
    typed = {}
    for key, value in overrides.items():
        if key not in fields:
            raise MduitError(f"unknown setting {key!r}; known: {', '.join(sorted(fields))}")
        if isinstance(value, str) and not fields[key].startswith("str"):
            try:
                value = _parse_value(fields[key], value)
            except ValueError as err:
                raise MduitError(f"setting {key}={value!r}: expected {fields[key]} ({err})") from None
        typed[key] = value
    return typed


def apply_overrides(config: TranslationConfig, overrides: dict[str, Any]) -> TranslationConfig:
    """A copy of ``config`` with fields replaced; string values are parsed by the field's type."""
    return TranslationConfig.from_dict({**config.to_dict(), **typed_settings(overrides)})

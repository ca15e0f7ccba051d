"""Measuring an MDUIT model's translations on a benchmark's aligned set (issue 10 item 2).

For every source -> target condition pair and every aligned pose p, four methods produce an image
"of p under the target condition" from the source image A_p, and each is scored (see
``translation_quality``) against the true rendering B_p, against the source (content kept) and
by two appearance classifiers:

- ``mduit``: G(E_c(A_p) ⊗ W), W the target condition's domain-mean filter (``appearance='domain'``,
  no exemplar choice and no look at B_p) or E_a of B at another, random pose (``'exemplar'``);
- ``colour-transfer``: A_p with its Lab channel means/stds matched to the target condition's typical
  ones (averaged over that condition's real dataset images, the evaluated aligned poses left out:
  for overcast-reference those are database images);
- ``identity``: A_p itself (no translation);
- ``other-pose``: the true rendering of B at another, random pose: the floor of the fidelity and
  content measures (a right-looking image of the wrong place), and the classifiers' accuracy on
  real images of B.

Every image (source, truth, colour statistics) is read at the evaluation size (the model's training
size unless ``size`` is given) with ``datasets.images.load_image`` (PIL bilinear), so the model's
output and the truth are compared at the same size, resized the same way. Self-reconstruction
G(E_c(I) ⊗ E_a(I)) vs I is scored on the aligned images of every condition; all but the
overcast-reference ones (the database images themselves) are held out of training.
"""
from __future__ import annotations

import itertools
import sys
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch
from tqdm import tqdm

from mduit_loc.datasets.aligned import AlignedPose, AlignedSet
from mduit_loc.datasets.images import load_image
from mduit_loc.datasets.layout import REFERENCE_CONDITION
from mduit_loc.datasets.types import LocalizationDataset
from mduit_loc.errors import MduitError
from mduit_loc.evaluation.translation_quality import (
    MEASURES,
    LabStats,
    NearestCentroid,
    PairScores,
    Pooled,
    colour_transfer,
    cosine_rows,
    gradient_ssim,
    lab_features,
    lab_stats,
    nearest_domain,
    pool,
    psnr,
    ssim,
)
from mduit_loc.translation.mduit import MDUIT

METHODS = ("mduit", "colour-transfer", "identity", "other-pose")
METHOD_LABELS = {"mduit": "MDUIT", "colour-transfer": "colour transfer (Lab)", "identity": "identity (no translation)",
                 "other-pose": "floor: target at another pose"}
GROUPS = ("day->night", "night->day", "all")
APPEARANCES = ("domain", "exemplar")
CONTENT_CACHE_BYTES = 1 << 30   # E_c maps of the real aligned images kept when all conditions' fit
RESIZE = "PIL bilinear (mduit_loc.datasets.images.load_image)"


@dataclass(frozen=True, kw_only=True)
class QualityOptions:
    pairs: tuple[str, ...] = ()                        # "SOURCE:TARGET" ("*": any); empty: every ordered pair
    size: tuple[int, int] | None = None                # evaluation (H, W); None: the model's training size
    appearance: str = "domain"                         # "domain" (mean filter W) or "exemplar"
    max_poses: int | None = None                       # evenly spaced subset of the aligned poses
    colour_images: int = 200                           # real images per condition for Lab stats / classifier
    batch_size: int = 16
    seed: int = 0
    progress: bool = True

    def __post_init__(self):
        if self.appearance not in APPEARANCES:
            raise MduitError(f"appearance {self.appearance!r}: expected one of {', '.join(APPEARANCES)}")
        if self.batch_size < 1 or self.colour_images < 1 or (self.max_poses is not None and self.max_poses < 2):
            raise MduitError("batch_size and colour_images must be >= 1, max_poses >= 2")


@dataclass(frozen=True)
class Reconstruction:
    condition: str
    images: int
    psnr: float
    ssim: float
    held_out: bool          # False for overcast-reference: its aligned images are training images


@dataclass
class QualityResult:
    scores: list[PairScores]
    reconstruction: list[Reconstruction]
    settings: dict[str, Any]
    real_accuracy: dict[str, dict[str, float]] = field(default_factory=dict)   # condition -> classifier -> share

    def pooled(self, groups: Sequence[str] = GROUPS) -> list[Pooled]:
        """Per group, one pooled row per method (in ``METHODS`` order); empty groups are left out."""
        rows = [pool(self.scores, method, group) for group in groups for method in METHODS]
        return [row for row in rows if row.images]


def parse_pairs(texts: Sequence[str], conditions: Sequence[str]) -> tuple[tuple[str, str], ...]:
    """``SRC:TGT`` items (``*`` for any condition) -> distinct (source, target) pairs, in order."""
    pairs: list[tuple[str, str]] = []
    for text in texts:
        source, sep, target = text.partition(":")
        if not sep:
            raise MduitError(f"--pairs {text!r}: expected SOURCE:TARGET, e.g. night:overcast-reference or night:*")
        for name in (source, target):
            if name != "*" and name not in conditions:
                raise MduitError(f"--pairs {text!r}: unknown condition {name!r}; the aligned set has "
                                 f"{', '.join(conditions)}")
        for pair in itertools.product([source] if source != "*" else conditions,
                                      [target] if target != "*" else conditions):
            if pair[0] != pair[1] and pair not in pairs:
                pairs.append(pair)
    if not pairs:
        raise MduitError(f"--pairs {' '.join(texts)}: no pair of two different conditions")
    return tuple(pairs)


def spread(items: Sequence, count: int | None) -> list:
    """``count`` evenly spaced items (all when ``count`` is None or not smaller)."""
    if count is None or count >= len(items):
        return list(items)
    return [items[(i * len(items)) // count] for i in range(count)]


@dataclass(frozen=True)
class _RealImages:
    by_filter: np.ndarray               # (N,) condition names
    by_colour: np.ndarray
    content: torch.Tensor | None        # E_c maps (N, c, h, w) on the CPU; None: too large to keep


def _float(images: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [0, 1]; float images are returned as float32."""
    return images.astype(np.float32) / 255.0 if images.dtype == np.uint8 else images.astype(np.float32)


class _Measurer:
    """The model, the aligned images (uint8 at the evaluation size, loaded once per condition), the colour
    statistics and both classifiers; ``score_batch`` scores a batch of poses of one source -> target pair."""

    def __init__(self, model: MDUIT, aligned: AlignedSet, poses: list[AlignedPose], dataset: LocalizationDataset,
                 size: tuple[int, int], options: QualityOptions, device: torch.device):
        self.model, self.poses, self.size, self.options, self.device = model, poses, size, options, device
        self.conditions = aligned.conditions
        self._images: dict[str, np.ndarray] = {}
        domain_filters = model.domain_filters()
        missing = [c for c in self.conditions if c not in domain_filters]
        if missing:
            raise MduitError(f"the model has no domain-mean appearance filter of {', '.join(missing)} (its domains: "
                             f"{', '.join(domain_filters)}); train it on a dataset with these conditions")
        self.domain_means = {c: domain_filters[c] for c in self.conditions}
        self.stats, features = self._colour_statistics(dataset)
        self.colour_classifier = NearestCentroid(features)
        rng = np.random.default_rng(options.seed)
        count = len(poses)
        # Another pose for every pose (a random non-zero offset): the floor image, and the exemplar.
        self.other = (np.arange(count) + rng.integers(1, count, count)) % count
        self.exemplar = (np.arange(count) + rng.integers(1, count, count)) % count
        self._real: dict[str, _RealImages] = {}

    def _colour_statistics(self, dataset: LocalizationDataset) -> tuple[dict[str, LabStats], dict[str, np.ndarray]]:
        aligned_views = {(pose.camera, pose.timestamp) for pose in self.poses}
        stats, features = {}, {}
        for condition in self.conditions:
            names = sorted(d.name for d in dataset.database if d.condition == condition)
            names += sorted(q.name for q in dataset.queries if q.condition == condition)
            names = [n for n in names if (n.split("/")[-2], n.split("/")[-1].rsplit(".", 1)[0]) not in aligned_views]
            if not names:
                raise MduitError(f"{dataset.root}: no {condition} images besides the aligned poses evaluated, for the "
                                 "colour statistics of the colour-transfer baseline and the colour classifier; "
                                 "evaluate fewer poses (max_poses, --max-poses)")
            images = [_float(load_image(dataset.image_path(n), self.size))
                      for n in spread(names, self.options.colour_images)]
            features[condition] = np.stack([lab_features(image) for image in images])
            stats[condition] = lab_stats(features[condition])
        return stats, features

    def images(self, condition: str) -> np.ndarray:
        """uint8 (N, H, W, 3): the aligned images of ``condition`` at the evaluation size."""
        if condition not in self._images:
            self._images[condition] = np.stack([load_image(p.images[condition], self.size) for p in self.poses])
        return self._images[condition]

    def _tensor(self, images: np.ndarray) -> torch.Tensor:
        """(N, H, W, 3) uint8 or float in [0, 1] -> (N, 3, H, W) float on the device."""
        return torch.from_numpy(np.ascontiguousarray(_float(images))).permute(0, 3, 1, 2).to(self.device)

    def _classify(self, images: np.ndarray, tensor: torch.Tensor) -> tuple[list[str], list[str]]:
        """(nearest domain-mean filter, nearest colour centroid) of each image."""
        by_filter = nearest_domain(self.model.appearance_filters(tensor), self.domain_means)
        by_colour = self.colour_classifier.predict(np.stack([lab_features(i) for i in _float(images)]))
        return by_filter, by_colour

    def real(self, condition: str) -> _RealImages:
        """Both classifiers' predictions and (memory permitting) E_c of every aligned image of ``condition``,
        computed once: the identity and floor methods output real images, scored for every pair."""
        if condition not in self._real:
            images, by_filter, by_colour, content = self.images(condition), [], [], []
            for start in range(0, len(images), self.options.batch_size):
                chunk = images[start:start + self.options.batch_size]
                tensor = self._tensor(chunk)
                f, c = self._classify(chunk, tensor)
                by_filter += f
                by_colour += c
                content.append(self.model.content(tensor).float().cpu())
            features = torch.cat(content)
            # E_c maps of a large model (256 channels at a quarter of the size) would not fit for every
            # condition: then they are computed again where needed.
            fits = features.numel() * 4 * len(self.conditions) <= CONTENT_CACHE_BYTES
            self._real[condition] = _RealImages(np.asarray(by_filter), np.asarray(by_colour),
                                                features if fits else None)
        return self._real[condition]

    def _real_content(self, condition: str, rows: np.ndarray) -> torch.Tensor:
        cached = self.real(condition).content
        if cached is not None:
            return cached[torch.from_numpy(rows)].to(self.device)
        return self.model.content(self._tensor(self.images(condition)[rows]))

    def _filters(self, target: str, rows: np.ndarray) -> torch.Tensor:
        if self.options.appearance == "domain":
            return self.domain_means[target]
        return self.model.appearance_filters(self._tensor(self.images(target)[self.exemplar[rows]]))

    def score_batch(self, source: str, target: str, rows: np.ndarray, scores: dict[str, PairScores]) -> None:
        sources, truths = self.images(source)[rows], _float(self.images(target)[rows])
        source_tensor, source_float = self._tensor(sources), _float(sources)
        source_content = self.model.content(source_tensor)
        if all(side % self.model.downsample_factor == 0 for side in self.size):   # E_c(source) once, no padding
            translated = self.model.generate(source_content, self._filters(target, rows))
        else:
            translated = self.model.translate(source_tensor, self._filters(target, rows))
        colour = np.stack([colour_transfer(s, self.stats[target]) for s in source_float]).astype(np.float32)
        other = self.other[rows]
        outputs = {"mduit": translated.clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy(), "colour-transfer": colour,
                   "identity": source_float, "other-pose": _float(self.images(target)[other])}
        for method, images in outputs.items():
            if method == "identity":   # real images: predictions (and E_c) cached
                real = self.real(source)
                by_filter, by_colour, content = real.by_filter[rows], real.by_colour[rows], source_content
            elif method == "other-pose":
                real = self.real(target)
                by_filter, by_colour = real.by_filter[other], real.by_colour[other]
                content = self._real_content(target, other)
            else:
                tensor = self._tensor(images)
                by_filter, by_colour = (np.asarray(p) for p in self._classify(images, tensor))
                content = self.model.content(tensor)
            scores[method].add({
                "psnr": [psnr(o, t) for o, t in zip(images, truths)],
                "ssim": [ssim(o, t) for o, t in zip(images, truths)],
                "grad_ssim": [gradient_ssim(o, s) for o, s in zip(images, source_float)],
                "content_cos": cosine_rows(content, source_content),
                "filter_hit": by_filter == target,
                "colour_hit": by_colour == target})

    def reconstruction(self, condition: str) -> Reconstruction:
        values: dict[str, list[float]] = {"psnr": [], "ssim": []}
        images = self.images(condition)
        for start in range(0, len(images), self.options.batch_size):
            chunk = self._tensor(images[start:start + self.options.batch_size])
            rebuilt = self.model.translate(chunk, self.model.appearance_filters(chunk))
            for out, real in zip(rebuilt.clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy(),
                                 chunk.permute(0, 2, 3, 1).cpu().numpy()):
                values["psnr"].append(psnr(out, real))
                values["ssim"].append(ssim(out, real))
        return Reconstruction(condition, len(images), float(np.mean(values["psnr"])), float(np.mean(values["ssim"])),
                              held_out=condition != REFERENCE_CONDITION)


def measure_translation_quality(model: MDUIT, aligned: AlignedSet, dataset: LocalizationDataset,
                                options: QualityOptions, device: torch.device) -> QualityResult:
    """Score ``model`` on ``aligned`` (the aligned set of ``dataset``, whose other images give the colour
    statistics); see the module docstring. Runs under ``torch.inference_mode``."""
    if not model.can_translate:
        raise MduitError("this MDUIT model was trained with --no-i2i: it has no translation to measure")
    poses = spread(aligned.poses, options.max_poses)
    if len(poses) < 2:
        raise MduitError(f"the aligned set in {aligned.folder} has {len(poses)} pose(s); the floor needs at least 2")
    pairs = parse_pairs(options.pairs or ("*:*",), aligned.conditions)
    size = options.size or model.image_size
    scores: list[PairScores] = []
    batches = [np.arange(len(poses))[s:s + options.batch_size] for s in range(0, len(poses), options.batch_size)]
    with torch.inference_mode():
        measurer = _Measurer(model, aligned, poses, dataset, size, options, device)
        bar = tqdm(total=len(pairs) * len(poses), desc="translation quality", unit="img", file=sys.stderr,
                   disable=not options.progress or None)
        with bar:
            for source, target in pairs:
                pair_scores = {method: PairScores(method, source, target) for method in METHODS}
                for rows in batches:
                    measurer.score_batch(source, target, rows, pair_scores)
                    bar.update(len(rows))
                scores += pair_scores.values()
        reconstruction = [measurer.reconstruction(c) for c in aligned.conditions]
        real_accuracy = {}
        for condition in aligned.conditions:
            real = measurer.real(condition)
            real_accuracy[condition] = {"filter": float(np.mean(real.by_filter == condition)),
                                        "colour": float(np.mean(real.by_colour == condition))}
    settings = {"size": list(size), "resize": RESIZE, "appearance": options.appearance, "poses": len(poses),
                "aligned_poses": len(aligned.poses), "pairs": len(pairs), "seed": options.seed,
                "colour_images_per_condition": {c: s.images for c, s in measurer.stats.items()},
                "conditions": list(aligned.conditions), "measures": list(MEASURES), "checksum": model.checksum}
    return QualityResult(scores, reconstruction, settings, real_accuracy)

"""Scoring image translations against pixel-aligned ground truth (issue 10 item 2).

Every measure takes float RGB images (H, W, 3) in [0, 1], the same size:

- fidelity: ``psnr`` and ``ssim`` (scikit-image's, data range 1) of a translation against the true
  rendering of the target condition at the same pose; identical images give PSNR ``inf``.
- content kept: ``gradient_ssim``, the SSIM of the Sobel gradient magnitudes of the grey images
  (colour-blind, so a translation that keeps the edges of the scene scores high whatever its
  colours), and ``cosine_rows`` of E_c feature maps (computed by the caller).
- appearance reached: the nearest domain-mean appearance filter (``nearest_domain``) and a
  nearest-centroid classifier on per-image Lab colour statistics (``NearestCentroid`` on
  ``lab_features``), independent of the model.
- the global colour-transfer baseline: ``colour_transfer`` matches each Lab channel's mean and
  standard deviation to a condition's typical ones (``LabStats``, from its real images); the colour
  classifier's centroids are the same statistics, so it favours this baseline by construction.

``PairScores`` accumulates per-image values of one method and source -> target pair; ``pool`` averages
them over several pairs image by image (so every image counts once, whatever its pair).
``margin_interval`` says how much a pooled PSNR margin depends on the aligned poses that happened to be
scored: a paired bootstrap over poses (every pair of one pose shares its scene, so poses, not images,
are the independent draws).
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from skimage.color import lab2rgb, rgb2gray, rgb2lab
from skimage.filters import sobel
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from mduit_loc.datasets.layout import day_or_night

# Measures per image, in table order. filter_hit / colour_hit are 1 when the classifier puts the image
# in the target condition, so their mean is the share of hits.
MEASURES = ("psnr", "ssim", "grad_ssim", "content_cos", "filter_hit", "colour_hit")
_STD_FLOOR = 1e-3   # Lab std below this (a flat channel) is not divided by: it would blow noise up


def psnr(image: np.ndarray, reference: np.ndarray) -> float:
    """PSNR in dB (data range 1); ``inf`` for identical images (skimage would divide by zero and warn)."""
    if np.array_equal(image, reference):
        return math.inf
    return float(peak_signal_noise_ratio(reference, image, data_range=1.0))


def _window(shape: tuple[int, ...]) -> int:
    """skimage's 7 px window, or the largest odd size that fits an image smaller than that."""
    side = min(shape[0], shape[1])
    return min(7, side if side % 2 else side - 1)


def ssim(image: np.ndarray, reference: np.ndarray) -> float:
    """Mean SSIM over the colour channels (data range 1, 7 x 7 window)."""
    return float(structural_similarity(reference, image, data_range=1.0, channel_axis=-1,
                                       win_size=_window(image.shape)))


def gradient_magnitude(image: np.ndarray) -> np.ndarray:
    """Sobel gradient magnitude of the grey image; skimage normalises it so a 0 -> 1 step gives 1."""
    return np.asarray(sobel(rgb2gray(image)))


def gradient_ssim(image: np.ndarray, reference: np.ndarray) -> float:
    """SSIM of the gradient magnitudes: the structure two images share, whatever their colours."""
    return float(structural_similarity(gradient_magnitude(reference), gradient_magnitude(image), data_range=1.0,
                                       win_size=_window(image.shape)))


def cosine_rows(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    """Cosine similarity of each row pair of two batches (feature maps are flattened)."""
    return F.cosine_similarity(a.flatten(1).float(), b.flatten(1).float(), dim=1).cpu().numpy()


# --- colour statistics, transfer and classifier ------------------------------------------------
@dataclass(frozen=True)
class LabStats:
    """Per-channel L*, a*, b* mean and standard deviation of a typical image of a condition: the means
    over its images of each image's own mean and std. (The std pooled over all pixels would add the
    spread between images, and a single image transferred to it would be more contrasted than any.)"""

    mean: np.ndarray    # (3,)
    std: np.ndarray     # (3,)
    images: int


def lab_features(image: np.ndarray) -> np.ndarray:
    """(6,): the image's Lab channel means, then their standard deviations."""
    lab = rgb2lab(image).reshape(-1, 3)
    return np.concatenate([lab.mean(axis=0), lab.std(axis=0)])


def lab_stats(features: np.ndarray) -> LabStats:
    """From the ``lab_features`` of a condition's images, (n, 6)."""
    features = np.atleast_2d(features)
    if not len(features):
        raise ValueError("lab_stats of no images")
    typical = features.mean(axis=0)
    return LabStats(typical[:3], typical[3:], len(features))


def colour_transfer(image: np.ndarray, target: LabStats) -> np.ndarray:
    """Reinhard et al.'s global transfer in Lab: each channel shifted and scaled from the image's own
    mean/std to the target's, back to RGB clipped to [0, 1]."""
    lab = rgb2lab(image)
    mean = lab.reshape(-1, 3).mean(axis=0)
    std = lab.reshape(-1, 3).std(axis=0)
    scale = np.where(std > _STD_FLOOR, target.std / np.maximum(std, _STD_FLOOR), 1.0)
    moved = (lab - mean) * scale + target.mean
    moved[..., 0] = np.clip(moved[..., 0], 0.0, 100.0)
    with warnings.catch_warnings():   # colours outside the sRGB gamut are clipped, which it warns about
        warnings.simplefilter("ignore", UserWarning)
        return np.clip(lab2rgb(moved), 0.0, 1.0)


class NearestCentroid:
    """Nearest class centroid after scaling every feature by its standard deviation over the training
    set (L* spans 0..100 and a*/b* much less: unscaled, L* would decide alone)."""

    def __init__(self, features: Mapping[str, np.ndarray]):
        if not features:
            raise ValueError("NearestCentroid needs at least one class")
        stacked = np.concatenate([np.atleast_2d(f) for f in features.values()])
        self.scale = np.where(stacked.std(axis=0) > 0, stacked.std(axis=0), 1.0)
        self.labels = list(features)
        self.centroids = np.stack([np.atleast_2d(f).mean(axis=0) / self.scale for f in features.values()])

    def predict(self, features: np.ndarray) -> list[str]:
        scaled = np.atleast_2d(features) / self.scale
        distances = ((scaled[:, None, :] - self.centroids[None]) ** 2).sum(axis=2)
        return [self.labels[i] for i in distances.argmin(axis=1)]


def nearest_domain(filters: torch.Tensor, means: Mapping[str, torch.Tensor]) -> list[str]:
    """For each appearance filter (B, ...): the domain whose mean filter is closest in cosine."""
    names = list(means)
    bank = torch.cat([means[n].reshape(1, -1) for n in names]).to(filters.device).float()
    similarity = F.normalize(filters.flatten(1).float(), dim=1) @ F.normalize(bank, dim=1).T
    return [names[i] for i in similarity.argmax(dim=1).tolist()]


# --- accumulation and pooling --------------------------------------------------------------------
def direction(source: str, target: str) -> str:
    """``day->night``, ``night->day``, ``day->day`` or ``night->night`` (night: night, night-rain)."""
    return f"{day_or_night(source)}->{day_or_night(target)}"


@dataclass
class PairScores:
    """Sums of each measure over the images of one method and source -> target pair."""

    method: str
    source: str
    target: str
    count: int = 0
    sums: dict[str, float] = field(default_factory=lambda: dict.fromkeys(MEASURES, 0.0))
    psnr_by_pose: list[float] = field(default_factory=list)   # per image, in the order added (pose order)

    def add(self, values: Mapping[str, Sequence[float] | np.ndarray]) -> None:
        """Per-image values of every measure for a batch (each of the batch's length)."""
        lengths = {len(v) for v in values.values()}
        if set(values) != set(MEASURES) or len(lengths) != 1:
            raise ValueError(f"add() needs every measure {MEASURES} for the same images, got "
                             f"{ {k: len(v) for k, v in values.items()} }")
        for name, batch in values.items():
            self.sums[name] += float(np.sum(np.asarray(batch, dtype=np.float64)))
        self.psnr_by_pose.extend(float(v) for v in values["psnr"])
        self.count += lengths.pop()

    def means(self) -> dict[str, float]:
        return {name: (total / self.count if self.count else math.nan) for name, total in self.sums.items()}

    @property
    def direction(self) -> str:
        return direction(self.source, self.target)


@dataclass(frozen=True)
class Pooled:
    """Means of every measure over all images of several pairs of one method."""

    method: str
    group: str
    pairs: int
    images: int
    means: dict[str, float]


def pairs_in(scores: Iterable[PairScores], method: str, group: str) -> list[PairScores]:
    """The pairs of ``method`` in ``group`` (a direction such as ``night->day``, or ``all``), in order; a pair
    whose source equals its target is never in a group."""
    return [s for s in scores if s.method == method and s.source != s.target
            and (group == "all" or s.direction == group)]


def pool(scores: Iterable[PairScores], method: str, group: str) -> Pooled:
    """Image-weighted means over ``pairs_in(scores, method, group)``."""
    chosen = pairs_in(scores, method, group)
    images = sum(s.count for s in chosen)
    means = {name: (sum(s.sums[name] for s in chosen) / images if images else math.nan) for name in MEASURES}
    return Pooled(method, group, len(chosen), images, means)


def margin_interval(method: np.ndarray, baseline: np.ndarray, *, level: float = 0.95, samples: int = 2000,
                    seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of ``mean(method) - mean(baseline)`` with the poses resampled.

    ``method`` and ``baseline``: (pairs, poses) values of the same pairs at the same poses (e.g. PSNR).
    Each draw takes as many poses as there are, with replacement, and keeps every pair of a drawn pose.
    """
    method, baseline = np.asarray(method, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    if method.ndim != 2 or method.shape != baseline.shape or method.shape[1] == 0:
        raise ValueError(f"margin_interval needs two (pairs, poses) arrays of one shape, got {method.shape} "
                         f"and {baseline.shape}")
    if not 0 < level < 1:
        raise ValueError(f"level {level}: expected a share between 0 and 1")
    per_pose = (method - baseline).mean(axis=0)
    draws = np.random.default_rng(seed).integers(0, len(per_pose), size=(samples, len(per_pose)))
    means = per_pose[draws].mean(axis=1)
    tail = (1 - level) / 2
    return float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))

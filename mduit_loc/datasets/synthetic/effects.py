"""Image-space effects on (H, W, 3) float32 images: anti-aliasing, bloom, rain streaks, snow
flakes, lens droplets, blur, tone mapping, colour, and sensor noise.

Sizes are relative to the image width so every preset looks alike; all randomness comes from
the Generator passed in.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from mduit_loc.datasets.synthetic.conditions import ConditionStyle


def downsample(image: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return image
    h, w, c = image.shape
    return image.reshape(h // factor, factor, w // factor, factor, c).mean(axis=(1, 3))


def _blur(image: np.ndarray, sigma) -> np.ndarray:
    return ndimage.gaussian_filter(image, sigma=(*np.broadcast_to(sigma, (2,)), 0), mode="nearest")


def bloom(image: np.ndarray, strength: float) -> np.ndarray:
    """Glow around over-exposed light sources (lamps, lit windows, the sun)."""
    if strength <= 0:
        return image
    width = image.shape[1]
    bright = np.clip(image - 0.9, 0.0, 12.0)
    glow = 0.5 * _blur(bright, 0.012 * width) + 0.3 * _blur(bright, 0.04 * width)
    return image + strength * glow


def rain_streaks(image: np.ndarray, rng: np.random.Generator, count: int, brightness: float) -> np.ndarray:
    """Thin slanted bright streaks from falling drops close to the camera."""
    if count <= 0:
        return image
    h, w, _ = image.shape
    seeds = np.zeros((h, w), np.float32)
    rows, cols = rng.integers(0, h, count), rng.integers(0, w, count)
    seeds[rows, cols] = rng.uniform(0.3, 1.0, count)
    length = max(3, int(0.08 * h))
    kernel = np.zeros((length, length), np.float32)
    slant = np.linspace(0, length * 0.25, length).astype(int)
    kernel[np.arange(length), np.clip(length // 2 + slant - slant.mean().astype(int), 0, length - 1)] = 1.0
    streaks = ndimage.convolve(seeds, kernel, mode="constant")
    streaks = ndimage.gaussian_filter(streaks, 0.004 * w + 0.3)
    return image + brightness * streaks[..., None] * np.array([0.9, 0.95, 1.0], np.float32)


def snow_flakes(image: np.ndarray, rng: np.random.Generator, count: int) -> np.ndarray:
    """Flakes at three depths: many small sharp ones, fewer large blurred ones."""
    if count <= 0:
        return image
    h, w, _ = image.shape
    out = image.copy()
    for fraction, radius, alpha in ((0.6, 0.0025, 0.8), (0.3, 0.006, 0.6), (0.1, 0.015, 0.45)):
        layer = np.zeros((h, w), np.float32)
        n = int(count * fraction * (h * w) / (256 * 256))
        layer[rng.integers(0, h, n), rng.integers(0, w, n)] = 1.0
        sigma = max(radius * w, 0.4)
        layer = np.clip(ndimage.gaussian_filter(layer, sigma) * (2 * np.pi * sigma ** 2), 0.0, 1.0) * alpha
        out = out * (1 - layer[..., None]) + layer[..., None] * np.float32(0.95)
    return out


def droplets(image: np.ndarray, rng: np.random.Generator, count: int) -> np.ndarray:
    """Water drops on the lens: each shows a blurred, flipped, magnified view of its surroundings."""
    if count <= 0:
        return image
    h, w, _ = image.shape
    blurred = _blur(image, 0.01 * w + 0.5)
    cy, cx = rng.uniform(0, h, count), rng.uniform(0, w, count)
    radius = rng.uniform(0.02, 0.07, count) * w
    out = image.copy()
    for y0, x0, r in zip(cy, cx, radius):
        top, bottom = max(int(y0 - r), 0), min(int(np.ceil(y0 + r)) + 1, h)
        left, right = max(int(x0 - r), 0), min(int(np.ceil(x0 + r)) + 1, w)
        if top >= bottom or left >= right:
            continue
        ys, xs = np.mgrid[top:bottom, left:right].astype(np.float32)
        dy, dx = ys - y0, xs - x0
        rho = np.sqrt(dx * dx + dy * dy) / r
        inside = rho < 1.0
        # a lens: the drop shows an inverted image from 3 radii around it
        sy = np.clip(y0 - dy * 3.0, 0, h - 1).astype(int)
        sx = np.clip(x0 - dx * 3.0, 0, w - 1).astype(int)
        rim = np.clip((rho - 0.8) / 0.2, 0.0, 1.0)[..., None] * 0.5
        window = out[top:bottom, left:right]
        mixed = blurred[sy, sx] * 1.1 * (1 - rim) + window * rim * 0.6
        out[top:bottom, left:right] = np.where(inside[..., None], mixed, window)
    return out


def blur(image: np.ndarray, sigma_at_256: float) -> np.ndarray:
    if sigma_at_256 <= 0:
        return image
    sigma = sigma_at_256 * image.shape[1] / 256.0
    return _blur(image, (0.6 * sigma, sigma))  # slightly more blur along the motion (horizontal)


EXPOSURE_RANGE = (0.7, 1.45)         # per-frame auto-exposure factor (log-uniform)
WHITE_BALANCE_RANGE = (0.88, 1.12)   # per-frame, per-channel white-balance gain (uniform)


def exposure_jitter_gains(rng: np.random.Generator) -> np.ndarray:
    """(3,) float32: one frame's exposure times its per-channel white-balance gains."""
    exposure = np.exp(rng.uniform(np.log(EXPOSURE_RANGE[0]), np.log(EXPOSURE_RANGE[1])))
    gains = rng.uniform(*WHITE_BALANCE_RANGE, size=3)
    return np.asarray(exposure * gains, np.float32)


def auto_exposure_jitter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-frame exposure (x0.7 to x1.45) and white-balance (+-12 % per channel) of an automatic camera:
    query drives are not exposed like the reference drive, frame by frame."""
    return image * exposure_jitter_gains(rng)


def tone_map(image: np.ndarray, style: ConditionStyle) -> np.ndarray:
    """Exposure, white balance, saturation and a filmic curve to display values in [0, 1]."""
    x = image * np.float32(style.exposure) * np.asarray(style.white_balance, np.float32)
    x = np.maximum(x, 0.0)
    # linear up to 0.6, then a soft shoulder: lamps and the sun saturate without hard clipping
    mapped = np.where(x < 0.6, x, 0.6 + 0.4 * (1.0 - np.exp(-(x - 0.6) / 0.4)))
    grey = mapped.mean(axis=2, keepdims=True)
    mapped = grey + (mapped - grey) * np.float32(style.saturation)
    return np.clip(mapped, 0.0, 1.0) ** np.float32(1 / 2.2)


def sensor_noise(image: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    """Shot-like noise, stronger in dark areas, plus some chroma noise."""
    if sigma <= 0:
        return image
    luma = rng.normal(0.0, sigma, image.shape[:2])[..., None]
    chroma = rng.normal(0.0, sigma * 0.5, image.shape)
    scale = 0.5 + 0.5 * (1.0 - image)
    return np.clip(image + (luma + chroma) * scale, 0.0, 1.0)


def to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.round(image * 255.0), 0, 255).astype(np.uint8)

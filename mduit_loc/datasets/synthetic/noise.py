"""Stateless integer hashing and value noise: procedural content that is a pure function of
(seed, ids, coordinates), so every pixel is reproducible without storing textures."""
from __future__ import annotations

import numpy as np


def _mix(x: np.ndarray) -> np.ndarray:
    """A 32-bit avalanche (lowbias32); uint32 multiplication wraps modulo 2**32 by design."""
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x7FEB352D)
    x = x ^ (x >> np.uint32(15))
    x = x * np.uint32(0x846CA68B)
    return x ^ (x >> np.uint32(16))


def hash_u32(*keys) -> np.ndarray:
    """Hash integer arrays (broadcast together) into uint32 arrays.

    The keys are combined linearly with large odd multipliers (mod 2**32) and mixed once.
    """
    shape = np.broadcast_shapes(*(np.shape(k) for k in keys))
    combined = np.full(shape if shape else (1,), 0x5BD1E995, np.int64)
    for position, key in enumerate(keys):
        multiplier = np.int64((0x9E3779B1 * (2 * position + 1) + 0x7F4A7C15 * position) & 0x3FFFFFFF | 1)
        key = np.asarray(key).astype(np.int64) & np.int64(0xFFFFFFFF)
        combined = (combined * np.int64(31) + key * multiplier) & np.int64(0xFFFFFFFF)
    mixed = _mix(combined.astype(np.uint32))
    return mixed if shape else mixed.reshape(())


def hash01(*keys) -> np.ndarray:
    """Uniform floats in [0, 1) from integer keys."""
    return (hash_u32(*keys) >> np.uint32(8)).astype(np.float32) * np.float32(1.0 / (1 << 24))


# Value-noise lattice: a fixed random table, offset per seed (cheaper than hashing every corner).
_LATTICE = np.random.default_rng(20141128).random((256, 256), dtype=np.float32)


def _seed_offsets(seed: np.ndarray) -> np.ndarray:
    """Per-pixel seeds are repeated a lot: hash the distinct ones only."""
    unique, inverse = np.unique(np.asarray(seed), return_inverse=True)
    return hash_u32(unique).astype(np.int64)[inverse.reshape(np.shape(seed))]


def value_noise(x: np.ndarray, y: np.ndarray, seed, scale: float) -> np.ndarray:
    """Smooth 2D value noise in [0, 1) with features of size ``scale`` (metres)."""
    xs = np.asarray(x, np.float32) / np.float32(scale)
    ys = np.asarray(y, np.float32) / np.float32(scale)
    x0, y0 = np.floor(xs), np.floor(ys)
    fx, fy = xs - x0, ys - y0
    fx = fx * fx * (3 - 2 * fx)
    fy = fy * fy * (3 - 2 * fy)
    ix, iy = x0.astype(np.int64), y0.astype(np.int64)
    seed = np.broadcast_to(np.asarray(seed), ix.shape) if np.ndim(seed) else np.asarray(seed)
    offset = hash_u32(seed).astype(np.int64) if np.ndim(seed) == 0 else _seed_offsets(seed)
    ax, ay = (ix + offset) & 255, (iy + (offset >> 8)) & 255
    bx, by = (ax + 1) & 255, (ay + 1) & 255
    top = _LATTICE[ax, ay] + (_LATTICE[bx, ay] - _LATTICE[ax, ay]) * fx
    bottom = _LATTICE[ax, by] + (_LATTICE[bx, by] - _LATTICE[ax, by]) * fx
    return (top + (bottom - top) * fy).astype(np.float32)


def fbm(x: np.ndarray, y: np.ndarray, seed, scale: float, octaves: int = 3) -> np.ndarray:
    """Fractal sum of value noise, normalised to [0, 1)."""
    total = np.zeros(np.broadcast(np.asarray(x), np.asarray(y)).shape, np.float32)
    weight, norm = 1.0, 0.0
    for octave in range(octaves):
        total += np.float32(weight) * value_noise(x, y, np.asarray(seed) * 7 + octave, scale / (2 ** octave))
        norm += weight
        weight *= 0.5
    return total / np.float32(norm)


def detail_fade(footprint: np.ndarray, period: float) -> np.ndarray:
    """1 where a pattern of ``period`` metres is resolved, fading to 0 towards Nyquist.

    The renderer's anti-aliasing: fine detail is replaced by its mean colour where one pixel
    covers more than about a third of the pattern's period.
    """
    return np.clip((np.float32(0.5 * period) - footprint) / np.float32(0.3 * period), 0.0, 1.0).astype(np.float32)


def rng_for(seed: int, *keys: int) -> np.random.Generator:
    """A numpy Generator seeded from (seed, keys...): one independent stream per purpose."""
    return np.random.default_rng(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *[int(k) & 0xFFFFFFFF for k in keys]]))

"""Tiny generated datasets for the translation tests: a folder per appearance domain.

Every "place" is a random arrangement of coloured blocks (the content); each domain renders it with
its own appearance: ``day`` as is, ``night`` dark and blue, ``snow`` washed out and bright.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

DOMAINS = ("day", "night", "snow")


def render_place(rng: np.random.Generator, size: int) -> np.ndarray:
    image = np.zeros((size, size, 3), dtype=np.float32)
    image[: size // 2] = rng.uniform(0.4, 0.8, 3)            # sky
    image[size // 2:] = rng.uniform(0.1, 0.5, 3)             # road
    for _ in range(4):                                        # buildings
        x, w = rng.integers(0, size - 4), rng.integers(3, size // 3)
        top = rng.integers(size // 6, size // 2)
        image[top: size // 2 + 2, x: x + w] = rng.uniform(0, 1, 3)
    return image


def apply_domain(image: np.ndarray, domain: str) -> np.ndarray:
    if domain == "night":
        return np.clip(image * np.array([0.25, 0.3, 0.55]), 0, 1)
    if domain == "snow":
        return np.clip(0.55 + 0.45 * image, 0, 1)
    return image


def write_domain_folders(root: Path, places: int = 8, size: int = 32, domains=DOMAINS, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    scenes = [render_place(rng, size) for _ in range(places)]
    for domain in domains:
        folder = root / domain
        folder.mkdir(parents=True, exist_ok=True)
        for index, scene in enumerate(scenes):
            pixels = (apply_domain(scene, domain) * 255).round().astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"place{index:03d}.png")
    return root

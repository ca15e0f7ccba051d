"""Image decoding for every stage: clear errors for bad files, and a DataLoader-ready dataset.

Decoding happens in DataLoader workers (``ImageListDataset``), never on the compute path.
Tensors are float RGB in [0, 1], shape (3, H, W); models normalise internally.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from mduit_loc.errors import DataNotFoundError, FormatError, MduitError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp")


def load_image(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """Read an image as uint8 RGB (H, W, 3); ``size`` is (height, width) to resize to (bilinear)."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(path, "image")
    try:
        with Image.open(path) as image:
            image = image.convert("RGB")
            if size is not None and image.size != (size[1], size[0]):
                image = image.resize((size[1], size[0]), Image.BILINEAR)
            return np.asarray(image, dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise FormatError(path, None, "a readable image (JPEG, PNG, ...)", got=str(err)) from err


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float (3, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """float (B, 3, H, W) or (3, H, W) in [0, 1] -> uint8 (..., H, W, 3)."""
    array = images.detach().float().clamp(0, 1).mul(255).round().byte().cpu()
    return array.movedim(-3, -1).numpy()


def save_image(path: str | Path, image: np.ndarray, quality: int = 95) -> None:
    """Write uint8 (H, W, 3) atomically; the suffix picks the format (JPEG quality ``quality``)."""
    from mduit_loc.io_utils import atomic_path

    path = Path(path)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG"}.get(path.suffix.lower(), "PNG")
    with atomic_path(path) as tmp:
        kwargs = {"quality": quality, "subsampling": 0} if fmt == "JPEG" else {"optimize": False}
        Image.fromarray(image).save(tmp, format=fmt, **kwargs)


def list_images(folder: str | Path) -> list[Path]:
    """Image files under ``folder`` (recursive), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataNotFoundError(folder, "image folder")
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


class ImageListDataset(torch.utils.data.Dataset):
    """Images by path for a DataLoader: items are ``(tensor, index, ok)``.

    With ``on_error='skip'`` a bad image yields a zero tensor and ``ok=False`` so the batch
    stays collatable and the caller can list and drop it; with ``'fail'`` it raises.
    """

    def __init__(self, paths: Sequence[str | Path], size: tuple[int, int], on_error: str = "fail"):
        if on_error not in ("fail", "skip"):
            raise ValueError(f"on_error must be 'fail' or 'skip', got {on_error!r}")
        self.paths = [Path(p) for p in paths]
        self.size = size
        self.on_error = on_error

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        try:
            image = load_image(self.paths[index], self.size)
        except MduitError:
            if self.on_error == "fail":
                raise
            return torch.zeros(3, *self.size), index, False
        return to_tensor(image), index, True

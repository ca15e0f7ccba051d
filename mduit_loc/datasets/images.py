"""Image decoding for every stage: clear errors for bad files, and a DataLoader-ready dataset.

Decoding happens in DataLoader workers (``ImageListDataset``), never on the compute path.
Tensors are float RGB in [0, 1], shape (3, H, W); models normalise internally.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from mduit_loc.errors import DataNotFoundError, FormatError, MduitError
from mduit_loc.io_utils import atomic_path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp")


_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N")


def _to_rgb(image: Image.Image, path: Path) -> Image.Image:
    """8-bit RGB; 16-bit (and 32-bit integer) grey levels are scaled to 0..255, not clipped."""
    if image.mode in _SIXTEEN_BIT_MODES or image.mode == "I":
        values = np.asarray(image)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise FormatError(path, None, "grey levels in 0..65535 in a 32-bit integer image",
                              got=f"{values.min()}..{values.max()}")
        grey = ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if image.mode == "F":
        raise FormatError(path, None, "an image with 8 or 16 bits per channel (32-bit floating-point images "
                          "are not supported; convert it to 8 or 16 bits)")
    return image.convert("RGB")


def _decode(path: Path, size: tuple[int, int] | None) -> np.ndarray:
    with warnings.catch_warnings():
        # A picture above PIL's pixel limit is refused like a corrupt file, not decoded with a warning.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(path) as opened:
            rgb = _to_rgb(opened, path)
            if size is not None and rgb.size != (size[1], size[0]):
                rgb = rgb.resize((size[1], size[0]), Image.Resampling.BILINEAR)
            return np.asarray(rgb, dtype=np.uint8).copy()


def load_image(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """Read an image as uint8 RGB (H, W, 3); ``size`` is (height, width) to resize to (bilinear).

    Any file that does not decode (corrupt, truncated, over PIL's decompression-bomb pixel limit,
    an unsupported pixel format) is a one-line ``FormatError`` naming it.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(path, "image")
    try:
        return _decode(path, size)
    except MduitError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise FormatError(path, None, f"an image of at most {Image.MAX_IMAGE_PIXELS} pixels (PIL's "
                          "decompression-bomb limit, PIL.Image.MAX_IMAGE_PIXELS)", got=_one_line(err)) from None
    except MemoryError:
        raise FormatError(path, None, "an image that fits in memory") from None
    except Exception as err:  # PIL raises many types for bad files (OSError, SyntaxError, struct.error, ...)
        raise FormatError(path, None, "a readable image (JPEG, PNG, ...)",
                          got=f"{type(err).__name__}: {_one_line(err)}") from None


def image_size(path: str | Path) -> tuple[int, int] | None:
    """(width, height) from the header, or None if the file is not a readable image."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return image.size
    except Exception:  # PIL raises many types; the caller falls back, the decoder reports
        return None


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float (3, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div_(255.0)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """float (B, 3, H, W) or (3, H, W) in [0, 1] -> uint8 (..., H, W, 3)."""
    array = images.detach().float().clamp(0, 1).mul(255).round().byte().cpu()
    return array.movedim(-3, -1).numpy()


def save_image(path: str | Path, image: np.ndarray, quality: int = 95) -> None:
    """Write uint8 (H, W, 3) atomically; the suffix picks the format (JPEG quality ``quality``)."""
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

"""``mduit-loc translate``: translate source images into the appearance of target images.

Writes ``OUT/<i>_<source>__<j>_<appearance>.png`` for every pair, ``OUT/translations.csv`` listing
them, and ``OUT/grid.png`` (rows: sources, columns: appearances, like the paper's Fig. 3).
Sources and appearances are image files, folders (searched recursively) or list files (one path
per line, relative to the list's folder); an appearance may also be ``domain:NAME``, the mean
appearance filter of a training domain.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mduit_loc.datasets.images import IMAGE_SUFFIXES, list_images, load_image, save_image, to_tensor, to_uint8
from mduit_loc.errors import DataNotFoundError, MduitError
from mduit_loc.io_utils import atomic_open
from mduit_loc.runtime import add_device_argument, resolve_device
from mduit_loc.translation.grid import compose_grid, label_tile

DOMAIN_PREFIX = "domain:"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, type=Path, help="MDUIT run folder (from 'mduit-loc train')")
    parser.add_argument("--images", required=True, nargs="+", help="source images: files, folders or list files")
    parser.add_argument("--appearance", required=True, nargs="+",
                        help="target appearances: image files, folders, list files, or domain:NAME")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--size", help="work size HxW (default: the model's training size)")
    parser.add_argument("--batch-size", type=int, default=16, help="images per forward pass (default 16)")
    parser.add_argument("--grid-limit", type=int, default=12,
                        help="at most this many rows and columns in grid.png (default 12)")
    add_device_argument(parser)


def expand_inputs(items: list[str], allow_domains: bool = False) -> list[str | Path]:
    """Files, folders and list files -> image paths (and ``domain:NAME`` entries kept as strings)."""
    found: list[str | Path] = []
    for item in items:
        if allow_domains and item.startswith(DOMAIN_PREFIX):
            found.append(item)
            continue
        path = Path(item)
        if path.is_dir():
            images = list_images(path)
            if not images:
                raise MduitError(f"{path}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
            found += images
        elif path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            found.append(path)
        elif path.is_file():
            found += _read_list_file(path)
        else:
            raise DataNotFoundError(path, "image, folder or list file")
    return found


def _read_list_file(path: Path) -> list[Path]:
    images = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        image = Path(line) if Path(line).is_absolute() else path.parent / line
        if not image.is_file():
            raise DataNotFoundError(image, f"image listed at {path}:{number}")
        images.append(image)
    return images


def parse_size(text: str | None, default: tuple[int, int]) -> tuple[int, int]:
    if not text:
        return tuple(default)
    try:
        parts = [int(v) for v in text.lower().split("x")]
    except ValueError:
        raise MduitError(f"--size {text!r}: expected HxW, e.g. 256x256") from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 8:
        raise MduitError(f"--size {text!r}: expected HxW with both sides >= 8")
    return parts[0], parts[1]


def _load_batch(paths: list[Path], size: tuple[int, int], device: torch.device) -> torch.Tensor:
    return torch.stack([to_tensor(load_image(p, size)) for p in paths]).to(device)


def _appearances(model, targets: list, size, device, batch_size) -> tuple[torch.Tensor, list[str], list]:
    """(filters (T, ...), labels, header tiles as uint8 or None)."""
    filters, labels, headers = [], [], []
    known = model.domain_filters() if any(isinstance(t, str) for t in targets) else {}
    for start in range(0, len(targets), batch_size):
        chunk = targets[start:start + batch_size]
        paths = [t for t in chunk if not isinstance(t, str)]
        loaded = _load_batch(paths, size, device) if paths else None
        image_filters = iter(model.appearance_filters(loaded) if paths else [])
        images = iter(loaded if paths else [])
        for target in chunk:
            if isinstance(target, str):
                domain = target[len(DOMAIN_PREFIX):]
                if domain not in known:
                    raise MduitError(f"--appearance {target}: no such training domain; known: {', '.join(known)}")
                filters.append(known[domain][0])
                labels.append(f"domain-{domain}")
                headers.append(None)
            else:
                filters.append(next(image_filters))
                labels.append(target.stem)
                headers.append(to_uint8(next(images)))
    return torch.stack(filters), labels, headers


def translate_all(model, sources: list[Path], targets: list, out: Path, size: tuple[int, int],
                  device: torch.device, batch_size: int, grid_limit: int) -> dict:
    factor = model.downsample_factor
    pad_h, pad_w = (-size[0]) % factor, (-size[1]) % factor
    filters, labels, headers = _appearances(model, targets, size, device, batch_size)
    grid_s, grid_t = min(grid_limit, len(sources)), min(grid_limit, len(targets))
    cells = np.zeros((grid_s, grid_t, size[0], size[1], 3), dtype=np.uint8)
    thumbs = np.zeros((grid_s, size[0], size[1], 3), dtype=np.uint8)
    rows = []
    for start in range(0, len(sources), batch_size):
        batch_paths = sources[start:start + batch_size]
        images = _load_batch(batch_paths, size, device)
        padded = F.pad(images, (0, pad_w, 0, pad_h), mode="replicate") if pad_h or pad_w else images
        content = model.content(padded)
        for j, label in enumerate(labels):
            translated = model.generate(content, filters[j:j + 1])[..., :size[0], :size[1]]
            for offset, (path, pixels) in enumerate(zip(batch_paths, to_uint8(translated))):
                i = start + offset
                name = f"{i:03d}_{path.stem}__{j:02d}_{label}.png"
                save_image(out / name, pixels)
                rows.append((str(path), label, name))
                if i < grid_s and j < grid_t:
                    cells[i, j] = pixels
        for offset, pixels in enumerate(to_uint8(images)):
            if start + offset < grid_s:
                thumbs[start + offset] = pixels
    tiles = [h if h is not None else label_tile(labels[j], size[0], size[1]) for j, h in enumerate(headers[:grid_t])]
    save_image(out / "grid.png", compose_grid(thumbs, tiles, cells))
    with atomic_open(out / "translations.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source", "appearance", "output"])
        writer.writerows(rows)
    return {"translations": len(rows), "grid": out / "grid.png", "grid_shape": (grid_s, grid_t)}


def run(args: argparse.Namespace) -> int:
    from mduit_loc.translation.model_io import load_mduit

    device = resolve_device(args.device)
    model = load_mduit(args.model, device)
    if not model.can_translate:
        raise MduitError(f"{args.model}: trained with --no-i2i, so it has no translation module")
    sources = [Path(p) for p in expand_inputs(args.images)]
    targets = expand_inputs(args.appearance, allow_domains=True)
    size = parse_size(args.size, model.image_size)
    with torch.inference_mode():
        result = translate_all(model, sources, targets, args.out, size, device, max(1, args.batch_size),
                               max(1, args.grid_limit))
    print(f"{result['translations']} translations ({len(sources)} sources x {len(targets)} appearances) in "
          f"{args.out}; grid ({result['grid_shape'][0]} x {result['grid_shape'][1]}): {result['grid']}")
    return 0

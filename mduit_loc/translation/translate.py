"""Translate source images into the appearance of target images (``mduit-loc translate``, the demo's grids).

Writes ``OUT/<i>_<source>__<j>_<appearance>.png`` for every pair, ``OUT/translations.csv`` listing
them, and ``OUT/grid.png`` (rows: sources labelled with their condition, columns: appearances named
on top, like the paper's Fig. 3; ``translation.grid``), upscaled for reading.
Sources and appearances are image files, folders (searched recursively) or list files (one path
per line, relative to the list's folder); an appearance may also be ``domain:NAME``, the mean
appearance filter of a training domain.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from mduit_loc.datasets.images import IMAGE_SUFFIXES, list_images, load_image, save_image, to_tensor, to_uint8
from mduit_loc.datasets.layout import ImageName
from mduit_loc.errors import DataNotFoundError, MduitError
from mduit_loc.io_utils import atomic_open, read_text_lines
from mduit_loc.runtime import resolve_device
from mduit_loc.translation.grid import GAP, HEADER_GAP, GridOptions, GridRow, labelled_grid
from mduit_loc.translation.mduit import MDUIT
from mduit_loc.translation.model_io import load_mduit

DOMAIN_PREFIX = "domain:"


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
    for number, line in read_text_lines(path, "image list"):
        image = Path(line) if Path(line).is_absolute() else path.parent / line
        if not image.is_file():
            raise DataNotFoundError(image, f"image listed at {path}:{number}")
        images.append(image)
    return images


def parse_size(text: str) -> tuple[int, int]:
    """``"256x128"`` -> (256, 128) (height x width); ``"64"`` -> (64, 64)."""
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


def _appearances(model: MDUIT, targets: Sequence[str | Path], size: tuple[int, int], device: torch.device,
                 batch_size: int) -> tuple[torch.Tensor, list[str], list[np.ndarray | None]]:
    """(filters (T, ...), labels, header tiles as uint8 or None)."""
    filters: list[torch.Tensor] = []
    labels: list[str] = []
    headers: list[np.ndarray | None] = []
    known = model.domain_filters() if any(isinstance(t, str) for t in targets) else {}
    for start in range(0, len(targets), batch_size):
        chunk = targets[start:start + batch_size]
        paths = [t for t in chunk if not isinstance(t, str)]
        loaded = _load_batch(paths, size, device) if paths else torch.zeros(0)
        image_filters = iter(model.appearance_filters(loaded) if paths else torch.zeros(0))
        images = iter(loaded)
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


def image_label(path: Path) -> str:
    """Row/column label of an image: its condition, camera and timestamp in the RobotCar Seasons layout
    (``.../<condition>/<camera>/<timestamp>.jpg``), else its folder (a domain) and file name."""
    try:
        parsed = ImageName.parse("/".join(path.parts[-3:]))
    except ValueError:
        return f"{path.parent.name}\n{path.stem}"
    return f"{parsed.condition}\n{parsed.camera} {parsed.timestamp}"


def _grid(thumbs: np.ndarray, cells: np.ndarray, sources: list[Path], targets: Sequence[str | Path],
          headers: list[np.ndarray | None], truth: np.ndarray | None, options: GridOptions,
          size: tuple[int, int]) -> np.ndarray:
    """Rows: sources (labelled at the left); columns: the source, then each target appearance (named on
    top; exemplar images in an 'appearance' row). The true renderings, when given, follow as a last
    column for one target, else as a row under each source (one per target)."""
    count_s, count_t = cells.shape[:2]
    names = [f"{t[len(DOMAIN_PREFIX):]}\n(domain mean W)" if isinstance(t, str) else image_label(t).split("\n")[0]
             for t in targets[:count_t]]
    single_truth = truth is not None and count_t == 1
    columns = ["source", *names] + ([f"true {names[0].splitlines()[0]}"] if single_truth else [])
    blank = [None] if single_truth else []
    rows = []
    if any(h is not None for h in headers[:count_t]):
        rows.append(GridRow("appearance\n(exemplar)", [None, *headers[:count_t], *blank]))
    for i in range(count_s):
        tiles: list[np.ndarray | None] = [thumbs[i], *cells[i]]
        gap = HEADER_GAP if rows else GAP
        if truth is None:
            rows.append(GridRow(image_label(sources[i]), tiles, gap))
        elif single_truth:
            rows.append(GridRow(image_label(sources[i]), [*tiles, truth[i, 0]], gap))
        else:
            rows.append(GridRow(image_label(sources[i]), tiles, gap))
            rows.append(GridRow("true rendering\n(same pose)", [None, *truth[i]]))
    note = options.describe(size) + (f"; {options.truth_note}" if truth is not None else "")
    return labelled_grid(columns, rows, options, note=note)


def translate_all(model: MDUIT, sources: list[Path], targets: Sequence[str | Path], out: Path, size: tuple[int, int],
                  device: torch.device, batch_size: int, grid_limit: int, grid: GridOptions | None = None,
                  truth: Sequence[Sequence[Path]] | None = None) -> dict[str, Any]:
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
    true_tiles = None
    if truth is not None:   # read at the work size, like the sources: the grid compares like with like
        true_tiles = np.stack([np.stack([load_image(path, size) for path in row[:grid_t]]) for row in truth[:grid_s]])
    save_image(out / "grid.png", _grid(thumbs, cells, sources, targets, headers, true_tiles, grid or GridOptions(),
                                       size))
    with atomic_open(out / "translations.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source", "appearance", "output"])
        writer.writerows(rows)
    return {"translations": len(rows), "grid": out / "grid.png", "grid_shape": (grid_s, grid_t)}


@dataclass(frozen=True)
class TranslationOutput:
    """What ``translate_images`` wrote."""

    out: Path
    translations: int                 # image files written (sources x appearances)
    sources: int
    appearances: int
    grid: Path                        # OUT/grid.png
    grid_shape: tuple[int, int]       # (rows, columns) of the grid


def translate_images(model_run: str | Path, images: Sequence[str | Path], appearances: Sequence[str | Path],
                     out: str | Path, *, size: tuple[int, int] | None = None, batch_size: int = 16,
                     grid_limit: int = 12, device: torch.device | str = "auto", grid: GridOptions | None = None,
                     truth: Sequence[Sequence[str | Path]] | None = None) -> TranslationOutput:
    """Translate ``images`` into every appearance of ``appearances`` with the MDUIT run ``model_run``.

    ``images`` and ``appearances`` are image files, folders or list files (``domain:NAME`` for an
    appearance: the mean filter of a training domain); ``size`` (H, W) defaults to the model's
    training size. ``grid``: cell size and upscaling of grid.png; ``truth[i][j]``: the true rendering
    of source i under appearance j (an aligned set), shown in the grid. Writes the module
    docstring's files into ``out``.
    """
    resolved = resolve_device(device)
    model = load_mduit(model_run, resolved)
    if not model.can_translate:
        raise MduitError(f"{model_run}: trained with --no-i2i, so it has no translation module")
    sources = [Path(p) for p in expand_inputs([str(i) for i in images])]
    targets = expand_inputs([str(a) for a in appearances], allow_domains=True)
    if truth is not None and (len(truth) != len(sources) or any(len(row) != len(targets) for row in truth)):
        raise MduitError(f"truth: one row per source ({len(sources)}) of one image per appearance ({len(targets)})")
    true_paths = [[Path(p) for p in row] for row in truth] if truth is not None else None
    with torch.inference_mode():
        result = translate_all(model, sources, targets, Path(out), size or model.image_size, resolved,
                               max(1, batch_size), max(1, grid_limit), grid, true_paths)
    return TranslationOutput(Path(out), result["translations"], len(sources), len(targets), result["grid"],
                             result["grid_shape"])

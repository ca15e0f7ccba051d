"""Labelled translation grids (issue 10 item 4), like the paper's Fig. 3 with their labels written in.

A grid has a header row naming each column (the source, then each target condition, optionally the
true rendering) and, at the left of every row, its label (the source's condition and image). Tiles
are shown at ``GridOptions.cell`` pixels high, the model's output upscaled (nearest neighbour by
default, so the pixels are the model's), and a note under the grid says so. Text is drawn with
PIL's default font (the scalable one where PIL has FreeType, its bitmap font otherwise): nothing
is downloaded.

    rows = [GridRow("night\\nrear 0001", [source, to_day, to_snow])]
    grid = labelled_grid(["source", "overcast-reference", "snow"], rows, GridOptions(cell=192),
                         note="64 x 64 model output shown at 192 px (nearest)")
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

GAP = 3             # white pixels between tiles
HEADER_GAP = 8      # a wider gap separates the source column (and the labels) from the translations
RESAMPLING = {"nearest": Image.Resampling.NEAREST, "bicubic": Image.Resampling.BICUBIC}
_BLANK = (255, 255, 255)
_TEXT = (0, 0, 0)
_PAD = 6


@dataclass(frozen=True, kw_only=True)
class GridOptions:
    cell: int = 192                 # tile height in the grid (px): a facade stays recognisable
    resample: str = "nearest"       # upscaling: "nearest" (the model's pixels) or "bicubic"
    truth_note: str = "true renderings: the aligned set, at the same pose"   # what the true images are

    def __post_init__(self):
        if self.resample not in RESAMPLING:
            raise ValueError(f"resample {self.resample!r}: expected one of {', '.join(RESAMPLING)}")
        if self.cell < 16:
            raise ValueError(f"grid cell must be >= 16 px, got {self.cell}")

    def describe(self, size: tuple[int, int]) -> str:
        """What a reader needs to know about the tiles' pixels, e.g. '64 x 64 ... shown at 192 px (nearest)'."""
        return f"images at {size[1]} x {size[0]} px shown {self.cell} px high ({self.resample} upscaling)"


@dataclass(frozen=True)
class GridRow:
    label: str                                  # written at the left; "\n" starts a new line
    tiles: Sequence[np.ndarray | None]          # uint8 (h, w, 3) per column; None leaves the cell blank
    gap_before: int = GAP                       # white pixels above the row


def font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """PIL's default font at ``size`` px where PIL has FreeType (Pillow >= 10.1), its bitmap font otherwise."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError, ImportError):   # older Pillow, or no FreeType
        return ImageFont.load_default()


def _wrap(text: str, width: int, face, draw: ImageDraw.ImageDraw) -> list[str]:
    """Lines of ``text`` (its own line breaks kept) wrapped at word boundaries to ``width`` pixels."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        current = ""
        for word in paragraph.split():
            trial = f"{current} {word}".strip()
            if current and draw.textlength(trial, font=face) > width:
                lines.append(current)
                current = word
            else:
                current = trial
        lines.append(current)
    return lines


def _line_height(face) -> int:
    box = face.getbbox("Ag")
    return int(box[3] - box[1]) + 4


def label_tile(text: str, height: int, width: int) -> np.ndarray:
    """A grey tile with ``text`` (for an appearance that has no single image, e.g. a domain's mean filter)."""
    tile = Image.new("RGB", (width, height), (215, 215, 215))
    draw = ImageDraw.Draw(tile)
    face = font(max(10, height // 12))
    step = _line_height(face)
    for number, line in enumerate(_wrap(text, width - 2 * _PAD, face, draw)):
        draw.text((_PAD, _PAD + number * step), line, fill=_TEXT, font=face)
    return np.asarray(tile, dtype=np.uint8)


def _scaled(tile: np.ndarray, height: int, resample: str) -> Image.Image:
    image = Image.fromarray(tile)
    width = max(1, round(tile.shape[1] * height / tile.shape[0]))
    return image if image.size == (width, height) else image.resize((width, height), RESAMPLING[resample])


def labelled_grid(columns: Sequence[str], rows: Sequence[GridRow], options: GridOptions | None = None,
                  note: str = "", title: str = "") -> np.ndarray:
    """The grid as uint8 (H, W, 3): ``title`` on top, the column names, each row's label and tiles, ``note``
    under it. Column widths follow the widest tile of the column (all scaled to ``options.cell`` high);
    the first column is set apart from the rest by ``HEADER_GAP``."""
    if any(len(row.tiles) != len(columns) for row in rows):
        raise ValueError(f"every grid row needs {len(columns)} tiles (one per column)")
    options = options or GridOptions()
    cell = options.cell
    scaled = [[None if t is None else _scaled(t, cell, options.resample) for t in row.tiles] for row in rows]
    widths = [max([t.width for t in column if t is not None] or [cell]) for column in zip(*scaled)] \
        if rows else [cell] * len(columns)
    scratch = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    face, small = font(max(12, cell // 11)), font(max(11, cell // 14))
    step, small_step = _line_height(face), _line_height(small)
    label_width = min(cell, max([int(scratch.textlength(word, font=face)) for row in rows
                                 for word in row.label.split()] or [0]) + 2 * _PAD)
    label_width = max(label_width, cell // 2)
    xs = [label_width + HEADER_GAP]
    for index, width in enumerate(widths[:-1]):
        xs.append(xs[-1] + width + (HEADER_GAP if index == 0 else GAP))
    total_width = xs[-1] + widths[-1] if widths else label_width
    heads = [_wrap(name, width - 2, face, scratch) for name, width in zip(columns, widths)]
    title_lines = _wrap(title, total_width - 2 * _PAD, face, scratch) if title else []
    note_lines = _wrap(note, total_width - 2 * _PAD, small, scratch) if note else []
    top = _PAD + len(title_lines) * step + (_PAD if title_lines else 0)
    header = max([len(h) for h in heads] or [1]) * step + _PAD
    ys = []
    y = top + header
    for row in rows:
        y += row.gap_before
        ys.append(y)
        y += cell
    height = y + (_PAD + len(note_lines) * small_step if note_lines else 0) + _PAD
    canvas = Image.new("RGB", (total_width + _PAD, height), _BLANK)
    draw = ImageDraw.Draw(canvas)
    for number, line in enumerate(title_lines):
        draw.text((_PAD, _PAD + number * step), line, fill=_TEXT, font=face)
    for x, width, lines in zip(xs, widths, heads):
        for number, line in enumerate(lines):   # centred over the column, bottom-aligned to the tiles
            offset = (width - scratch.textlength(line, font=face)) / 2
            draw.text((x + max(0.0, offset), top + header - _PAD - (len(lines) - number) * step), line,
                      fill=_TEXT, font=face)
    for row, tiles, y in zip(rows, scaled, ys):
        lines = _wrap(row.label, label_width - 2 * _PAD, face, scratch)
        for number, line in enumerate(lines):
            draw.text((_PAD, y + (cell - len(lines) * step) // 2 + number * step), line, fill=_TEXT, font=face)
        for x, width, tile in zip(xs, widths, tiles):
            if tile is not None:
                canvas.paste(tile, (x + (width - tile.width) // 2, y))
    for number, line in enumerate(note_lines):
        draw.text((_PAD, ys[-1] + cell + _PAD + number * small_step if ys else top + header), line,
                  fill=(80, 80, 80), font=small)
    return np.asarray(canvas, dtype=np.uint8)

"""Translation grids like the paper's Fig. 3: rows are sources, columns are target appearances.

The top row shows the appearance images (or a labelled tile for a domain's mean filter), the first
column the source images, and cell (i, j) the translation of source i into appearance j.
"""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

GAP = 3             # white pixels between tiles
HEADER_GAP = 8      # a wider gap separates the header row/column from the translations


def label_tile(text: str, height: int, width: int) -> np.ndarray:
    """A grey tile with ``text`` (used for a domain's mean appearance, which has no single image)."""
    tile = Image.new("RGB", (width, height), (200, 200, 200))
    draw = ImageDraw.Draw(tile)
    words, lines = text.split(), list[str]()
    for word in words:  # wrap at the tile width, roughly 6 px per character of the default font
        if lines and len(lines[-1]) + len(word) + 1 <= max(1, width // 6):
            lines[-1] += " " + word
        else:
            lines.append(word)
    for number, line in enumerate(lines):
        draw.text((3, 3 + 11 * number), line, fill=(0, 0, 0))
    return np.asarray(tile, dtype=np.uint8)


def _offset(index: int, size: int) -> int:
    """Pixel offset of tile ``index`` along an axis (index 0 is the header row or column)."""
    return 0 if index == 0 else size + HEADER_GAP + (index - 1) * (size + GAP)


def compose_grid(sources: np.ndarray, headers: list[np.ndarray], cells: np.ndarray) -> np.ndarray:
    """``sources`` (S, h, w, 3), ``headers`` T tiles (h, w, 3), ``cells`` (S, T, h, w, 3), all uint8."""
    count_s, count_t = cells.shape[:2]
    if len(sources) != count_s or len(headers) != count_t:
        raise ValueError(f"grid of {count_s}x{count_t} cells with {len(sources)} sources and {len(headers)} headers")
    height, width = cells.shape[2:4]
    grid = np.full((_offset(count_s, height) + height, _offset(count_t, width) + width, 3), 255, dtype=np.uint8)
    for column, header in enumerate(headers, start=1):
        x = _offset(column, width)
        grid[:height, x:x + width] = header
    for row in range(1, count_s + 1):
        y = _offset(row, height)
        grid[y:y + height, :width] = sources[row - 1]
        for column in range(1, count_t + 1):
            x = _offset(column, width)
            grid[y:y + height, x:x + width] = cells[row - 1, column - 1]
    return grid

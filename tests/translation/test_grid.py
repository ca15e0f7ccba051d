"""Labelled translation grids (issue 10 item 4): every tile upscaled in place, labels drawn, the true
renderings as a last column (one target) or a row under each source (several targets)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mduit_loc.translation.grid import GridOptions, GridRow, label_tile, labelled_grid
from mduit_loc.translation.translate import _grid, image_label

COLOURS = [(250, 0, 0), (0, 250, 0), (0, 0, 250), (250, 250, 0), (0, 250, 250), (250, 0, 250)]


def _solid(colour: tuple[int, int, int], size: int = 8) -> np.ndarray:
    return np.tile(np.array(colour, np.uint8), (size, size, 1))


def _count(grid: np.ndarray, colour: tuple[int, int, int]) -> int:
    return int(np.all(grid == np.array(colour, np.uint8), axis=-1).sum())


def test_every_tile_is_upscaled_to_the_cell_and_labels_are_drawn():
    rows = [GridRow("night\nrear 1", [_solid(COLOURS[0]), _solid(COLOURS[1]), _solid(COLOURS[2])]),
            GridRow("true rendering", [None, _solid(COLOURS[3]), _solid(COLOURS[4])])]
    grid = labelled_grid(["source", "overcast-reference", "sun"], rows, GridOptions(cell=64), note="a note",
                         title="night -> day")
    for colour in COLOURS[:5]:
        assert _count(grid, colour) == 64 * 64            # each 8 px tile exactly once, 64 x 64 (nearest)
    assert grid.shape[0] > 2 * 64 and grid.shape[1] > 3 * 64
    # Text: dark pixels in the label column beside each row and above the tiles (the column names).
    red = np.argwhere(np.all(grid == np.array(COLOURS[0], np.uint8), axis=-1))
    top, left = red.min(axis=0)
    assert (grid[top:top + 64, :left] < 60).all(axis=-1).any()
    assert (grid[:top, left:] < 60).all(axis=-1).any()


def test_bicubic_upscaling_and_wrong_rows_are_refused():
    gradient = np.linspace(0, 255, 64, dtype=np.uint8).reshape(8, 8, 1).repeat(3, axis=2)
    grid = labelled_grid(["source"], [GridRow("a", [gradient])], GridOptions(cell=32, resample="bicubic"))
    assert grid.dtype == np.uint8
    with pytest.raises(ValueError, match="needs 2 tiles"):
        labelled_grid(["source", "sun"], [GridRow("a", [gradient])])
    with pytest.raises(ValueError, match="resample"):
        GridOptions(resample="lanczos-ish")


def test_truth_is_a_last_column_for_one_target_and_a_row_per_source_for_several():
    size = (8, 8)
    thumbs = np.stack([_solid(COLOURS[0]), _solid(COLOURS[1])])
    options = GridOptions(cell=32)
    sources = [Path("images/night/rear/1.jpg"), Path("images/night-rain/rear/2.jpg")]
    one = _grid(thumbs, np.stack([[_solid(COLOURS[2])], [_solid(COLOURS[2])]]), sources, ["domain:sun"], [None],
                np.stack([[_solid(COLOURS[3])], [_solid(COLOURS[3])]]), options, size)
    several = _grid(thumbs, np.stack([[_solid(COLOURS[2])] * 2] * 2), sources, ["domain:sun", "domain:snow"],
                    [None, None], np.stack([[_solid(COLOURS[3])] * 2] * 2), options, size)
    assert _count(one, COLOURS[3]) == 2 * 32 * 32 and _count(several, COLOURS[3]) == 4 * 32 * 32
    # One target: truth beside each source (the same rows, to its right); several: a row under each source.
    def rows_and_columns(grid: np.ndarray, colour) -> tuple[set[int], set[int]]:
        where = np.argwhere(np.all(grid == np.array(colour, np.uint8), axis=-1))
        return set(where[:, 0].tolist()), set(where[:, 1].tolist())

    source_rows, source_columns = rows_and_columns(one, COLOURS[0])
    truth_rows, truth_columns = rows_and_columns(one, COLOURS[3])
    assert source_rows < truth_rows and min(truth_columns) > max(source_columns) + 32
    source_rows, source_columns = rows_and_columns(several, COLOURS[0])
    truth_rows, truth_columns = rows_and_columns(several, COLOURS[3])
    assert min(truth_rows) > max(source_rows) and min(truth_columns) > max(source_columns)


def test_labels_name_the_condition_and_image():
    assert image_label(Path("data/images/night-rain/rear/123.jpg")) == "night-rain\nrear 123"
    assert image_label(Path("data/night/place000.png")) == "night\nplace000"
    tile = label_tile("domain mean of night", 48, 48)
    assert tile.shape == (48, 48, 3) and (tile < 60).any()

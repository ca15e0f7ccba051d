"""PNG figures (matplotlib, Agg backend): cumulative recall curves and image grids.

``plot_recall_curves``: like the benchmark site's cumulative plots. x = position threshold in
metres (log axis, 0.05 to 10 m), y = % of the queries of the subset whose position error is within
x AND whose rotation error is within a *fixed* rotation threshold (10° by default, the loosest of the
benchmark's three); one line per method, one panel per subset (day all, night all). The benchmark's
position thresholds are marked by dotted vertical lines.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from mduit_loc.errors import MduitError
from mduit_loc.evaluation.evaluate import DAY_ALL, NIGHT_ALL, EvaluationResult
from mduit_loc.evaluation.metrics import recall_curve
from mduit_loc.io_utils import atomic_path

DEFAULT_PLOT_ROTATION_DEG = 10.0
_MIN_POSITION_M = 0.05
_TICKS_M = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 50, 100)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)  # headless; never opens a window
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return path


def position_grid(max_position_m: float = 10.0, points: int = 200) -> np.ndarray:
    if max_position_m <= _MIN_POSITION_M:
        raise MduitError(f"the plot's largest position threshold must exceed {_MIN_POSITION_M} m, got {max_position_m}")
    return np.geomspace(_MIN_POSITION_M, max_position_m, points)


_LEGEND_INSIDE_MAX = 5   # more methods than this: the legend would hide the curves
_COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:gray",
            "tab:olive", "tab:cyan")
_LINE_STYLES = ("-", "--", ":", "-.")


def line_styles(count: int) -> list[tuple[str, str]]:
    """(colour, line style) of each of ``count`` methods, all distinct up to 40: the ten colours solid,
    then dashed, ... (matplotlib's default cycle repeats its colours from the eleventh line on)."""
    return [(_COLOURS[i % len(_COLOURS)], _LINE_STYLES[(i // len(_COLOURS)) % len(_LINE_STYLES)])
            for i in range(count)]


def plot_recall_curves(results: Sequence[EvaluationResult], path: str | Path,
                       rotation_deg: float = DEFAULT_PLOT_ROTATION_DEG, max_position_m: float = 10.0,
                       subsets: Sequence[str] = (DAY_ALL, NIGHT_ALL)) -> Path:
    """Recall against position threshold, one panel per subset, one line per method; returns ``path``."""
    if not results:
        raise MduitError("no results to plot")
    plt = _pyplot()
    grid = position_grid(max_position_m)
    legend_rows = 0 if len(results) <= _LEGEND_INSIDE_MAX else (len(results) + 3) // 4
    height = 4.0 + 0.25 * legend_rows + (0.5 if legend_rows else 0.0)
    figure, axes = plt.subplots(1, len(subsets), figsize=(5.2 * len(subsets), height), squeeze=False)
    try:
        for axis, subset in zip(axes[0], subsets):
            count = 0
            for result, (colour, style) in zip(results, line_styles(len(results))):
                position, rotation = result.errors(subset)
                count = len(position)
                axis.plot(grid, 100.0 * recall_curve(position, rotation, grid, rotation_deg), label=result.method,
                          color=colour, linestyle=style, linewidth=1.8)
            for threshold in results[0].thresholds:
                if _MIN_POSITION_M <= threshold.position_m <= max_position_m:
                    axis.axvline(threshold.position_m, color="0.6", linestyle=":", linewidth=1)
            axis.set_xscale("log")
            ticks = [t for t in _TICKS_M if t <= max_position_m]
            axis.set_xticks(ticks, labels=[f"{t:g}" for t in ticks])
            axis.minorticks_off()
            axis.set_xlim(_MIN_POSITION_M, max_position_m)
            axis.set_ylim(-1.5, 101.5)  # lines at 0 % and 100 % stay visible above the frame
            axis.set_xlabel("position threshold (m)")
            axis.set_ylabel(f"% queries localized (rotation ≤ {rotation_deg:g}°)")
            axis.set_title(f"{subset.replace('-', ' ')} ({count} queries)")
            axis.grid(True, alpha=0.3)
            if len(results) <= _LEGEND_INSIDE_MAX:
                axis.legend(loc="upper left", fontsize="small")  # cumulative curves leave the top left empty
        if len(results) > _LEGEND_INSIDE_MAX:  # one shared legend below the panels instead of over the curves
            handles, labels = axes[0][0].get_legend_handles_labels()
            figure.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize="small",
                          frameon=False)
            figure.subplots_adjust(bottom=(0.6 + 0.25 * legend_rows) / height)
        return _save(figure, path)
    finally:
        plt.close(figure)


def save_image_grid(images: Sequence[Sequence[np.ndarray]], path: str | Path,
                    row_labels: Sequence[str] | None = None, col_labels: Sequence[str] | None = None,
                    cell_inches: float = 1.8, title: str | None = None) -> Path:
    """A grid of uint8 HxWx3 images (e.g. source rows x target-appearance columns) with labels."""
    if not images or not images[0]:
        raise MduitError("an image grid needs at least one image")
    rows, cols = len(images), max(len(row) for row in images)
    plt = _pyplot()
    figure, axes = plt.subplots(rows, cols, figsize=(cell_inches * cols, cell_inches * rows), squeeze=False)
    try:
        for r, row in enumerate(images):
            for c in range(cols):
                axis = axes[r][c]
                axis.set_xticks([])
                axis.set_yticks([])
                if c < len(row) and row[c] is not None:
                    axis.imshow(np.asarray(row[c]))
                else:
                    axis.axis("off")
                if col_labels is not None and r == 0 and c < len(col_labels):
                    axis.set_title(col_labels[c], fontsize="small")
                if row_labels is not None and c == 0 and r < len(row_labels):
                    axis.set_ylabel(row_labels[r], fontsize="small")
        if title:
            figure.suptitle(title)
        figure.tight_layout()
        return _save(figure, path)
    finally:
        plt.close(figure)

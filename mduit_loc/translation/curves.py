"""Loss curves: ``RUN/losses.csv`` (one row per ``log_every`` steps) and ``RUN/losses.png``."""
from __future__ import annotations

import csv
from pathlib import Path

from mduit_loc.io_utils import atomic_open, atomic_path

LEADING_COLUMNS = ["step", "epoch", "lr", "seconds"]


def loss_columns(use_i2i: bool, contrastive: str, paired: bool = False, domain_filters: bool = False) -> list[str]:
    """The columns of ``losses.csv``; ``contrastive`` names the contrastive module's loss (nce or its ablation)."""
    names = [contrastive, "nce_acc"]
    if use_i2i:
        names += ["adv_image", "adv_appearance", "rec_self", "rec_cycle", "con_content", "con_appearance"]
        names += ["paired"] if paired else []
        names += ["con_domain"] if domain_filters else []
    names.append("total_g")
    if use_i2i:
        names.append("loss_d")
    return names


class LossLog:
    """Appends rows as training goes (flushed each time); ``truncate`` drops rows after a resume point."""

    def __init__(self, path: str | Path, columns: list[str]):
        self.path = Path(path)
        self.columns = LEADING_COLUMNS + list(columns)

    def start(self, resume_step: int | None) -> None:
        """A fresh file, or the existing one cut back to rows at or before ``resume_step``."""
        rows = self.read() if resume_step is not None and self.path.is_file() else []
        rows = [row for row in rows if resume_step is not None and int(float(row["step"])) <= resume_step]
        with atomic_open(self.path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns)
            writer.writeheader()
            for row in rows:
                writer.writerow({k: row.get(k, "") for k in self.columns})

    def append(self, values: dict[str, float]) -> None:
        with open(self.path, "a", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.columns)
            writer.writerow({k: _format(values.get(k)) for k in self.columns})

    def read(self) -> list[dict[str, str]]:
        with open(self.path, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    def plot(self, png_path: str | Path) -> None:
        """One panel per loss against the step; written atomically."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = self.read()
        names = [c for c in self.columns[len(LEADING_COLUMNS):] if any(row.get(c) for row in rows)]
        if not rows or not names:
            return
        steps = [float(row["step"]) for row in rows]
        columns = 3
        lines = -(-len(names) // columns)
        figure, axes = plt.subplots(lines, columns, figsize=(4 * columns, 2.6 * lines), squeeze=False)
        for axis, name in zip(axes.flat, names):
            values = [float(row[name]) if row.get(name) else float("nan") for row in rows]
            axis.plot(steps, values, linewidth=0.8)
            axis.set_title(name, fontsize=9)
            axis.tick_params(labelsize=7)
        for axis in list(axes.flat)[len(names):]:
            axis.axis("off")
        figure.tight_layout()
        with atomic_path(png_path) as tmp:
            figure.savefig(tmp, format="png", dpi=90)
        plt.close(figure)


def _format(value) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    return f"{float(value):.6g}"

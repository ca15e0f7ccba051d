"""Learning curves: validation recall against training steps for MDUIT z, its E_c grid view, NetVLAD and
raw pixels (a flat line), on a synthetic benchmark in the RobotCar Seasons layout.

    .venv/bin/python benchmarks/learning_curve.py --data DIR [--steps 1000] [--every 100] [--out benchmarks/output/lc]

Validation split (``mduit_loc.pipelines.validation``): every third training frame of each condition,
all cameras, kept out of training; the test split is not looked at. Protocol: retrieval restricted to
the query's camera and location, pose of the top-1 database image, recall at (5 m, 10°) (the table
also gives (0.25 m, 2°) and (0.5 m, 5°)), day and night. MDUIT: the tiny preset (``--mduit-set``
to change it), one run of ``--steps`` steps scored every ``--every`` steps (the run stops at each
point and resumes bit for bit, so the curve is the trajectory of that one run). NetVLAD (light
backbone): constant learning rate, continued to each point. Both learn from the same posed images.
Writes ``OUT/learning_curve.csv``, ``OUT/learning_curve.md`` and ``OUT/learning_curve.png`` (the runs
in ``OUT/runs`` are trained afresh each time). Step counts, not wall-clock time, so the curve is the
same on any machine with the same thread count (`--threads`).
"""
from __future__ import annotations

import argparse
import csv
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import torch
import torch.nn.functional as F

from mduit_loc.evaluation.metrics import DEFAULT_THRESHOLDS
from mduit_loc.io_utils import atomic_open, write_text_atomic
from mduit_loc.pipelines.threads import configure_threads
from mduit_loc.pipelines.validation import ValidationSet
from mduit_loc.retrieval.descriptor_models import RawPixelsDescriptor, load_descriptor
from mduit_loc.retrieval.netvlad.train_config import NetVLADTrainConfig
from mduit_loc.retrieval.netvlad.train_data import load_training_images
from mduit_loc.retrieval.netvlad.training import train_netvlad
from mduit_loc.runtime import resolve_device
from mduit_loc.translation.config import (
    TranslationConfig,
    apply_overrides,
    parse_assignments,
    preset,
    typed_settings,
)
from mduit_loc.translation.mduit import MDUIT
from mduit_loc.translation.run_options import TrainOptions
from mduit_loc.translation.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
COLUMNS = [f"{part} {t.label}" for part in ("day", "night") for t in DEFAULT_THRESHOLDS]


def add_curve_arguments(parser: argparse.ArgumentParser, *, steps: int, every: int) -> None:
    """The options every curve script shares: --steps, --every, --plot, --threads, --device."""
    parser.add_argument("--steps", type=int, default=steps, help=f"training steps (default: {steps})")
    parser.add_argument("--every", type=int, default=every, help=f"score every this many steps (default: {every})")
    parser.add_argument("--plot", type=Path, help="also copy the plot here (e.g. into docs/images/)")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--device", default="auto")


def curve_points(parser: argparse.ArgumentParser, steps: int, every: int) -> list[int]:
    """Every ``every``-th step up to ``steps``, and ``steps`` itself (a usage error when they make no sense)."""
    if steps < 1 or not 1 <= every <= steps:
        parser.error("--steps must be >= 1 and --every between 1 and --steps")
    return sorted({*range(every, steps + 1, every), steps})


def parse_args(argv: list[str] | None) -> tuple[argparse.Namespace, list[int]]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="synthetic benchmark (RobotCar Seasons layout)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "output" / "learning_curve")
    add_curve_arguments(parser, steps=1000, every=100)
    parser.add_argument("--mduit-set", action="append", default=[], metavar="KEY=VALUE",
                        help="MDUIT setting ('mduit-loc train --set', repeatable)")
    parser.add_argument("--grid", default="4x4", help="the E_c grid view's cells (default: 4x4)")
    parser.add_argument("--no-netvlad", action="store_true", help="MDUIT only")
    args = parser.parse_args(argv)
    return args, curve_points(parser, args.steps, args.every)


def mduit_curve(args: argparse.Namespace, validation: ValidationSet, device: torch.device,
                points: list[int]) -> dict[str, dict[int, dict[str, list[float]]]]:
    config = apply_overrides(preset("tiny"), {"max_steps": args.steps,
                                               **typed_settings(parse_assignments(args.mduit_set, "--mduit-set"))})
    grid = cast("tuple[int, int]", tuple(int(v) for v in args.grid.split("x")))
    return mduit_trajectory(config, args.data, args.out / "runs" / "mduit", validation, device, points,
                            label="MDUIT", grid=grid)


def stopped_trainers(config: TranslationConfig, data: Path, run: Path, device: torch.device, points: list[int], *,
                     exclude_images: frozenset[str] = frozenset()) -> Iterator[tuple[int, Trainer]]:
    """One fresh run of ``config`` stopped at each of ``points`` (ascending) in turn, each next point resuming
    it bit for bit: (point, its trainer). A point 0 gives the initialised model, before any step."""
    first_trained = next((point for point in points if point > 0), None)
    for point in points:
        options = TrainOptions(data=data, out=run, device=device, resume=point > 0 and point != first_trained,
                               stop_after=point or None, progress=False, exclude_images=exclude_images,
                               keep_checkpoints=1)
        trainer = Trainer(config, options)
        if 0 < point and trainer.step < point:
            trainer.run()
        yield point, trainer


def mduit_trajectory(config: TranslationConfig, data: Path, run: Path, validation: ValidationSet,
                     device: torch.device, points: list[int], *, label: str,
                     grid: tuple[int, int] | None = None) -> dict[str, dict[int, dict[str, list[float]]]]:
    """One MDUIT run of ``config`` stopped at every point (and at step 0) and scored on ``validation``:
    ``{f"{label} z": curve}``, plus ``f"{label} E_c AxB grid"`` (the content map average-pooled onto
    ``grid`` cells, the head left out) when ``grid`` is given."""
    z_name = f"{label} z"
    grid_name = f"{label} E_c {grid[0]}x{grid[1]} grid" if grid else ""
    curves: dict[str, dict[int, dict[str, list[float]]]] = {z_name: {}, **({grid_name: {}} if grid else {})}
    for point, trainer in stopped_trainers(config, data, run, device, [0, *points],
                                           exclude_images=validation.excluded):
        model = trainer.inference_model.eval()
        size = config.image_size
        curves[z_name][point] = validation.recall(model.describe, size)
        if grid:
            def grid_view(x: torch.Tensor, model: MDUIT = model, cells: tuple[int, int] = grid) -> torch.Tensor:
                return F.adaptive_avg_pool2d(model.content(x), cells).flatten(1)

            curves[grid_name][point] = validation.recall(grid_view, size)
        print(f"[learning curve] {label} step {point}: z {_short(curves[z_name][point])}", file=sys.stderr,
              flush=True)
    return curves


def netvlad_curve(args: argparse.Namespace, validation: ValidationSet, device: torch.device,
                  points: list[int]) -> dict[int, dict[str, list[float]]]:
    images = [image for image in load_training_images(args.data) if image.name not in validation.excluded]
    run = args.out / "runs" / "netvlad"
    curve = {}
    for point in points:
        config = NetVLADTrainConfig(backbone="light", epochs=None, max_steps=point)
        train_netvlad(config, run, images, device, resume=point != points[0], progress=False)
        descriptor = load_descriptor(run, device)
        curve[point] = validation.recall(descriptor.describe, descriptor.image_size)
        print(f"[learning curve] NetVLAD step {point}: {_short(curve[point])}", file=sys.stderr, flush=True)
    return curve


def _short(values: dict[str, list[float]]) -> str:
    return f"day {values['day'][2]:.1f} / night {values['night'][2]:.1f} at 5 m/10°"


def write_outputs(out: Path, curves: dict[str, dict[int, dict[str, list[float]]]], counts: dict[str, int],
                  seconds: float, plot_copy: Path | None, *, stem: str = "learning_curve",
                  title: str = "Validation recall against training steps (same camera and location, top-1 pose)"
                  ) -> None:
    rows = [[name, step, *[f"{v:.1f}" for v in values["day"] + values["night"]]]
            for name, curve in curves.items() for step, values in sorted(curve.items())]
    with atomic_open(out / f"{stem}.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["method", "step", *COLUMNS])
        writer.writerows(rows)
    steps = sorted({step for curve in curves.values() for step in curve})
    lines = [f"Validation recall (%) at 5 m / 10°, day ({counts['day']} images) / night ({counts['night']} images), "
             f"against training steps; this run took {seconds / 60:.1f} min.", "",
             "| method | " + " | ".join(str(s) for s in steps) + " |", "|---|" + "---:|" * len(steps)]
    for name, curve in curves.items():
        cells = [f"{curve[s]['day'][2]:.1f} / {curve[s]['night'][2]:.1f}" if s in curve else "" for s in steps]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    write_text_atomic(out / f"{stem}.md", "\n".join(lines) + "\n")
    print("\n" + "\n".join(lines))
    plot(curves, counts, out / f"{stem}.png", title)
    if plot_copy is not None:
        plot_copy.parent.mkdir(parents=True, exist_ok=True)
        plot_copy.write_bytes((out / f"{stem}.png").read_bytes())


def plot(curves: dict[str, dict[int, dict[str, list[float]]]], counts: dict[str, int], path: Path,
         title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    legend_rows = 1 + (len(curves) - 1) // 4
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.0 + 0.25 * legend_rows), sharey=True)
    for axis, part in zip(axes, ("day", "night")):
        for name, curve in curves.items():
            steps = sorted(curve)
            values = [curve[s][part][2] for s in steps]
            style = "--" if name.startswith("raw") else "-"
            axis.plot(steps, values, style, marker="" if len(steps) > 12 else "o", label=name)
        axis.set_title(f"{part} ({counts[part]} validation images)")
        axis.set_xlabel("training steps")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("recall at 5 m / 10° (%)")
    save_figure(figure, axes[0], title, path, columns=4)


def save_figure(figure: Any, legend_axis: Any, title: str, path: Path, *, columns: int) -> None:
    """The legend of ``legend_axis`` below the plots in rows of ``columns``, the title, a PNG written atomically."""
    import matplotlib.pyplot as plt

    handles, labels = legend_axis.get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=min(len(labels), columns), fontsize=9, frameon=False)
    figure.suptitle(title)
    legend_rows = 1 + (len(labels) - 1) // columns
    figure.tight_layout(rect=(0, 0.02 + 0.05 * legend_rows, 1, 1))
    with atomic_open(path, "wb") as handle:
        figure.savefig(handle, format="png", dpi=110)
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    args, points = parse_args(argv)
    started = time.perf_counter()
    configure_threads(args.threads)
    device = resolve_device(args.device)
    if (args.out / "runs").exists():
        shutil.rmtree(args.out / "runs")
    args.out.mkdir(parents=True, exist_ok=True)
    validation = ValidationSet.of(args.data)
    curves: dict[str, dict[int, dict[str, list[float]]]] = {}
    raw = RawPixelsDescriptor()
    flat = validation.recall(raw.describe, raw.image_size)
    curves["raw pixels (no training)"] = {0: flat, args.steps: flat}
    curves.update(mduit_curve(args, validation, device, points))
    if not args.no_netvlad:
        curves["NetVLAD (light)"] = netvlad_curve(args, validation, device, points)
    write_outputs(args.out, curves, validation.counts(), time.perf_counter() - started, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())

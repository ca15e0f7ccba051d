"""Translation quality against training steps: does MDUIT's translation still improve, or has it levelled off?

    .venv/bin/python benchmarks/translation_quality_curve.py --data DIR [--steps 2000] [--every 250]
        [--max-poses 60] [--set KEY=VALUE ...] [--out benchmarks/output/translation_quality_curve]
        [--plot docs/images/translation_quality_curve.png]

One MDUIT run (tiny preset, ``--set`` changes it) of ``--steps`` steps, stopped every ``--every``
steps (it resumes bit for bit, so the curve is the trajectory of that one run); at each point the
domain-mean appearance filters are computed as training computes them at its end, and the model is
scored on the benchmark's aligned set exactly as ``mduit-loc translation-quality`` scores it
(``--max-poses`` evenly spaced poses, day -> night and night -> day pairs): PSNR and SSIM against
the true rendering, pooled per direction, beside the colour-transfer and identity baselines (flat
lines). Writes ``OUT/translation_quality_curve.{csv,md,png}``.
"""
from __future__ import annotations

import argparse
import csv
import shutil
import sys
import time
from pathlib import Path

import torch
from learning_curve import add_curve_arguments, curve_points, save_figure, stopped_trainers  # this folder

from mduit_loc.datasets import open_dataset
from mduit_loc.datasets.aligned import read_aligned_set
from mduit_loc.datasets.types import LocalizationDataset
from mduit_loc.evaluation.translation_quality_run import QualityOptions, measure_translation_quality
from mduit_loc.io_utils import atomic_open, write_text_atomic
from mduit_loc.pipelines.threads import configure_threads
from mduit_loc.runtime import resolve_device
from mduit_loc.translation.config import apply_overrides, parse_assignments, preset, typed_settings
from mduit_loc.translation.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
DIRECTIONS = ("day->night", "night->day")
PAIRS = ("night:*", "*:night", "night-rain:*", "*:night-rain")   # every day <-> night pair of the aligned set
METHODS = {"mduit": "MDUIT", "colour-transfer": "colour transfer (Lab)", "identity": "identity"}
Point = dict[str, dict[str, tuple[float, float]]]   # method -> direction -> (PSNR, SSIM)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="synthetic benchmark with an aligned set")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "output" / "translation_quality_curve")
    add_curve_arguments(parser, steps=2000, every=250)
    parser.add_argument("--max-poses", type=int, default=60, help="aligned poses scored per pair (default: 60)")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="MDUIT setting ('mduit-loc train --set', repeatable)")
    args = parser.parse_args(argv)
    args.points = curve_points(parser, args.steps, args.every)
    return args


def score(trainer: Trainer, dataset: LocalizationDataset, options: QualityOptions, device: torch.device) -> Point:
    """The pooled PSNR / SSIM of the trainer's current model, with the domain-mean filters of this step."""
    model = trainer.inference_model.eval()
    means, exemplars, _ = trainer.domain_filters()
    model.set_domain_filters(means, exemplars)
    result = measure_translation_quality(model, read_aligned_set(dataset.root), dataset, options, device)
    model.train()
    return {method: {row.group: (row.means["psnr"], row.means["ssim"]) for row in result.pooled(DIRECTIONS)
                     if row.method == method} for method in METHODS}


def write_outputs(out: Path, curve: dict[int, Point], poses: int, seconds: float, plot_copy: Path | None) -> None:
    steps = sorted(curve)
    with atomic_open(out / "translation_quality_curve.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["step", "method", "direction", "psnr", "ssim"])
        for step in steps:
            for method, directions in curve[step].items():
                for direction, (psnr, ssim) in directions.items():
                    writer.writerow([step, method, direction, f"{psnr:.3f}", f"{ssim:.4f}"])
    lines = [f"PSNR dB / SSIM against the true rendering, pooled over the day <-> night pairs of the aligned set "
             f"({poses} poses per pair), against training steps; {seconds / 60:.1f} min.", "",
             "| direction | method | " + " | ".join(str(s) for s in steps) + " |",
             "|---|---|" + "---:|" * len(steps)]
    for direction in DIRECTIONS:
        for method, label in METHODS.items():
            cells = [f"{curve[s][method][direction][0]:.2f} / {curve[s][method][direction][1]:.3f}" for s in steps]
            lines.append(f"| {direction} | {label} | " + " | ".join(cells) + " |")
    write_text_atomic(out / "translation_quality_curve.md", "\n".join(lines) + "\n")
    print("\n" + "\n".join(lines))
    plot(curve, out / "translation_quality_curve.png")
    if plot_copy is not None:
        plot_copy.parent.mkdir(parents=True, exist_ok=True)
        plot_copy.write_bytes((out / "translation_quality_curve.png").read_bytes())


def plot(curve: dict[int, Point], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = sorted(curve)
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.3), sharey=True)
    for axis, direction in zip(axes, DIRECTIONS):
        for method, label in METHODS.items():
            values = [curve[s][method][direction][0] for s in steps]
            axis.plot(steps, values, "-" if method == "mduit" else "--", marker="o" if method == "mduit" else "",
                      label=label)
        colour = curve[steps[-1]]["colour-transfer"][direction][0]
        axis.axhline(colour + 2.0, color="grey", linestyle=":", label="target: colour transfer + 2 dB")
        axis.set_title(direction)
        axis.set_xlabel("training steps")
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("PSNR vs the true rendering (dB)")
    save_figure(figure, axes[0], "MDUIT translation fidelity against training steps (aligned set, domain-mean W)",
                path, columns=len(METHODS) + 1)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    configure_threads(args.threads)
    device = resolve_device(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    config = apply_overrides(preset("tiny"), {"max_steps": args.steps,
                                               **typed_settings(parse_assignments(args.settings, "--set"))})
    dataset = open_dataset(args.data)
    options = QualityOptions(pairs=PAIRS, max_poses=args.max_poses, progress=False)
    run = args.out / "run"
    if run.exists():   # the curve is one fresh run
        shutil.rmtree(run)
    curve: dict[int, Point] = {}
    for point, trainer in stopped_trainers(config, args.data, run, device, args.points):
        curve[point] = score(trainer, dataset, options, device)
        psnr = {d: curve[point]["mduit"][d][0] for d in DIRECTIONS}
        print(f"[quality curve] step {point}: MDUIT PSNR day->night {psnr['day->night']:.2f} dB, "
              f"night->day {psnr['night->day']:.2f} dB", file=sys.stderr, flush=True)
    write_outputs(args.out, curve, args.max_poses, time.perf_counter() - started, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())

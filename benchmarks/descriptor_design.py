"""Descriptor design: learning curves of MDUIT z for projection heads, encoder widths and input sizes.

    .venv/bin/python benchmarks/descriptor_design.py --data DIR [--steps 1000] [--every 250]
        [--variants grid,gem-mlp,netvlad,width-4,width-16,size-48,size-96] [--with-i2i]
        [--out benchmarks/output/descriptor_design] [--plot docs/images/descriptor_design.png]

Every variant is the tiny preset with one change (``VARIANTS``), trained for ``--steps`` steps and
scored every ``--every`` steps on the validation split of ``learning_curve.py`` (same camera and
location, top-1 pose, recall at 5 m / 10° day and night), beside raw pixels. By default the variants
train the descriptor path only (the Table 1 "w/o I2I" setting: pose-supervised NCE, no translation
module), which is what shapes z and costs half the step; ``--with-i2i`` trains full MDUIT instead.
Each finished variant is kept in ``OUT/VARIANT/curve.json`` and reused by a later call with the
same settings (``--fresh`` retrains), so an interrupted comparison resumes at the variant it was on.
Writes ``OUT/descriptor_design.{csv,md,png}``.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch
from learning_curve import (  # this folder: the script's own sys.path[0]
    add_curve_arguments,
    curve_points,
    mduit_trajectory,
    write_outputs,
)

from mduit_loc.io_utils import write_json_atomic
from mduit_loc.pipelines.threads import configure_threads
from mduit_loc.pipelines.validation import ValidationSet
from mduit_loc.retrieval.descriptor_models import RawPixelsDescriptor
from mduit_loc.runtime import resolve_device
from mduit_loc.translation.config import apply_overrides, preset

REPO = Path(__file__).resolve().parents[1]

# name -> (label, settings changed from the tiny preset). Descriptor sizes: grid c x 16 cells, netvlad
# c x 16 clusters, gem-mlp projected to 512: all 512-D at the default width (c = 32).
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "grid": ("4x4 grid head (default), c=32, 64 px", {}),
    "gem-mlp": ("GeM + MLP head (the paper's H)", {"head": "gem-mlp", "descriptor_dim": 512, "head_hidden": 512}),
    "netvlad": ("NetVLAD head, 16 clusters", {"head": "netvlad", "head_clusters": 16}),
    "grid-2x2": ("2x2 grid head", {"head_grid": (2, 2)}),
    "width-4": ("grid, c=16 (base width 4)", {"encoder_base_channels": 4, "filter_groups": 16}),
    "width-16": ("grid, c=64 (base width 16)", {"encoder_base_channels": 16}),
    "size-48": ("grid, 48 px", {"image_size": (48, 48)}),
    "size-96": ("grid, 96 px", {"image_size": (96, 96)}),
}
DEFAULT_VARIANTS = "grid,gem-mlp,netvlad,width-4,width-16,size-48,size-96"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="synthetic benchmark (RobotCar Seasons layout)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "output" / "descriptor_design")
    add_curve_arguments(parser, steps=1000, every=250)
    parser.add_argument("--variants", default=DEFAULT_VARIANTS,
                        help=f"comma-separated, of: {', '.join(VARIANTS)} (default: {DEFAULT_VARIANTS})")
    parser.add_argument("--with-i2i", action="store_true", help="train full MDUIT (default: descriptor path only)")
    parser.add_argument("--fresh", action="store_true", help="retrain variants whose curve is already there")
    args = parser.parse_args(argv)
    args.points = curve_points(parser, args.steps, args.every)
    args.variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown or not args.variants:
        parser.error(f"--variants: unknown {', '.join(unknown) or '(none given)'}; choose from {', '.join(VARIANTS)}")
    return args


def variant_curve(args: argparse.Namespace, name: str, validation: ValidationSet, device: torch.device,
                  points: list[int]) -> dict[int, dict[str, list[float]]]:
    """The z curve of one variant, from ``OUT/NAME/curve.json`` when it was made with the same settings."""
    label, changes = VARIANTS[name]
    settings = {"max_steps": args.steps, "use_i2i": bool(args.with_i2i), **changes}
    config = apply_overrides(preset("tiny"), settings)
    folder = args.out / name
    key = {"config": config.to_dict(), "points": points, "data": str(args.data.resolve())}
    saved = folder / "curve.json"
    if saved.is_file() and not args.fresh:
        record = json.loads(saved.read_text(encoding="utf-8"))
        if record.get("key") == key:
            print(f"[descriptor design] {name}: reusing {saved}", file=sys.stderr, flush=True)
            return {int(step): values for step, values in record["curve"].items()}
    if (folder / "run").exists():
        shutil.rmtree(folder / "run")
    started = time.perf_counter()
    curve = mduit_trajectory(config, args.data, folder / "run", validation, device, points, label=name)[f"{name} z"]
    write_json_atomic(saved, {"key": key, "label": label, "seconds": round(time.perf_counter() - started, 1),
                              "curve": {str(step): values for step, values in curve.items()}})
    return curve


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    configure_threads(args.threads)
    device = resolve_device(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    validation = ValidationSet.of(args.data)
    points = args.points
    raw = RawPixelsDescriptor()
    flat = validation.recall(raw.describe, raw.image_size)
    curves = {"raw pixels (no training)": {0: flat, args.steps: flat}}
    for name in args.variants:
        curves[VARIANTS[name][0]] = variant_curve(args, name, validation, device, points)
    mode = "full MDUIT" if args.with_i2i else "descriptor path only (w/o I2I)"
    write_outputs(args.out, curves, validation.counts(), time.perf_counter() - started, args.plot,
                  stem="descriptor_design",
                  title=f"MDUIT z by head, width and input size ({mode}; same camera and location, top-1 pose)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``mduit-loc synth``: render the synthetic multi-condition benchmark (RobotCar Seasons layout)."""
from __future__ import annotations

import os
import sys

from mduit_loc.datasets.layout import ALL_CONDITIONS
from mduit_loc.datasets.synthetic.generate import generate
from mduit_loc.datasets.synthetic.presets import PRESETS, get_preset
from mduit_loc.datasets.synthetic.preview import write_preview
from mduit_loc.output_lock import output_lock


def add_arguments(parser) -> None:
    parser.add_argument("--out", required=True, help="output folder (created; must be empty unless --overwrite)")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny",
                        help="tiny: tests and the demo (seconds); small: benchmarks (minutes); "
                             "full: RobotCar-sized, 49 locations at 1024 px (hours). Default: tiny")
    parser.add_argument("--seed", type=int, default=0, help="seed of the town and the traversals (default: 0)")
    parser.add_argument("--size", type=int, default=None, help="image size in pixels (square), overriding the preset")
    parser.add_argument("--locations", type=int, default=None, help="number of locations, overriding the preset")
    parser.add_argument("--workers", type=int, default=None,
                        help="rendering processes (default: up to 4, at most the CPU count); output is identical")
    parser.add_argument("--preview", action="store_true",
                        help="also write DIR/preview.png: one location, every condition")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing synthetic dataset in --out (never any other folder)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args) -> int:
    preset = get_preset(args.preset, image_size=args.size, n_locations=args.locations)
    workers = args.workers if args.workers is not None else min(4, os.cpu_count() or 1)
    with output_lock(args.out, "synth", beside=True):  # beside: the folder must stay empty until rendered
        result = generate(args.out, preset, seed=args.seed, workers=max(1, workers), progress=not args.quiet,
                          overwrite=args.overwrite)
    print(f"wrote {result.n_database} database and {result.n_queries} query images "
          f"({preset.n_locations} locations, {preset.image_size} px, {result.n_train_frames} train / "
          f"{result.n_test_frames} test query frames) and an aligned set of {result.n_aligned_poses} poses x "
          f"{len(ALL_CONDITIONS)} conditions to {result.root} in {result.seconds:.1f} s ("
          + ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in result.stage_seconds.items()) + ")",
          file=sys.stderr)
    if args.preview:
        print(f"preview: {write_preview(result.root)}", file=sys.stderr)
    return 0

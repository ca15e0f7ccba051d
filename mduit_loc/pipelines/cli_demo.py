"""``mduit-loc demo``: the whole pipeline on the built-in synthetic benchmark, with a report.

    mduit-loc demo                       # ./demo_output, demo benchmark, 300 training steps per method
    mduit-loc demo --out /tmp/demo --mduit-steps 100

Stages (``mduit_loc.pipelines.demo``): render the demo synthetic benchmark; train MDUIT (tiny
preset) and the NetVLAD baseline (light backbone) on the same data for the same number of steps;
index the map (MDUIT with the translated database, the paper's augmentation); localize the test
queries (retrieval restricted to the query's camera and location, pose of the top-1 image);
evaluate both (day / night recall at the RobotCar Seasons thresholds); write benchmark submission
files, translation grids (night -> day, day -> night) and report.md / report.html. Re-running
skips finished stages and resumes an interrupted training, so a killed demo continues where it stopped.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from mduit_loc.output_lock import output_lock
from mduit_loc.pipelines.cli_common import add_training_arguments, budget_from_args
from mduit_loc.pipelines.demo import DEMO_METHODS, DemoSettings, print_summary, run_demo
from mduit_loc.pipelines.methods import RetrievalProtocol
from mduit_loc.pipelines.threads import THREADS_HELP

DEFAULT_OUT = Path("demo_output")
DEFAULT_STEPS = 300


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: ./demo_output)")
    parser.add_argument("--preset", choices=("demo", "tiny", "small"), default="demo",
                        help="synthetic benchmark: demo (default: 8 locations, 31 reference frames per location "
                             "and camera, about a minute to render), tiny (the tests' miniature: too few reference "
                             "images to tell methods apart) or small (the benchmark; ~30 min to render)")
    parser.add_argument("--data", type=Path,
                        help="use this synthetic benchmark instead of rendering one into OUT/data")
    parser.add_argument("--seed", type=int, default=0, help="seed of the benchmark and the trainings (default: 0)")
    parser.add_argument("--no-per-location", action="store_true",
                        help="retrieve from the whole map instead of the query's location only")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=int, help=THREADS_HELP)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    small = parser.add_argument_group("miniature runs (tests, quick looks)")
    small.add_argument("--size", type=int, help="rendered image size in pixels (default: the preset's)")
    small.add_argument("--locations", type=int, help="number of locations rendered (default: the preset's)")
    add_training_arguments(parser.add_argument_group("training"), DEFAULT_STEPS)


def run(args: argparse.Namespace) -> int:
    budget = budget_from_args(args, DEFAULT_STEPS, seed=args.seed)
    protocol = RetrievalProtocol(per_location=not args.no_per_location, device=budget.device,
                                 num_workers=args.num_workers, progress=not args.no_progress)
    settings = DemoSettings(out=args.out, budget=budget, protocol=protocol, data=args.data, preset=args.preset,
                            seed=args.seed, size=args.size, locations=args.locations, threads=args.threads)
    with output_lock(args.out, "demo"):
        outputs = run_demo(settings, DEMO_METHODS)
    print_summary(outputs, args.out, [method.key for method in DEMO_METHODS])
    return 0

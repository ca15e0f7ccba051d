"""The paper's Table 1 on the synthetic benchmark: NetVLAD and the MDUIT ablations, same data and budget.

    .venv/bin/python benchmarks/table1.py [--data DIR] [--out DIR] [--preset small] [--budget-min 5.5]
    (--out default: benchmarks/output/)

Renders the synthetic benchmark (``--preset``, default small) into ``--data`` when that folder is
absent or empty, then runs ``mduit_loc.pipelines.table1.run_table1`` (the same as
``mduit-loc table1``): trains every row for the same wall-clock budget, localizes the test
queries (same camera, same location, top-1 pose), prints the table in the paper's shape with the
paper's numbers beside it, and writes table1.csv / table1.md / eval.csv / recall_curves.png to
``--out``. Finished methods are reused, so an interrupted run continues where it stopped.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from mduit_loc.pipelines.cli_common import add_training_arguments, budget_from_args
from mduit_loc.pipelines.methods import RetrievalProtocol
from mduit_loc.pipelines.stages import holds_nothing, render_synthetic
from mduit_loc.pipelines.table1 import print_table1, run_table1
from mduit_loc.pipelines.threads import THREADS_HELP, configure_threads

# Benchmark outputs stay in the checkout (git-ignored), not in a temporary folder the OS may clear.
OUTPUT = Path(__file__).resolve().parent / "output"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=OUTPUT / "syn_small",
                        help=f"synthetic (or RobotCar Seasons) benchmark folder (default: {OUTPUT / 'syn_small'})")
    parser.add_argument("--out", type=Path, default=OUTPUT / "table1_small",
                        help=f"output folder (default: {OUTPUT / 'table1_small'})")
    parser.add_argument("--preset", choices=("tiny", "small", "full"), default="small",
                        help="synthetic preset rendered when --data is absent or empty (default: small)")
    parser.add_argument("--budget-min", type=float, default=5.5, help="training minutes per method (default: 5.5)")
    parser.add_argument("--threads", type=int, help=THREADS_HELP)
    add_training_arguments(parser)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    threads = configure_threads(args.threads)
    if holds_nothing(args.data):
        print(f"rendering the synthetic benchmark ({args.preset}) into {args.data}", file=sys.stderr)
        render_synthetic(args.data, args.preset, quiet=args.no_progress)
    budget = budget_from_args(args)
    protocol = RetrievalProtocol(num_workers=args.num_workers, device=budget.device, progress=not args.no_progress)
    table = run_table1(args.data, args.out, budget, protocol)
    print_table1(table, args.out)
    print(f"Table 1 took {(time.perf_counter() - started) / 60:.1f} min here ({threads} torch thread(s))")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``mduit-loc table1``: train and evaluate the paper's Table 1 rows on a dataset, beside the paper's numbers.

    mduit-loc table1 --data data/synth_small --preset small --out table1/
    mduit-loc eval --table1 --data data/synth_small --out table1/     # the same (an alias)

Trains NetVLAD and the four MDUIT variants (w/o I2I and NCE, w/o I2I, w/o NCE, Full) on ``--data``
for the same number of optimizer steps (``--mduit-steps``, default 1000; ``--budget-min`` for a
wall-clock budget instead), localizes the test queries (same camera, same location, top-1 pose)
with them and with raw pixels, evaluates them and prints the table with the paper's numbers beside;
finished methods are not redone (``mduit_loc.pipelines.table1``). Outputs in ``--out`` (default
./table1_output): table1.csv, table1.md, eval.csv and recall_curves.png.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mduit_loc.output_lock import output_lock
from mduit_loc.pipelines.cli_common import add_training_arguments, budget_from_args
from mduit_loc.pipelines.methods import RetrievalProtocol
from mduit_loc.pipelines.stages import holds_nothing, render_synthetic
from mduit_loc.pipelines.table1 import DEFAULT_STEPS, print_table1, run_table1
from mduit_loc.pipelines.threads import THREADS_HELP, configure_threads
from mduit_loc.runtime import add_device_argument

DEFAULT_OUT = Path("table1_output")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=Path,
                        help="dataset folder in the RobotCar Seasons layout (rendered first with --preset when "
                             "absent or empty)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: ./{DEFAULT_OUT})")
    parser.add_argument("--preset", choices=("tiny", "small", "full"),
                        help="render this synthetic benchmark into --data first when --data is absent or empty "
                             "(otherwise --data is used as it is)")
    parser.add_argument("--threads", type=int, help=THREADS_HELP)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    group = parser.add_argument_group("retrieval (every row: same camera, same location)")
    group.add_argument("--pose", default="top1", help="pose from retrieval: top1 (default), mean, weighted, pnp")
    group.add_argument("--top-k", type=int, default=10, help="database images retrieved per query (default: 10)")
    group.add_argument("--batch-size", type=int, default=16, help="images per batch (default: 16)")
    add_device_argument(group)
    add_training_arguments(parser.add_argument_group("training"), DEFAULT_STEPS)


def run(args: argparse.Namespace) -> int:
    budget = budget_from_args(args, DEFAULT_STEPS)
    print(f"Table 1: {configure_threads(args.threads)} torch thread(s)", file=sys.stderr)
    with output_lock(args.out, "table1"):
        if args.preset and holds_nothing(args.data):
            with output_lock(args.data, "table1", beside=True):   # the data folder stays empty until rendered
                render_synthetic(args.data, args.preset, quiet=args.no_progress)
        protocol = RetrievalProtocol(per_camera=True, per_location=True, pose=args.pose, top_k=args.top_k,
                                     batch_size=args.batch_size, num_workers=args.num_workers, device=budget.device,
                                     progress=not args.no_progress)
        table = run_table1(args.data, args.out, budget, protocol)
    print_table1(table, args.out)
    return 0

"""Seed spread of Table 1's contested rows: are single-seed differences between rows real?

    .venv/bin/python benchmarks/table1_seeds.py --data DIR --out DIR [--seeds 1 2]
        [--rows mduit-full mduit-no-i2i] [--steps 1000] [--threads 1]

For every seed and every row key (``TABLE1_METHODS``' keys), ``run_table1`` trains that row alone
with ``TrainingBudget(seed=N)`` (the same steps, data and protocol as ``mduit-loc table1``) into
``OUT/seed<N>-<key>``, beside the raw-pixels row; Full's extra rows (plain database, best copy, queries
translated) come with it. Finished runs are reused. Prints one line per seed and row: day / night
recall at (5 m, 10°). Seed 0 is ``mduit-loc table1`` itself. About 25 CPU-minutes per row and seed
on one thread, plus its localization.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mduit_loc.pipelines.methods import RetrievalProtocol
from mduit_loc.pipelines.table1 import DEFAULT_STEPS, RAW_PIXELS, TABLE1_METHODS, run_table1
from mduit_loc.pipelines.threads import THREADS_HELP, configure_threads
from mduit_loc.pipelines.training import TrainingBudget
from mduit_loc.runtime import default_device

DAY_5M, NIGHT_5M = 2, 5   # positions of (5 m, 10°) in a row's recalls (day x3, then night x3)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="synthetic benchmark (e.g. the small preset)")
    parser.add_argument("--out", type=Path, required=True, help="one folder per seed and row is made here")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rows", nargs="+", default=["mduit-full", "mduit-no-i2i"],
                        help=f"row keys, of: {', '.join(m.key for m in TABLE1_METHODS if m.kind != 'raw')}")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="optimizer steps per trained row")
    parser.add_argument("--threads", type=int, help=THREADS_HELP)
    args = parser.parse_args(argv)
    by_key = {m.key: m for m in TABLE1_METHODS}
    unknown = [key for key in args.rows if key not in by_key or by_key[key].kind == "raw"]
    if unknown:
        parser.error(f"unknown row(s) {', '.join(unknown)}")
    configure_threads(args.threads)
    device = default_device()
    protocol = RetrievalProtocol(device=device, progress=False, batch_size=32)
    for seed in args.seeds:
        for key in args.rows:
            budget = TrainingBudget(mduit_steps=args.steps, netvlad_steps=args.steps, seed=seed, device=device,
                                    progress=False)
            table = run_table1(args.data, args.out / f"seed{seed}-{key}", budget, protocol,
                               methods=[RAW_PIXELS, by_key[key]], extra_rows=True)
            for row in table.rows:
                print(f"seed {seed}  {row.method.label:40s} day {100 * row.recalls[DAY_5M]:5.1f}  "
                      f"night {100 * row.recalls[NIGHT_5M]:5.1f}  (% at 5 m, 10 deg)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

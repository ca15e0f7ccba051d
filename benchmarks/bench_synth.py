"""Rendering speed of the synthetic benchmark: wall time of ``generate`` per preset (images of all
ten conditions x three cameras, the NVM with 3D points from depth, COLMAP models, lists), printed
as a markdown table.

    .venv/bin/python benchmarks/bench_synth.py [--presets tiny small] [--workers N] [--repeat K]

``tiny`` is what the tests and the demo render; ``small`` is the benchmark preset (minutes on two
cores). Each run writes into a fresh temporary folder that is removed afterwards.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mduit_loc.datasets.synthetic import generate, get_preset  # noqa: E402


def time_preset(name: str, workers: int, seed: int) -> tuple[float, object]:
    """(wall seconds, SynthResult) of one render into a temporary folder."""
    with tempfile.TemporaryDirectory(prefix=f"bench-synth-{name}-") as tmp:
        started = time.perf_counter()
        result = generate(Path(tmp) / "data", get_preset(name), seed=seed, workers=workers, progress=False)
        return time.perf_counter() - started, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", "--preset", nargs="+", default=["tiny", "small"])
    parser.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                        help="rendering processes (default: up to 4, at most the CPU count)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per preset; the table shows the fastest")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"CPU count {os.cpu_count()}, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
          file=sys.stderr)
    rows = ["| preset | locations | image px | database images | query images | workers | wall s | images/s |",
            "|---|---|---|---|---|---|---|---|"]
    for name in args.presets:
        preset = get_preset(name)
        runs = [time_preset(name, args.workers, args.seed) for _ in range(max(1, args.repeat))]
        seconds, result = min(runs, key=lambda run: run[0])
        n_images = result.n_database + result.n_queries
        rows.append(f"| {name} | {preset.n_locations} | {preset.image_size} | {result.n_database} | "
                    f"{result.n_queries} | {args.workers} | {seconds:.1f} | {n_images / seconds:.1f} |")
        print(f"{name}: {', '.join(f'{s:.1f}' for s, _ in runs)} s", file=sys.stderr)
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

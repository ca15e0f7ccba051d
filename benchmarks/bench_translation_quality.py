"""Translation quality on a synthetic benchmark's aligned set (issue 10 item 2), through the Python API.

    python benchmarks/bench_translation_quality.py --data data/small --model runs/mduit --out quality/
    python benchmarks/bench_translation_quality.py --render tiny --steps 30 --out bench_quality/

With ``--model`` the given MDUIT run is measured; without it a run is trained first for ``--steps``
steps (a step budget, never wall-clock, so the result does not depend on the machine's load) with
``--preset`` into ``OUT/run``. Without ``--data`` the synthetic benchmark ``--render`` is rendered into
``OUT/data``. The measurement is ``translation_quality`` (the same as ``mduit-loc translation-quality``):
quality.csv, reconstruction.csv, summary.md and summary.json in ``OUT/quality``; the pooled table, the
verdict against the baselines and self-reconstruction are printed.
"""
from __future__ import annotations

import os

# Idle OpenMP threads sleep instead of spinning (as ``mduit-loc`` does): must precede the torch import.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

from mduit_loc.evaluation.translation_quality_outputs import (  # noqa: E402
    pooled_table,
    reconstruction_table,
    translation_quality,
    verdict_lines,
)
from mduit_loc.evaluation.translation_quality_run import APPEARANCES, QualityOptions  # noqa: E402
from mduit_loc.pipelines.stages import render_synthetic  # noqa: E402
from mduit_loc.translation.api import train  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench_translation_quality"), help="output folder")
    parser.add_argument("--data", type=Path, help="benchmark with an aligned set (default: render --render)")
    parser.add_argument("--render", default="tiny", help="synthetic preset rendered without --data (default tiny)")
    parser.add_argument("--model", type=Path, help="MDUIT run to measure (default: train one for --steps)")
    parser.add_argument("--preset", default="tiny", help="MDUIT preset trained without --model (default tiny)")
    parser.add_argument("--steps", type=int, default=30, help="training steps without --model (default 30)")
    parser.add_argument("--pairs", nargs="+", default=[], help="SOURCE:TARGET pairs ('*': any; default all)")
    parser.add_argument("--appearance", choices=APPEARANCES, default="domain")
    parser.add_argument("--max-poses", type=int, help="evenly spaced subset of the aligned poses (default all)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)

    data = args.data or render_synthetic(args.out / "data", args.render)
    run = args.model
    if run is None:
        run = args.out / "run"
        if (run / "model.pt").is_file():   # trained by an earlier call: measured again, not retrained
            print(f"using the run trained earlier: {run}")
        else:
            summary = train(args.preset, data, run, max_steps=args.steps, device=args.device)
            print(f"trained {args.preset} for {summary.steps} steps -> {run}")
    options = QualityOptions(pairs=tuple(args.pairs), appearance=args.appearance, max_poses=args.max_poses)
    written = translation_quality(run, data, args.out / "quality", options, args.device)
    print(pooled_table(written.result).to_text())
    print("\n".join(verdict_lines(written.result)))
    print("\n" + reconstruction_table(written.result).to_text())
    print("\nwrote " + ", ".join(str(path) for path in written.files.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

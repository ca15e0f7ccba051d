"""Nordland summer/winter: winter queries against the summer database, top-1 within +-2 frames.

    .venv/bin/python benchmarks/bench_nordland.py [--data ../shared/data/nordland] [--work benchmarks/output/nordland]
                                                  [--steps 1000] [--image-size 64x128]

Rows: raw pixels (normalised, no training); the NetVLAD baseline (light backbone) and MDUIT (tiny
preset, its grid-head descriptor z) trained on the same images with the same supervision (which
frames show the same place) for the same number of optimizer steps; MDUIT's z with the database
also translated into winter appearances (3 exemplars of the training half); and winter queries
translated into summer by the MDUIT model before raw pixels / MDUIT z describe them. Protocol:
first half of the route trains, second half tests (places unseen); see
``mduit_loc.pipelines.nordland``. Prints a Markdown table and writes it with a JSON copy to WORK.
Skips (exit 0) with the reason when the data is absent. Finished trainings are reused.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "nordland"
DEFAULT_WORK = REPO / "benchmarks" / "output" / "nordland"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"Nordland folder (default: {DEFAULT_DATA})")
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK,
                        help=f"working folder: training layouts, runs, indexes, the table (default: {DEFAULT_WORK})")
    parser.add_argument("--steps", type=int, default=1000,
                        help="optimizer steps of MDUIT and of NetVLAD (default: 1000)")
    parser.add_argument("--budget-min", type=float,
                        help="instead of steps, wall-clock training minutes per method (machine-dependent)")
    parser.add_argument("--image-size", default="64x128", help="HxW fed to MDUIT and NetVLAD (default: 64x128, "
                                                               "the 32x64 frames upsampled twice)")
    parser.add_argument("--train-fraction", type=float, default=0.5, help="share of the route used to train")
    parser.add_argument("--exemplars", type=int, default=3, help="winter appearances of the translated database")
    parser.add_argument("--mduit-set", action="append", default=[], metavar="KEY=VALUE",
                        help="MDUIT setting ('mduit-loc train --set', repeatable)")
    parser.add_argument("--threads", type=int, help="torch threads (default: the usable cores)")
    parser.add_argument("--num-workers", type=int, help="image decoding workers (default: automatic)")
    parser.add_argument("--no-progress", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    from mduit_loc.io_utils import write_json_atomic, write_text_atomic
    from mduit_loc.pipelines import nordland
    from mduit_loc.pipelines.methods import FUSED_WEIGHT, MethodSpec
    from mduit_loc.pipelines.threads import configure_threads
    from mduit_loc.pipelines.training import TrainingBudget, train_method
    from mduit_loc.retrieval.netvlad.train_config import parse_image_size
    from mduit_loc.translation.config import parse_assignments, typed_settings

    args = parse_args(argv)
    reason = nordland.missing_reason(args.data)
    if reason:
        print(f"SKIP bench_nordland: {reason}")
        return 0
    started = time.perf_counter()
    threads = configure_threads(args.threads)
    split = nordland.split_frames(nordland.list_frames(args.data), args.train_fraction)
    work = args.work
    domains = nordland.write_domain_folders(args.data, split.train, work / "train_domains")
    posed = nordland.write_posed_map(args.data, split.train, nordland.SEASONS, work / "train_posed", split.frame_step)
    test_map = nordland.write_posed_map(args.data, split.test, ("summer",), work / "test_map", split.frame_step)
    steps = None if args.budget_min is not None else args.steps
    settings = typed_settings({"image_size": args.image_size, **parse_assignments(args.mduit_set, "--mduit-set")})
    budget = TrainingBudget(seconds=60.0 * args.budget_min if args.budget_min is not None else None,
                            mduit_steps=steps, netvlad_steps=steps, mduit_settings=settings,
                            netvlad_image_size=parse_image_size(args.image_size), num_workers=args.num_workers,
                            progress=not args.no_progress)
    runs = {}
    for method, data in ((MethodSpec(label="MDUIT", key="mduit", kind="mduit"), domains),
                         (MethodSpec(label="NetVLAD", key="netvlad", kind="netvlad"), posed)):
        print(f"[nordland] train {method.label} ({budget.describe(method.kind)})", file=sys.stderr, flush=True)
        runs[method.key] = train_method(data, method, work / "runs" / method.key, budget)

    def ranked(model, key: str, translate: bool = False, translate_queries: bool = False, fuse: float | None = None):
        print(f"[nordland] retrieve with {key}", file=sys.stderr, flush=True)
        index = key.removesuffix("-queries-translated")
        return nordland.retrieve_ranked(test_map, model, args.data, split, work / "index" / index, translate, domains,
                                        args.exemplars, args.num_workers, not args.no_progress,
                                        translate_queries_with=mduit_run if translate_queries else None,
                                        reuse_index=translate_queries, fuse_translations=fuse)

    trained = {key: f"{record.steps} steps, {record.seconds:.0f} s" for key, record in runs.items()}
    mduit_run, netvlad_run = work / "runs" / "mduit", work / "runs" / "netvlad"
    rows = [nordland.score_ranked("raw pixels (32x64, normalised)", ranked("raw-pixels:32x64", "raw"), split,
                                  "no training"),
            nordland.score_ranked("NetVLAD (light backbone)", ranked(netvlad_run, "netvlad"), split,
                                  trained["netvlad"]),
            nordland.score_ranked("MDUIT z", ranked(mduit_run, "mduit"), split, trained["mduit"]),
            nordland.score_ranked(f"MDUIT z + translated database ({args.exemplars} winter appearances)",
                                  ranked(mduit_run, "mduit-translated", translate=True), split, "same model"),
            nordland.score_ranked(f"MDUIT z + translated database fused into each image (weight {FUSED_WEIGHT:g})",
                                  ranked(mduit_run, "mduit-translated-fused", translate=True, fuse=FUSED_WEIGHT),
                                  split, "same model"),
            nordland.score_ranked("raw pixels, winter queries translated into summer by MDUIT",
                                  ranked("raw-pixels:32x64", "raw-queries-translated", translate_queries=True), split,
                                  "same MDUIT model"),
            nordland.score_ranked("MDUIT z, winter queries translated into summer",
                                  ranked(mduit_run, "mduit-queries-translated", translate_queries=True), split,
                                  "same model")]
    table = nordland.rows_markdown(rows, split)
    grid = nordland.translation_examples(mduit_run, args.data, split, work / "translations")
    print(f"[nordland] winter -> summer translations of test frames, true summer frames beneath: {grid}",
          file=sys.stderr, flush=True)
    seconds = time.perf_counter() - started
    header = (f"Nordland, winter -> summer, {args.image_size} input, {budget.describe('mduit')} of training per "
              f"method, {threads} torch thread(s); this run took {seconds / 60:.1f} min")
    print(f"\n{header}\n\n{table}")
    write_text_atomic(work / "nordland.md", f"{header}\n\n{table}\n")
    write_json_atomic(work / "nordland.json", {"rows": [asdict(r) for r in rows], "seconds": round(seconds, 1),
                                               "train_frames": len(split.train), "test_frames": len(split.test),
                                               "frame_step": split.frame_step, "image_size": args.image_size,
                                               "steps": steps, "budget_min": args.budget_min})
    return 0


if __name__ == "__main__":
    sys.exit(main())

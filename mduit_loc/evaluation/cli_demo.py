"""``mduit-loc demo``: the whole pipeline on the built-in synthetic benchmark, with a report.

    mduit-loc demo                       # ./demo_output, tiny benchmark, 3 min training per method
    mduit-loc demo --out /tmp/demo --budget-min 2

Stages: render the tiny synthetic benchmark; train MDUIT (tiny preset) and the NetVLAD baseline
(light backbone) on the same data and the same wall-clock budget; index the map (MDUIT with the
translated database, the paper's augmentation); localize the test queries (retrieval restricted to
the query's camera and location, pose of the top-1 image); evaluate both (day / night recall at the
RobotCar Seasons thresholds); write benchmark submission files, translation grids (night -> day,
day -> night) and report.md / report.html. Re-running skips finished stages and resumes an
interrupted training, so a killed demo continues where it stopped.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mduit_loc.evaluation.pipeline_training import add_training_arguments, budget_from_args

DEFAULT_OUT = Path("demo_output")
DEFAULT_BUDGET_MIN = 3.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: ./demo_output)")
    parser.add_argument("--preset", choices=("tiny", "small"), default="tiny",
                        help="synthetic benchmark size: tiny (default, the demo) or small (longer)")
    parser.add_argument("--budget-min", type=float, default=DEFAULT_BUDGET_MIN,
                        help=f"wall-clock training minutes per method, the same for MDUIT and NetVLAD "
                             f"(default: {DEFAULT_BUDGET_MIN:g})")
    parser.add_argument("--data", type=Path,
                        help="use this synthetic benchmark instead of rendering one into OUT/data")
    parser.add_argument("--seed", type=int, default=0, help="seed of the benchmark and the trainings (default: 0)")
    parser.add_argument("--no-per-location", action="store_true",
                        help="retrieve from the whole map instead of the query's location only")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=int,
                        help="torch threads (default: all cores, or 1 when the machine is already busy)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    small = parser.add_argument_group("miniature runs (tests, quick looks)")
    small.add_argument("--size", type=int, help="rendered image size in pixels (default: the preset's)")
    small.add_argument("--locations", type=int, help="number of locations rendered (default: the preset's)")
    add_training_arguments(small)

def _budget(args):
    return budget_from_args(args, seed=args.seed)


def _methods():
    from mduit_loc.evaluation.pipeline import MethodSpec

    return (MethodSpec("MDUIT (translated db)", "mduit", "mduit", (), translate_db=True),
            MethodSpec("NetVLAD", "netvlad", "netvlad"),
            # content features on a grid instead of z: see README, Table 1's "E_c grid" rows
            MethodSpec("MDUIT E_c grid", "mduit-content", "mduit", view="content:4x4", trained_by="mduit"))


def run(args) -> int:
    from mduit_loc.evaluation.pipeline import (RetrievalProtocol, StageClock, configure_threads, evaluate_poses,
                                               format_seconds, localize_method, render_synthetic, synthetic_ready,
                                               write_submissions)
    from mduit_loc.evaluation.pipeline_grids import translation_grids
    from mduit_loc.evaluation.pipeline_training import run_finished, train_method

    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    budget, methods = _budget(args), _methods()
    trained = [method for method in methods if method.trained_by is None]
    protocol = RetrievalProtocol(per_location=not args.no_per_location, device=args.device,
                                 num_workers=args.num_workers, progress=not args.no_progress)
    clock = StageClock(out, 1 + len(trained) + len(methods) + 4, "demo")
    print(f"mduit-loc demo -> {out} ({configure_threads(args.threads)} torch thread(s))", file=sys.stderr)
    data = args.data or out / "data"
    with clock.stage("render", f"synthetic benchmark ({args.preset}) -> {data}") as stage:
        if synthetic_ready(data):
            stage.skip("already rendered")
        else:
            render_synthetic(data, args.preset, args.seed, args.size, args.locations, quiet=args.no_progress)
    records = {}
    for method in trained:
        run_dir = out / "runs" / method.key
        what = "MDUIT (tiny preset)" if method.kind == "mduit" else "NetVLAD baseline (light backbone)"
        with clock.stage(f"train-{method.key}", f"train {what}, budget {budget.seconds / 60:g} min -> {run_dir}") \
                as stage:
            if run_finished(run_dir):
                stage.skip("already trained")
            records[method.key] = train_method(data, method, run_dir, budget)
    poses = {}
    for method in methods:
        what = "index (translated database) and localize" if method.translate_db else "index and localize"
        with clock.stage(f"localize-{method.key}", f"{method.label}: {what} the test queries"):
            poses[method.key] = localize_method(data, out / "runs" / method.run_key, method,
                                                out / "index" / method.key, out / "results" / method.key, protocol)
    with clock.stage("evaluate", "evaluate (day / night recall)"):
        results = evaluate_poses(data, {m.label: poses[m.key] for m in methods})
        files = _write_evaluation(results, out)
    with clock.stage("submit", "benchmark submission files (rear camera, test list)"):
        submissions = write_submissions(data, poses, out / "submission")
    with clock.stage("grids", "translation grids (night -> day, day -> night)"):
        grids = translation_grids(data, out / "runs" / "mduit", out / "translations", args.device)
    with clock.stage("report", "report.md / report.html"):
        from mduit_loc.evaluation.pipeline_report import write_demo_report

        report = write_demo_report(out, data, args, methods, records, results, files, grids, submissions,
                                   protocol, clock.timings)
    _print_summary(results, out, data, files, grids, submissions, report, format_seconds(clock.elapsed()),
                   [method.key for method in methods])
    return 0


def _write_evaluation(results, out: Path) -> dict[str, Path]:
    from mduit_loc.evaluation.plots import plot_recall_curves
    from mduit_loc.evaluation.tables import write_csv, write_query_csv

    return {"csv": write_csv(out / "eval.csv", results),
            "queries_csv": write_query_csv(out / "eval_queries.csv", results),
            "plot": plot_recall_curves(results, out / "recall_curves.png")}


def _print_summary(results, out: Path, data: Path, files, grids, submissions, report, elapsed: str,
                   keys: list[str]) -> None:
    from mduit_loc.evaluation.tables import main_table

    print("\n" + main_table(results).to_text())
    lines = [f"\ndemo finished; this run took {elapsed} (finished stages of earlier runs are skipped). Outputs:",
             f"  report        {report.markdown}  and  {report.html}",
             f"  dataset       {data}",
             f"  models        {out / 'runs' / 'mduit'}  {out / 'runs' / 'netvlad'}",
             f"  indexes       {out / 'index'}",
             "  poses, pairs  " + "  ".join(str(out / "results" / key) for key in keys),
             f"  evaluation    {files['csv']}  {files['queries_csv']}  {files['plot']}",
             "  submissions   " + "  ".join(str(p) for p in submissions.values()),
             "  translations  " + "  ".join(str(p) for p in grids.values()),
             f"  timings       {out / 'timings.json'}"]
    print("\n".join(lines))
    sys.stdout.flush()

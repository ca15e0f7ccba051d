"""The demo pipeline: the synthetic benchmark, MDUIT and NetVLAD trained on the same budget, a report.

Stages: render the tiny synthetic benchmark; train MDUIT (tiny preset) and the NetVLAD baseline
(light backbone) on the same data and the same wall-clock budget; index the map (MDUIT with the
translated database, the paper's augmentation); localize the test queries; evaluate every method
(day / night recall at the RobotCar Seasons thresholds); write benchmark submission files,
translation grids (night -> day, day -> night), the translation quality on the aligned set and
report.md / report.html. Re-running skips finished stages and resumes an interrupted training, so a
killed demo continues where it stopped.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from mduit_loc.evaluation.evaluate import EvaluationResult
from mduit_loc.evaluation.plots import plot_recall_curves
from mduit_loc.evaluation.report import ReportPaths
from mduit_loc.evaluation.tables import main_table, write_csv, write_query_csv
from mduit_loc.pipelines.clock import StageClock, format_seconds
from mduit_loc.pipelines.demo_report import write_demo_report
from mduit_loc.pipelines.grids import quality_done, translation_grids, translation_quality_tables
from mduit_loc.pipelines.methods import FUSED_WEIGHT, MethodSpec, RetrievalProtocol
from mduit_loc.pipelines.stages import (
    evaluate_poses,
    localize_method,
    render_synthetic,
    synthetic_ready,
    write_submissions,
)
from mduit_loc.pipelines.threads import configure_threads
from mduit_loc.pipelines.training import TrainingBudget, TrainingRecord, run_finished, train_method

QUALITY_DIR = "translation_quality"   # mduit-loc translation-quality's files for the demo's model
DEMO_METHODS = (
    MethodSpec(label="Raw pixels (no training)", key="raw-pixels", kind="raw"),
    MethodSpec(label="NetVLAD", key="netvlad", kind="netvlad"),
    MethodSpec(label="MDUIT z (translated db)", key="mduit", kind="mduit", translate_db=True,
               fuse_translations=FUSED_WEIGHT),
    MethodSpec(label="MDUIT z, queries translated", key="mduit-queries-translated", kind="mduit", translate_db=True,
               fuse_translations=FUSED_WEIGHT, trained_by="mduit", translate_queries_to="overcast-reference",
               translator="mduit"),
)


@dataclass(frozen=True, kw_only=True)
class DemoSettings:
    out: Path
    budget: TrainingBudget
    protocol: RetrievalProtocol
    data: Path | None = None            # None: render the benchmark into OUT/data
    preset: str = "demo"                # synthetic benchmark rendered
    seed: int = 0
    size: int | None = None             # rendered image size (default: the preset's)
    locations: int | None = None        # rendered locations (default: the preset's)
    threads: int | None = None          # torch threads (None: automatic)


@dataclass(frozen=True, kw_only=True)
class DemoOutputs:
    data: Path
    results: list[EvaluationResult]
    files: dict[str, Path]              # csv, queries_csv, plot
    grids: dict[str, Path]
    submissions: dict[str, Path]
    report: ReportPaths
    elapsed: str


def run_demo(settings: DemoSettings, methods: tuple[MethodSpec, ...] = DEMO_METHODS) -> DemoOutputs:
    """Every stage of the demo in ``settings.out`` (finished ones skipped); returns what it wrote."""
    out, budget, protocol = settings.out, settings.budget, settings.protocol
    out.mkdir(parents=True, exist_ok=True)
    trained = [method for method in methods if method.trained_by is None and method.kind != "raw"]
    clock = StageClock(out, 1 + len(trained) + len(methods) + 5, "demo")
    print(f"mduit-loc demo -> {out} ({configure_threads(settings.threads)} torch thread(s))", file=sys.stderr)
    data = settings.data or out / "data"
    with clock.stage("render", f"synthetic benchmark ({settings.preset}) -> {data}") as stage:
        if synthetic_ready(data):
            stage.skip("already rendered")
        else:
            render_synthetic(data, settings.preset, settings.seed, settings.size, settings.locations,
                             quiet=not protocol.progress)
    records: dict[str, TrainingRecord] = {}
    for method in trained:
        run_dir = out / "runs" / method.key
        what = "MDUIT (tiny preset)" if method.kind == "mduit" else "NetVLAD baseline (light backbone)"
        with clock.stage(f"train-{method.key}", f"train {what}, {budget.describe(method.kind)} -> {run_dir}") \
                as stage:
            if run_finished(run_dir):
                stage.skip("already trained")
            records[method.key] = train_method(data, method, run_dir, budget)
    poses = {}
    for method in methods:
        what = "index (translated database) and localize" if method.translate_db else "index and localize"
        with clock.stage(f"localize-{method.key}", f"{method.label}: {what} the test queries"):
            translator = out / "runs" / method.translator if method.translator else None
            poses[method.key] = localize_method(data, out / "runs" / method.run_key, method,
                                                out / "index" / method.index_key, out / "results" / method.key,
                                                protocol, translator)
    with clock.stage("evaluate", "evaluate (day / night recall)"):
        results = evaluate_poses(data, {m.label: poses[m.key] for m in methods})
        files = write_evaluation(results, out)
    with clock.stage("submit", "benchmark submission files (rear camera, test list)"):
        submissions = write_submissions(data, poses, out / "submission")
    with clock.stage("grids", "translation grids (night -> day, day -> night)"):
        grids = translation_grids(data, out / "runs" / "mduit", out / "translations", protocol.device)
    with clock.stage("translation-quality", "translation quality on the aligned set (vs colour transfer, "
                     "identity)") as stage:
        if quality_done(out / QUALITY_DIR):
            stage.skip("already measured")
        quality = translation_quality_tables(data, out / "runs" / "mduit", out / QUALITY_DIR, protocol.device,
                                             protocol.progress)
    with clock.stage("report", "report.md / report.html"):
        report = write_demo_report(out, data, budget, methods, records, results, files, grids, submissions,
                                   protocol, clock.timings, quality)
    return DemoOutputs(data=data, results=results, files=files, grids=grids, submissions=submissions, report=report,
                       elapsed=format_seconds(clock.elapsed()))


def write_evaluation(results: list[EvaluationResult], out: Path) -> dict[str, Path]:
    return {"csv": write_csv(out / "eval.csv", results),
            "queries_csv": write_query_csv(out / "eval_queries.csv", results),
            "plot": plot_recall_curves(results, out / "recall_curves.png")}


def print_summary(outputs: DemoOutputs, out: Path, keys: list[str]) -> None:
    print("\n" + main_table(outputs.results).to_text())
    files, report = outputs.files, outputs.report
    lines = [f"\ndemo finished; this run took {outputs.elapsed} (finished stages of earlier runs are skipped). "
             "Outputs:",
             f"  report        {report.markdown}  and  {report.html}",
             f"  dataset       {outputs.data}",
             f"  models        {out / 'runs' / 'mduit'}  {out / 'runs' / 'netvlad'}",
             f"  indexes       {out / 'index'}",
             "  poses, pairs  " + "  ".join(str(out / "results" / key) for key in keys),
             f"  evaluation    {files['csv']}  {files['queries_csv']}  {files['plot']}",
             "  submissions   " + "  ".join(str(p) for p in outputs.submissions.values()),
             "  translations  " + "  ".join(str(p) for p in outputs.grids.values()),
             f"  quality       {out / QUALITY_DIR / 'summary.md'}  (translation quality)",
             f"  timings       {out / 'timings.json'}"]
    print("\n".join(lines))
    sys.stdout.flush()

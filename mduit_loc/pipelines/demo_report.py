"""The demo's report: results table, recall plot, translation grids and their quality, training budgets,
timings, outputs."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from mduit_loc.evaluation.evaluate import EvaluationResult
from mduit_loc.evaluation.report import ReportImage, ReportPaths, ReportSection, evaluation_sections, write_report
from mduit_loc.evaluation.tables import Table
from mduit_loc.evaluation.translation_quality_outputs import pooled_table, reconstruction_table, verdict_lines
from mduit_loc.evaluation.translation_quality_run import QualityResult
from mduit_loc.pipelines.methods import MethodSpec, RetrievalProtocol
from mduit_loc.pipelines.training import TrainingBudget, TrainingRecord


def _number(value: Any, digits: int = 1) -> str:
    try:
        return f"{float(value):.{digits}f}"
    except (TypeError, ValueError):
        return "-"


def training_table(methods: Sequence[MethodSpec], records: dict[str, TrainingRecord]) -> Table:
    """Per method: training wall seconds, steps and images seen (from each run.json)."""
    rows = []
    for method in methods:
        if method.trained_by or method.kind == "raw":  # another method's model, or nothing to train
            continue
        record = records[method.key]
        images = record.images_seen if record.images_seen is not None else "-"
        rows.append([method.label, _number(record.seconds), str(record.steps), str(images), str(record.run_dir)])
    return Table("Training (same data, same step budget)", ["Method", "Seconds", "Steps", "Images seen", "Run"],
                 rows)


def timings_table(timings: dict[str, dict[str, Any]]) -> Table:
    rows = [[name, _number(entry.get("seconds")), "yes" if entry.get("skipped") else ""]
            for name, entry in timings.items()]
    total = sum(float(entry.get("seconds", 0.0)) for entry in timings.values() if not entry.get("skipped"))
    rows.append(["total (stages run)", _number(total), ""])
    return Table("Wall time per stage (seconds; the last run of each)", ["Stage", "Seconds", "Skipped"], rows)


def quality_section(quality: QualityResult) -> ReportSection:
    """The translation-quality tables ('mduit-loc translation-quality'), placed right under the grids."""
    text = ("Measured on the benchmark's aligned set ('mduit-loc translation-quality'): each source image is "
            "translated into every other condition and compared with the true rendering of that condition at "
            "the same pose, beside a global colour transfer (Lab mean/std) and the untranslated source. "
            "The floor row is a real image of the target condition at another pose. MDUIT is worth its cost "
            "where it beats both baselines.\n\n" + "\n\n".join(verdict_lines(quality)))
    return ReportSection("Translation quality", text, tables=[pooled_table(quality), reconstruction_table(quality)])


def _dataset_text(data: Path) -> str:
    try:
        info = json.loads((Path(data) / "synth.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"Dataset: {data}."
    preset = info.get("preset", {})
    return (f"Dataset: the synthetic benchmark ({preset.get('name', '?')} preset, {info.get('locations', '?')} "
            f"locations, {preset.get('image_size', '?')} px) in {data}: {info.get('database_images', '?')} "
            f"database images (overcast-reference) and {info.get('query_images', '?')} query images of nine "
            f"conditions, of which the test split (with ground truth) is evaluated.")


def write_demo_report(out: Path, data: Path, budget: TrainingBudget, methods: Sequence[MethodSpec],
                      records: dict[str, TrainingRecord], results: Sequence[EvaluationResult], files: dict[str, Path],
                      grids: dict[str, Path], submissions: dict[str, Path], protocol: RetrievalProtocol,
                      timings: dict[str, dict[str, Any]], quality: QualityResult | None = None) -> ReportPaths:
    summary = (f"{_dataset_text(data)}\n\n"
               f"Both learned methods were trained on the same images (MDUIT {budget.describe('mduit')}, NetVLAD "
               f"{budget.describe('netvlad')}): MDUIT with the tiny preset (its descriptor z = H(E_c(I)); the "
               f"database is indexed together with its translations into one exemplar appearance per "
               f"condition), NetVLAD with the light CPU backbone. Both learn from the poses of the database "
               f"and training-split images (same place: within 7 m and 8 degrees); MDUIT also sees the "
               f"unlabelled test query images (translation is unsupervised, as in the paper). Raw pixels is an "
               f"untrained 16 x 16 thumbnail: what learning must beat. 'MDUIT z, queries translated' translates "
               f"each query into the map's condition (overcast-reference) with the MDUIT model before describing "
               f"it (beyond the paper).\n\n"
               f"Localization: {protocol.describe()}.")
    sections = [ReportSection("Setup", summary)]
    sections += evaluation_sections(results, files["plot"], details=True, plot_rotation_deg=10.0)
    grid_images = [ReportImage(path, f"MDUIT translations, {key.replace('_', ' ')}: rows are source images "
                                     f"(condition at the left), columns the target conditions (named on top), "
                                     f"each given as its domain-mean appearance filter W; under each source, the "
                                     f"true renderings at its pose where the benchmark has an aligned set")
                   for key, path in grids.items() if Path(path).is_file()]
    if grid_images:
        sections.append(ReportSection("Translations", "Translated by the demo's MDUIT model "
                                                       "('mduit-loc translate').", images=grid_images))
    if quality is not None:
        sections.append(quality_section(quality))
    sections.append(ReportSection("Training", tables=[training_table(methods, records)]))
    sections.append(ReportSection("Run time", "Measured on this machine; a re-run skips finished stages.",
                                  tables=[timings_table(timings)]))
    outputs = "\n".join([f"evaluation CSV       {files['csv']}", f"per-query errors     {files['queries_csv']}",
                         f"recall plot          {files['plot']}"]
                        + [f"submission ({key})  {path}" for key, path in submissions.items()]
                        + [f"poses ({m.key})       {out / 'results' / m.key / 'poses.txt'}" for m in methods])
    sections.append(ReportSection("Files", code=outputs))
    return write_report(out, "mduit-loc demo: MDUIT vs NetVLAD on the synthetic benchmark", sections)

"""The paper's Table 1: NetVLAD and the MDUIT ablations trained and evaluated on the same data and budget.

    from mduit_loc.pipelines.table1 import run_table1
    table = run_table1(Path("data/synth_small"), Path("table1_out"),
                       TrainingBudget(mduit_steps=DEFAULT_STEPS, netvlad_steps=DEFAULT_STEPS))

Command: ``mduit-loc table1`` (``mduit_loc.pipelines.cli_table1``; ``mduit-loc eval --table1`` is an alias).
Rows: raw pixels (an untrained 16 x 16 thumbnail: what learning must beat), then the paper's
order: NetVLAD (light backbone here), MDUIT w/o I2I and NCE (``use_i2i=False, use_nce=False``, the
``--no-i2i --no-nce`` of ``mduit-loc train``), w/o I2I (``use_i2i=False``), w/o NCE
(``use_nce=False``) and Full; columns: day-all and night-all recall at (0.25 m, 2°), (0.5 m, 5°),
(5 m, 10°). Every variant learns from the pose-supervised positives of §3.1; what the ablations
remove is the translation module (its translated positive becomes a colour-jittered copy, the
paper's footnote 1) and the NCE loss (the tiny preset puts eq. 4's margin form on z in its place, because
the paper's L1 pull towards the positives, without negatives, collapses z: ``nce_ablation_loss``). MDUIT
variants with the translation module index the translated database (the paper's augmentation, each
image's copies fused into its vector: ``FUSED_WEIGHT``); the variants without it cannot translate and
index the plain database. Extra rows: "Full, plain db" isolates what the translated database adds;
"Full, best copy" keeps every copy as its own vector, an image scoring its best (the paper's rule);
"... queries translated" translate each query into the map's condition with the Full model before
describing it (query-side translation, beyond the paper) for raw pixels, NetVLAD and Full. Every
trained method gets the same number of optimizer steps.
Every method is trained in ``OUT/runs/<key>`` and localized in ``OUT/results/<key>``; a method
whose results exist is not retrained nor re-localized, so an interrupted run continues.
Outputs: ``table1.csv`` (ours and the paper's numbers), ``table1.md``, ``eval.csv``, ``recall_curves.png``.
"""
from __future__ import annotations

import csv
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from mduit_loc.evaluation.evaluate import DAY_ALL, NIGHT_ALL, EvaluationResult
from mduit_loc.evaluation.plots import plot_recall_curves
from mduit_loc.evaluation.tables import Table, percent, write_csv
from mduit_loc.io_utils import atomic_open, write_text_atomic
from mduit_loc.pipelines.clock import StageClock
from mduit_loc.pipelines.methods import FUSED_WEIGHT, MethodSpec, RetrievalProtocol
from mduit_loc.pipelines.stages import evaluate_poses, localize_method
from mduit_loc.pipelines.training import TrainingBudget, TrainingRecord, train_method

# Paper, Table 1 (RobotCar Seasons), % at (0.25 m, 2°), (0.5 m, 5°), (5 m, 10°): day-all then night-all.
DEFAULT_STEPS = 1000                # optimizer steps per trained method (the command's default)
REFERENCE = "overcast-reference"    # the map's condition: query-side translation's target
PAPER_TABLE1: dict[str, tuple[float, ...]] = {
    "NetVLAD": (6.4, 26.3, 90.9, 0.3, 2.3, 15.9),
    "w/o I2I, NCE": (2.9, 12.7, 56.8, 0.2, 1.3, 18.7),
    "w/o I2I": (5.1, 18.9, 74.9, 0.7, 4.4, 27.7),
    "w/o NCE": (7.7, 25.9, 82.4, 1.7, 6.3, 41.9),
    "Full": (8.5, 31.8, 88.2, 4.1, 14.2, 61.0),
}
RAW_PIXELS = MethodSpec(label="Raw pixels (no training)", key="raw-pixels", kind="raw")
TABLE1_METHODS: tuple[MethodSpec, ...] = (
    RAW_PIXELS,
    MethodSpec(label="NetVLAD", key="netvlad", kind="netvlad"),
    MethodSpec(label="w/o I2I, NCE", key="mduit-no-i2i-no-nce", kind="mduit",
               train_settings={"use_i2i": False, "use_nce": False}),
    MethodSpec(label="w/o I2I", key="mduit-no-i2i", kind="mduit", train_settings={"use_i2i": False}),
    MethodSpec(label="w/o NCE", key="mduit-no-nce", kind="mduit", train_settings={"use_nce": False},
               translate_db=True, fuse_translations=FUSED_WEIGHT),
    MethodSpec(label="Full", key="mduit-full", kind="mduit", translate_db=True, fuse_translations=FUSED_WEIGHT),
)
# Same model as Full (no extra training), plain database: what the translated database adds.
FULL_PLAIN_DB = MethodSpec(label="Full, plain db", key="mduit-full-plain-db", kind="mduit", translate_db=False,
                           trained_by="mduit-full")
# Same model, the paper's rule for the translated database: each copy its own vector, an image scores its best.
FULL_BEST_COPY = MethodSpec(label="Full, best copy", key="mduit-full-best-copy", kind="mduit", translate_db=True,
                            trained_by="mduit-full")
# Query-side translation (beyond the paper): each query translated into the map's condition by the Full
# model (its domain-mean appearance filter) before it is described; the database is indexed as without it.
QUERY_TRANSLATION_ROWS = (
    MethodSpec(label="Raw pixels, queries translated", key="raw-pixels-queries-translated", kind="raw",
               trained_by="raw-pixels", translate_queries_to=REFERENCE, translator="mduit-full"),
    MethodSpec(label="NetVLAD, queries translated", key="netvlad-queries-translated", kind="netvlad",
               trained_by="netvlad", translate_queries_to=REFERENCE, translator="mduit-full"),
    MethodSpec(label="Full, queries translated", key="mduit-full-queries-translated", kind="mduit",
               translate_db=True, fuse_translations=FUSED_WEIGHT, trained_by="mduit-full",
               translate_queries_to=REFERENCE, translator="mduit-full"),
)
COLUMNS = ("day 0.25m/2°", "day 0.5m/5°", "day 5m/10°", "night 0.25m/2°", "night 0.5m/5°", "night 5m/10°")
CSV_FILE, MARKDOWN_FILE = "table1.csv", "table1.md"


@dataclass
class Table1Row:
    method: MethodSpec
    recalls: tuple[float, ...]          # fractions, day x3 then night x3
    training: TrainingRecord

    @property
    def paper(self) -> tuple[float, ...] | None:
        return PAPER_TABLE1.get(self.method.label)


@dataclass
class Table1:
    rows: list[Table1Row]
    results: list[EvaluationResult]     # per row
    day_queries: int
    night_queries: int
    data: Path
    budget: TrainingBudget
    protocol: RetrievalProtocol


def run_table1(data: Path, out: Path, budget: TrainingBudget, protocol: RetrievalProtocol | None = None,
               methods: Sequence[MethodSpec] = TABLE1_METHODS, extra_rows: bool = True) -> Table1:
    """Train, localize and evaluate every method (skipping finished ones); write the tables; return them."""
    protocol = protocol or RetrievalProtocol(device=budget.device, progress=budget.progress)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    chosen = list(methods)
    if extra_rows:
        keys = {m.key for m in methods}
        chosen += [row for row in (FULL_PLAIN_DB, FULL_BEST_COPY, *QUERY_TRANSLATION_ROWS)
                   if row.trained_by in keys and (row.translator is None or row.translator in keys)]
    clock = StageClock(out, 2 * len(chosen) + 1, "table1")
    records: dict[str, TrainingRecord] = {}
    poses: dict[str, Path] = {}
    for method in chosen:
        run_dir = out / "runs" / method.run_key
        what = (f"model of {run_dir.name} (no training of its own)" if method.trained_by
                else f"train {method.label} ({budget.describe(method.kind)})")
        with clock.stage(f"train-{method.key}", what):
            records[method.key] = (records[method.trained_by] if method.trained_by in records
                                   else train_method(data, method, run_dir, budget))
        translator = out / "runs" / method.translator if method.translator else None
        with clock.stage(f"localize-{method.key}", f"localize with {method.label}"):
            poses[method.key] = localize_method(data, run_dir, method, out / "index" / method.index_key,
                                                out / "results" / method.key, protocol, translator)
    with clock.stage("evaluate", "evaluate and write the tables"):
        results = evaluate_poses(data, {m.label: poses[m.key] for m in chosen})
        rows = [Table1Row(m, tuple(r.subset(DAY_ALL).recalls) + tuple(r.subset(NIGHT_ALL).recalls), records[m.key])
                for m, r in zip(chosen, results)]
        table = Table1(rows, results, results[0].subset(DAY_ALL).n, results[0].subset(NIGHT_ALL).n, Path(data),
                       budget, protocol)
        write_table1(table, out)
    return table


# --- rendering -------------------------------------------------------------------------------
def _paper_cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def ours_table(table: Table1) -> Table:
    headers = ["Method"] + [c.capitalize() for c in COLUMNS] + ["Train s", "Steps"]
    rows = [[row.method.label] + [percent(v) for v in row.recalls]
            + [f"{row.training.seconds:.0f}" if math.isfinite(row.training.seconds) else "-", str(row.training.steps)]
            for row in table.rows]
    title = (f"Table 1 on {table.data.name}: recall (%), day all ({table.day_queries} queries) | night all "
             f"({table.night_queries} queries)")
    return Table(title, headers, rows)


def comparison_table(table: Table1) -> Table:
    """Each cell 'ours (paper)'; the paper's numbers are RobotCar Seasons, ours the dataset given."""
    headers = ["Method"] + [c.capitalize() for c in COLUMNS]
    rows = []
    for row in table.rows:
        paper = row.paper
        rows.append([row.method.label] + [f"{percent(v)} ({_paper_cell(paper[i] if paper else None)})"
                                          for i, v in enumerate(row.recalls)])
    return Table("Ours (the paper's RobotCar Seasons number in parentheses)", headers, rows)


def paper_table() -> Table:
    headers = ["Method"] + [c.capitalize() for c in COLUMNS]
    return Table("Paper, Table 1 (RobotCar Seasons)", headers,
                 [[label] + [f"{v:.1f}" for v in values] for label, values in PAPER_TABLE1.items()])


def table1_markdown(table: Table1) -> str:
    budget = table.budget
    length = (f"MDUIT {budget.describe('mduit')} per variant, NetVLAD {budget.describe('netvlad')}"
              if budget.mduit_steps is not None and budget.netvlad_steps is not None
              else f"{(budget.seconds or 0.0) / 60:g} min wall-clock training per method")
    lines = [f"# Table 1 on {table.data}", "",
             f"Training budget: {length}. MDUIT: {budget.mduit_preset} preset; its contrastive module learns from "
             f"the pose-supervised positives of §3.1 (images within 7 m and 8 degrees) and also translates the "
             f"unlabelled test query images (translation is unsupervised, as in the paper). NetVLAD: "
             f"{budget.netvlad_backbone} backbone, weakly supervised by the same poses. Raw pixels: no training. "
             f"'Train s' is the training time actually spent (machine-dependent), 'Steps' its optimizer steps. "
             f"Localization: {table.protocol.describe()}. Recall = % of all test queries with position AND "
             f"rotation error within the threshold. MDUIT rows with the translation module index the database "
             f"with its translations (one exemplar appearance per condition), fused into each image's vector "
             f"(weight {FUSED_WEIGHT:g}); 'Full, plain db' is the Full model without them, 'Full, best copy' "
             f"keeps each copy as its own vector and an image scores its best copy (the paper's rule). "
             f"Rows '..., queries translated' translate every query into the map's condition ({REFERENCE}) "
             f"with the Full model before describing it.", "",
             ours_table(table).to_markdown(), "", comparison_table(table).to_markdown(), "",
             "The paper's numbers are on RobotCar Seasons with full-size models trained on a GPU; ours are on "
             "the dataset above with CPU-sized models, so only the ordering of the rows is comparable.", ""]
    return "\n".join(lines)


def write_table1(table: Table1, out: Path) -> tuple[Path, Path]:
    csv_path = Path(out) / CSV_FILE
    with atomic_open(csv_path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["method", "key"] + [f"ours {c}" for c in COLUMNS] + [f"paper {c}" for c in COLUMNS]
                        + ["train_seconds", "train_steps"])
        for row in table.rows:
            paper = row.paper or (None,) * len(COLUMNS)
            writer.writerow([row.method.label, row.method.key] + [f"{100 * v:.2f}" for v in row.recalls]
                            + ["" if p is None else f"{p:.1f}" for p in paper]
                            + [f"{row.training.seconds:.1f}", row.training.steps])
    markdown_path = Path(out) / MARKDOWN_FILE
    write_text_atomic(markdown_path, table1_markdown(table))
    write_csv(Path(out) / "eval.csv", table.results)
    plot_recall_curves(table.results, Path(out) / "recall_curves.png")
    return csv_path, markdown_path


def print_table1(table: Table1, out: Path) -> None:
    print("\n" + ours_table(table).to_text() + "\n\n" + paper_table().to_text())
    print(f"\nwrote {Path(out) / CSV_FILE}, {Path(out) / MARKDOWN_FILE}, {Path(out) / 'eval.csv'}, "
          f"{Path(out) / 'recall_curves.png'}")
    sys.stdout.flush()

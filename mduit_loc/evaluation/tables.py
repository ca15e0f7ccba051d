"""Result tables: the paper's shape on the terminal (also Markdown / HTML for reports) and a long CSV.

Recalls are shown in percent with one decimal; ``-`` marks an empty subset.
"""
from __future__ import annotations

import csv
import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from mduit_loc.evaluation.evaluate import ALL, DAY_ALL, NIGHT_ALL, EvaluationResult
from mduit_loc.io_utils import atomic_open

CSV_COLUMNS = ("method", "group", "subset", "n", "n_estimated", "position_threshold_m", "rotation_threshold_deg",
               "recall_percent", "median_position_m", "median_rotation_deg")
QUERY_CSV_COLUMNS = ("method", "name", "condition", "camera", "day_night", "estimated",
                     "position_error_m", "rotation_error_deg")


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)

    def to_text(self) -> str:
        widths = [max(len(cell) for cell in column) for column in zip(self.headers, *self.rows)]

        def line(cells: Sequence[str]) -> str:
            first = cells[0].ljust(widths[0])
            return "  ".join([first] + [cell.rjust(width) for cell, width in zip(cells[1:], widths[1:])]).rstrip()

        rule = "-" * len(line(self.headers))
        body = [self.title, rule, line(self.headers), rule, *(line(row) for row in self.rows), rule]
        return "\n".join(body + self.notes)

    def to_markdown(self) -> str:
        def line(cells: Sequence[str]) -> str:
            return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

        align = ["---"] + ["---:"] * (len(self.headers) - 1)
        lines = [f"**{self.title}**", "", line(self.headers), "| " + " | ".join(align) + " |"]
        lines += [line(row) for row in self.rows]
        lines += [""] + [f"_{note}_" for note in self.notes] if self.notes else []
        return "\n".join(lines)

    def to_html(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.headers)
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>\n" for row in self.rows)
        notes = "".join(f"<p class=\"note\">{html.escape(n)}</p>" for n in self.notes)
        return (f"<table>\n<caption>{html.escape(self.title)}</caption>\n<thead><tr>{head}</tr></thead>\n"
                f"<tbody>\n{rows}</tbody>\n</table>\n{notes}")


def percent(value: float) -> str:
    return "-" if math.isnan(value) else f"{100.0 * value:.1f}"


def _number(value: float, digits: int = 2) -> str:
    if math.isnan(value):
        return "-"
    return "inf" if math.isinf(value) else f"{value:.{digits}f}"


def _threshold_labels(result: EvaluationResult) -> list[str]:
    return [t.label for t in result.thresholds]


def main_table(results: Sequence[EvaluationResult]) -> Table:
    """Rows: methods; columns: day-all then night-all recall at each threshold (the paper's Table 1 shape)."""
    first = results[0]
    labels = _threshold_labels(first)
    headers = ["Method"] + [f"Day {label}" for label in labels] + [f"Night {label}" for label in labels]
    rows = [[r.method] + [percent(v) for v in r.subset(DAY_ALL).recalls]
            + [percent(v) for v in r.subset(NIGHT_ALL).recalls] for r in results]
    day, night = first.subset(DAY_ALL).n, first.subset(NIGHT_ALL).n
    title = f"Recall (%) at (position, rotation) thresholds; day all: {day} queries, night all: {night} queries"
    return Table(title, headers, rows, _ignored_notes(results))


def median_table(results: Sequence[EvaluationResult]) -> Table:
    headers = ["Method", "Estimated", "Day med. pos (m)", "Day med. rot (°)", "Night med. pos (m)",
               "Night med. rot (°)", "All med. pos (m)", "All med. rot (°)"]
    rows = []
    for r in results:
        total = r.subset(ALL)
        row = [r.method, f"{total.n_estimated}/{total.n}"]
        for subset in (DAY_ALL, NIGHT_ALL, ALL):
            score = r.subset(subset)
            row += [_number(score.median_position_m), _number(score.median_rotation_deg)]
        rows.append(row)
    return Table("Median errors (queries without an estimate count as infinite)", headers, rows)


def breakdown_table(results: Sequence[EvaluationResult], group: str, title: str) -> Table:
    """Rows: the subsets of ``group`` (e.g. ``condition``, ``camera``); columns: recalls per method."""
    labels = _threshold_labels(results[0])
    many = len(results) > 1
    headers = ["Subset", "n"] + [f"{r.method} {label}" if many else label for r in results for label in labels]
    rows = []
    for score in results[0].groups(group):
        row = [score.subset, str(score.n)]
        for r in results:
            try:
                row += [percent(v) for v in r.subset(score.subset, group).recalls]
            except KeyError:  # a method evaluated on other queries
                row += ["-"] * len(labels)
        rows.append(row)
    return Table(title, headers, rows)


def detail_tables(results: Sequence[EvaluationResult]) -> list[Table]:
    return [breakdown_table(results, "condition", "Recall (%) per condition"),
            breakdown_table(results, "camera", "Recall (%) per camera"),
            breakdown_table(results, "camera-day-night", "Recall (%) per camera, day / night")]


def _ignored_notes(results: Sequence[EvaluationResult]) -> list[str]:
    return [f"{r.method}: {len(r.ignored)} estimate(s) without ground truth were ignored"
            for r in results if r.ignored]


def format_results(results: Sequence[EvaluationResult], details: bool = False) -> str:
    tables = [main_table(results), median_table(results)] + (detail_tables(results) if details else [])
    return "\n\n".join(table.to_text() for table in tables)


def _csv_number(value: float) -> str:
    if math.isnan(value):
        return ""
    return "inf" if math.isinf(value) else f"{value:.6g}"


def csv_rows(results: Sequence[EvaluationResult]) -> list[dict[str, str]]:
    """One row per (method, subset, threshold), long format."""
    rows = []
    for r in results:
        for score in r.subsets:
            for threshold, value in zip(r.thresholds, score.recalls):
                rows.append({
                    "method": r.method, "group": score.group, "subset": score.subset, "n": str(score.n),
                    "n_estimated": str(score.n_estimated), "position_threshold_m": f"{threshold.position_m:g}",
                    "rotation_threshold_deg": f"{threshold.rotation_deg:g}",
                    "recall_percent": "" if math.isnan(value) else f"{100.0 * value:.4f}",
                    "median_position_m": _csv_number(score.median_position_m),
                    "median_rotation_deg": _csv_number(score.median_rotation_deg),
                })
    return rows


def write_csv(path: str | Path, results: Sequence[EvaluationResult]) -> Path:
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(csv_rows(results))
    return Path(path)


def write_query_csv(path: str | Path, results: Sequence[EvaluationResult]) -> Path:
    """Per-query errors of every method (empty error cells: no estimate)."""
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(QUERY_CSV_COLUMNS)
        for r in results:
            for q in r.queries:
                estimated = q.estimated
                writer.writerow([r.method, q.name, q.condition, q.camera, q.day_night, int(estimated),
                                 f"{q.position_error:.6g}" if estimated else "",
                                 f"{q.rotation_error:.6g}" if estimated else ""])
    return Path(path)

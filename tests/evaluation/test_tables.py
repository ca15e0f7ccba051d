"""Terminal / Markdown / HTML tables and the long CSV (golden file)."""
from __future__ import annotations

import csv
import os
from pathlib import Path

from mduit_loc.evaluation.evaluate import evaluate
from mduit_loc.evaluation.tables import (
    CSV_COLUMNS,
    Table,
    detail_tables,
    format_results,
    main_table,
    median_table,
    write_csv,
    write_query_csv,
)
from mduit_loc.poses import yaw_pose

from .conftest import DATA

GOLDEN_CSV = DATA / "eval_golden.csv"


def two_methods():
    """Hand-made case: 3 day queries (sun rear, sun left, snow rear) and 1 night query (night rear).

    method A: sun rear exact, sun left 0.4 m off, snow rear missing, night rear 3 m / 8 deg off.
    method B: only night rear, exact.
    """
    truth = {"sun/rear/1.jpg": yaw_pose(0, (0, 0, 0)), "sun/left/1.jpg": yaw_pose(90, (0, 0, 0)),
             "snow/rear/2.jpg": yaw_pose(0, (5, 0, 0)), "night/rear/3.jpg": yaw_pose(0, (9, 0, 0))}
    method_a = {"sun/rear/1.jpg": yaw_pose(0, (0, 0, 0)), "sun/left/1.jpg": yaw_pose(90, (0.4, 0, 0)),
                "night/rear/3.jpg": yaw_pose(8, (12, 0, 0))}
    method_b = {"night/rear/3.jpg": yaw_pose(0, (9, 0, 0)), "dusk/rear/99.jpg": yaw_pose(0, (0, 0, 0))}
    return [evaluate(method_a, truth, method="A"), evaluate(method_b, truth, method="B")]


def test_main_table_has_the_paper_shape():
    table = main_table(two_methods())
    assert table.headers == ["Method", "Day 0.25m/2°", "Day 0.5m/5°", "Day 5m/10°",
                             "Night 0.25m/2°", "Night 0.5m/5°", "Night 5m/10°"]
    # A: day 1/3, 2/3, 2/3; night 0, 0, 1. B: day 0; night 1, 1, 1.
    assert table.rows == [["A", "33.3", "66.7", "66.7", "0.0", "0.0", "100.0"],
                          ["B", "0.0", "0.0", "0.0", "100.0", "100.0", "100.0"]]
    assert "day all: 3 queries, night all: 1 queries" in table.title
    assert table.notes == ["B: 1 estimate(s) without ground truth were ignored"]


def test_median_table():
    rows = median_table(two_methods()).rows
    # A day position errors: 0, 0.4, inf -> 0.4; night 3 m, 8 deg
    assert rows[0][:6] == ["A", "3/4", "0.40", "0.00", "3.00", "8.00"]
    assert rows[1][:6] == ["B", "1/4", "inf", "inf", "0.00", "0.00"]


def test_detail_tables_and_text_rendering():
    results = two_methods()
    condition, camera, camera_day_night = detail_tables(results)
    assert [row[0] for row in condition.rows] == ["night", "snow", "sun"]
    assert camera.rows[0][:5] == ["left", "1", "0.0", "100.0", "100.0"]
    assert [row[0] for row in camera_day_night.rows] == ["left day", "rear day", "rear night"]
    text = format_results(results, details=True)
    assert "Recall (%) per condition" in text and "A 0.25m/2°" in text
    lines = main_table(results).to_text().splitlines()
    assert lines[4].split() == ["A", "33.3", "66.7", "66.7", "0.0", "0.0", "100.0"]


def test_markdown_and_html_escape():
    table = Table("T <1>", ["a|b", "c"], [["x<y", "1"]])
    assert "| a\\|b | c |" in table.to_markdown()
    assert "<td>x&lt;y</td>" in table.to_html() and "<caption>T &lt;1&gt;</caption>" in table.to_html()


def test_csv_matches_golden_file(tmp_path):
    path = write_csv(tmp_path / "eval.csv", two_methods())
    if os.environ.get("MDUIT_UPDATE_GOLDEN"):
        GOLDEN_CSV.write_text(path.read_text())
    assert path.read_text() == GOLDEN_CSV.read_text()
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == CSV_COLUMNS
    night_a = [r for r in rows if r["method"] == "A" and r["subset"] == "night-all"]
    assert [r["recall_percent"] for r in night_a] == ["0.0000", "0.0000", "100.0000"]


def test_query_csv(tmp_path):
    path = write_query_csv(tmp_path / "q.csv", two_methods())
    lines = Path(path).read_text().splitlines()
    assert lines[0] == "method,name,condition,camera,day_night,estimated,position_error_m,rotation_error_deg"
    assert "A,snow/rear/2.jpg,snow,rear,day,0,," in lines
    assert any(line.startswith("A,night/rear/3.jpg,night,rear,night,1,3,8") for line in lines)
    assert len(lines) == 1 + 8

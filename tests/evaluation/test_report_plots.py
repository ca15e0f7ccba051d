"""Plots (PNG files) and the Markdown / HTML report writer."""
from __future__ import annotations

import base64

import numpy as np
import pytest

from mduit_loc.errors import DataNotFoundError
from mduit_loc.evaluation.plots import line_styles, plot_recall_curves, save_image_grid
from mduit_loc.evaluation.report import ReportImage, ReportSection, evaluation_sections, write_report
from mduit_loc.evaluation.tables import Table

from .test_tables import two_methods

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_recall_plot_is_written(tmp_path):
    path = plot_recall_curves(two_methods(), tmp_path / "plots" / "recall.png")
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5000
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_every_method_of_a_large_table_gets_its_own_line_style():
    styles = line_styles(13)   # Table 1 has 11 rows; matplotlib's cycle repeats colours from the 11th
    assert len(set(styles)) == 13
    assert styles[0] == ("tab:blue", "-") and styles[10] == ("tab:blue", "--") and styles[12][1] == "--"


def test_image_grid_is_written(tmp_path):
    rng = np.random.default_rng(0)
    images = [[rng.integers(0, 255, (12, 16, 3), dtype=np.uint8) for _ in range(3)] for _ in range(2)]
    path = save_image_grid(images, tmp_path / "grid.png", ["day", "night"], ["source", "to snow", "to night"])
    assert path.read_bytes().startswith(PNG_MAGIC)


def test_report_files_contain_tables_and_images(tmp_path):
    results = two_methods()
    plot = plot_recall_curves(results, tmp_path / "out" / "recall.png")
    grid = save_image_grid([[np.zeros((8, 8, 3), np.uint8)]], tmp_path / "elsewhere" / "grid.png")
    sections = evaluation_sections(results, plot, details=True, plot_rotation_deg=10.0)
    sections.append(ReportSection("Translations", text="Rows: sources.\n\nColumns: <targets>.",
                                  images=[ReportImage(grid, "translation grid")], code="mduit-loc demo --out x"))
    paths = write_report(tmp_path / "out", "Demo & results", sections)
    markdown = paths.markdown.read_text()
    assert markdown.startswith("# Demo & results")
    assert "| A | 33.3 | 66.7 | 66.7 | 0.0 | 0.0 | 100.0 |" in markdown
    assert "](recall.png)" in markdown and "](../elsewhere/grid.png)" in markdown
    assert "```\nmduit-loc demo --out x\n```" in markdown
    page = paths.html.read_text()
    assert "<td>A</td><td>33.3</td><td>66.7</td>" in page
    assert page.count("data:image/png;base64,") == 2
    assert base64.b64encode(grid.read_bytes()).decode() in page
    assert "Columns: &lt;targets&gt;." in page and "<title>Demo &amp; results</title>" in page
    assert "Recall (%) per condition" in page


def test_report_refuses_a_missing_image(tmp_path):
    section = ReportSection("x", tables=[Table("t", ["a"], [["1"]])], images=[ReportImage(tmp_path / "no.png")])
    with pytest.raises(DataNotFoundError, match="no.png"):
        write_report(tmp_path / "out", "t", [section])
    assert not (tmp_path / "out" / "report.md").exists()

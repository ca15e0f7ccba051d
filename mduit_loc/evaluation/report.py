"""Report writer: ``report.md`` (images linked by relative path) and a self-contained ``report.html``
(PNG images embedded as base64, tables as HTML), from a list of sections.

    write_report(out_dir, "MDUIT on the synthetic benchmark", [
        ReportSection("Results", text="...", tables=[main_table(results)],
                      images=[ReportImage(plot_path, "Recall vs position threshold")]),
        ReportSection("Translations", images=[ReportImage(grid_path, "rows: sources, columns: targets")]),
    ])

``evaluation_sections(results, plot_path)`` builds the standard sections of an evaluation.
"""
from __future__ import annotations

import base64
import html
import mimetypes
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from mduit_loc.errors import DataNotFoundError
from mduit_loc.evaluation.evaluate import EvaluationResult
from mduit_loc.evaluation.metrics import TIE_TOLERANCE
from mduit_loc.evaluation.tables import Table, detail_tables, main_table, median_table
from mduit_loc.io_utils import write_text_atomic

MARKDOWN_FILE, HTML_FILE = "report.md", "report.html"
_STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}caption{font-weight:bold;text-align:left;padding:.3em 0}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}th:first-child,td:first-child{text-align:left}
th{background:#f3f3f3}figure{margin:1em 0}img{max-width:100%}figcaption{color:#555;font-size:.9em}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto}.note{color:#555;font-size:.9em}"""


@dataclass
class ReportImage:
    path: Path
    caption: str = ""

    def __post_init__(self):
        self.path = Path(self.path)


@dataclass
class ReportSection:
    title: str
    text: str = ""                      # paragraphs separated by blank lines (plain text)
    tables: list[Table] = field(default_factory=list)
    images: list[ReportImage] = field(default_factory=list)
    code: str = ""                      # preformatted text (commands, logs)


@dataclass(frozen=True)
class ReportPaths:
    markdown: Path
    html: Path


def _paragraphs(text: str) -> list[str]:
    return [block.strip() for block in text.strip().split("\n\n") if block.strip()]


def _check_images(sections: Sequence[ReportSection]) -> None:
    for section in sections:
        for image in section.images:
            if not image.path.is_file():
                raise DataNotFoundError(image.path, f"image for report section {section.title!r}")


def render_markdown(title: str, sections: Sequence[ReportSection], out_dir: Path) -> str:
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for paragraph in _paragraphs(section.text):
            lines += [paragraph, ""]
        for table in section.tables:
            lines += [table.to_markdown(), ""]
        for image in section.images:
            link = Path(os.path.relpath(image.path.resolve(), out_dir.resolve())).as_posix()
            lines += [f"![{image.caption}]({link})", ""]
            if image.caption:
                lines += [f"_{image.caption}_", ""]
        if section.code:
            lines += ["```", section.code.rstrip("\n"), "```", ""]
    return "\n".join(lines)


def _data_uri(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0] or "image/png"
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def render_html(title: str, sections: Sequence[ReportSection]) -> str:
    parts = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
             f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    for section in sections:
        parts.append(f"<section><h2>{html.escape(section.title)}</h2>")
        parts += [f"<p>{html.escape(p)}</p>" for p in _paragraphs(section.text)]
        parts += [table.to_html() for table in section.tables]
        for image in section.images:
            caption = f"<figcaption>{html.escape(image.caption)}</figcaption>" if image.caption else ""
            parts.append(f"<figure><img src=\"{_data_uri(image.path)}\" alt=\"{html.escape(image.caption)}\">"
                         f"{caption}</figure>")
        if section.code:
            parts.append(f"<pre>{html.escape(section.code)}</pre>")
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def write_report(out_dir: str | Path, title: str, sections: Sequence[ReportSection]) -> ReportPaths:
    """Write ``out_dir/report.md`` and ``out_dir/report.html`` (atomically); returns both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_images(sections)
    markdown, page = out_dir / MARKDOWN_FILE, out_dir / HTML_FILE
    write_text_atomic(markdown, render_markdown(title, sections, out_dir))
    write_text_atomic(page, render_html(title, sections))
    return ReportPaths(markdown, page)


def evaluation_sections(results: Sequence[EvaluationResult], plot_path: str | Path | None = None,
                        details: bool = True, plot_rotation_deg: float | None = None) -> list[ReportSection]:
    """Standard sections of an evaluation: main table + medians (+ breakdowns) and the recall plot."""
    thresholds = ", ".join(f"({t.position_m:g} m, {t.rotation_deg:g}°)" for t in results[0].thresholds)
    text = (f"Recall = share of ALL ground-truth queries whose position error <= the position threshold "
            f"and rotation error <= the rotation threshold (inclusive, with a relative slack of {TIE_TOLERANCE:g}), "
            f"at {thresholds}. A query without an estimate is a failure. Day all / night all are pooled over "
            f"all images of the day / night conditions.")
    main = ReportSection("Localization results", text, [main_table(results), median_table(results)])
    if plot_path is not None:
        rotation = f" with rotation error <= {plot_rotation_deg:g}°" if plot_rotation_deg is not None else ""
        main.images.append(ReportImage(Path(plot_path), f"Queries localized{rotation} against the position "
                                                        "threshold, day and night"))
    sections = [main]
    if details:
        sections.append(ReportSection("Breakdown per condition and camera", tables=detail_tables(results)))
    return sections

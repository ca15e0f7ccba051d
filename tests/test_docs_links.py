"""The README and the pages under docs/ link only to what exists.

The measured record lives in docs/results/*.md beside the README's summary; a moved section or a
renamed image or script must not leave a dead link or a dead command behind. Checked: every relative
link and image target, every in-page anchor against the page's headings (GitHub's slug rule), and
every ``benchmarks/*.py`` / ``scripts/*.sh`` path a page names, and every ``docs/...md#anchor`` that
a comment in the code cites.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
REPO_PATH = re.compile(r"\b((?:benchmarks|scripts)/[\w./-]+\.(?:py|sh))\b")
CITED_PAGE = re.compile(r"\b(docs/[\w./-]+\.md)(?:#([\w-]+))?")
CODE = sorted(path for folder in ("mduit_loc", "benchmarks", "scripts") for path in (ROOT / folder).rglob("*.py"))
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def headings(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text(encoding="utf-8"))
    return {github_slug(line.lstrip("#")) for line in text.splitlines() if line.startswith("#")}


def links(page: Path) -> list[str]:
    return LINK.findall(FENCE.sub("", page.read_text(encoding="utf-8")))


def test_the_pages_exist_and_link_to_each_other():
    names = {page.relative_to(ROOT).as_posix() for page in PAGES}
    assert "docs/results/translation.md" in names and "docs/results/table1.md" in names
    readme_targets = {target.split("#")[0] for target in links(ROOT / "README.md")}
    assert {"docs/results/translation.md", "docs/results/table1.md", "docs/results/learning.md"} <= readme_targets


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(page: Path):
    dead = []
    for target in links(page):
        if re.match(r"[a-z]+:", target):            # http(s), mailto: not checked offline
            continue
        path_part, _, anchor = target.partition("#")
        linked = (page.parent / path_part).resolve() if path_part else page
        if not linked.exists():
            dead.append(f"{target} (no file {linked.relative_to(ROOT) if linked.is_relative_to(ROOT) else linked})")
        elif anchor and linked.suffix == ".md" and anchor not in headings(linked):
            dead.append(f"{target} (no heading #{anchor} in {linked.name})")
    assert not dead, f"{page.relative_to(ROOT)}: dead links: {dead}"


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.relative_to(ROOT).as_posix())
def test_every_named_script_exists(page: Path):
    named = set(REPO_PATH.findall(page.read_text(encoding="utf-8")))
    missing = sorted(path for path in named if not (ROOT / path).exists())
    assert not missing, f"{page.relative_to(ROOT)} names scripts that do not exist: {missing}"


def test_the_slug_rule_on_hand_made_headings():
    assert github_slug(" Install") == "install"
    assert (github_slug(" The paper's Table 1 on the synthetic benchmark")
            == "the-papers-table-1-on-the-synthetic-benchmark")
    assert github_slug(" Real data: Nordland summer → winter") == "real-data-nordland-summer--winter"


def cited_pages(source: str) -> list[tuple[str, str]]:
    """(page, anchor) for every docs page a text cites; anchor '' when none."""
    return CITED_PAGE.findall(source)


def test_citations_in_code_resolve():
    dead = []
    for path in CODE:
        for page, anchor in cited_pages(path.read_text(encoding="utf-8")):
            cited = ROOT / page
            if not cited.exists():
                dead.append(f"{path.relative_to(ROOT)}: {page} (no such page)")
            elif anchor and anchor not in headings(cited):
                dead.append(f"{path.relative_to(ROOT)}: {page}#{anchor} (no such heading)")
    assert not dead, f"code comments cite what does not exist: {dead}"


def test_citation_pattern_on_hand_made_comments():
    assert cited_pages("# see docs/results/learning.md.") == [("docs/results/learning.md", "")]
    assert cited_pages("(docs/results/translation.md#the-target-by-pose).") == [
        ("docs/results/translation.md", "the-target-by-pose")]

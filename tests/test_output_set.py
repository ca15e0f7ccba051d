"""Output sets (issue 12 item 11): staged, committed together, whole or absent after a crash."""
from __future__ import annotations

import json
import os

import pytest

from mduit_loc import output_set
from mduit_loc.output_set import JOURNAL, roll_forward, staged_outputs

MEMBERS = ("pairs.txt", "scores.csv", "summary.json", "failed.txt", "images")


def write_set(folder, text: str, failed: bool = False) -> None:
    with staged_outputs(folder, MEMBERS) as staged:
        for name in ("pairs.txt", "scores.csv", "summary.json"):
            staged.path(name).write_text(f"{name} {text}")
        (staged.path("images") / "sub").mkdir(parents=True)
        (staged.path("images") / "sub" / "a.png").write_text(text)
        if failed:
            staged.path("failed.txt").write_text(text)


def contents(folder) -> dict[str, str]:
    files = {p.relative_to(folder).as_posix(): p.read_text() for p in folder.rglob("*") if p.is_file()}
    return {name: text for name, text in files.items() if name != "user.txt"}


def test_a_set_replaces_the_previous_one_and_members_not_written_are_removed(tmp_path):
    write_set(tmp_path, "old", failed=True)
    (tmp_path / "user.txt").write_text("not ours")
    write_set(tmp_path, "new")
    assert contents(tmp_path) == {"pairs.txt": "pairs.txt new", "scores.csv": "scores.csv new",
                                  "summary.json": "summary.json new", "images/sub/a.png": "new"}
    assert (tmp_path / "user.txt").read_text() == "not ours"   # other files of the folder are left alone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "pairs.txt", "scores.csv", "summary.json",
                                                          "user.txt"]


def test_a_failure_between_two_writes_leaves_the_old_set_whole(tmp_path):
    write_set(tmp_path, "old")
    before = contents(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        with staged_outputs(tmp_path, MEMBERS) as staged:
            staged.path("pairs.txt").write_text("new")
            raise KeyboardInterrupt   # killed after the first file of the new set
    assert contents(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images", "pairs.txt", "scores.csv", "summary.json"]


def test_a_commit_interrupted_half_way_is_finished_by_the_next_reader_or_writer(tmp_path, monkeypatch):
    write_set(tmp_path, "old", failed=True)
    real_replace, moved = os.replace, []

    def dying_replace(source, target):
        if len(moved) == 2:
            raise SystemExit("killed during the commit")
        moved.append(target)
        real_replace(source, target)

    monkeypatch.setattr(output_set.os, "replace", dying_replace)
    with pytest.raises(SystemExit):
        write_set(tmp_path, "new")
    monkeypatch.setattr(output_set.os, "replace", real_replace)
    journal = json.loads((tmp_path / JOURNAL).read_text())
    assert journal["remove"] == ["failed.txt"] and len(journal["write"]) == 4
    assert (tmp_path / "pairs.txt").read_text() == "pairs.txt new"        # half old, half new: not readable yet
    assert (tmp_path / "summary.json").read_text() == "summary.json old"
    assert roll_forward(tmp_path)
    assert contents(tmp_path) == {"pairs.txt": "pairs.txt new", "scores.csv": "scores.csv new",
                                  "summary.json": "summary.json new", "images/sub/a.png": "new"}
    assert not roll_forward(tmp_path)   # done: nothing left to finish
    assert not any(p.name.startswith(".mduit-staging-") for p in tmp_path.iterdir())


def test_members_are_checked_and_the_journal_is_validated(tmp_path):
    with pytest.raises(ValueError, match="not a member"):
        with staged_outputs(tmp_path, MEMBERS) as staged:
            staged.path("other.txt")
    (tmp_path / JOURNAL).write_text(json.dumps({"staging": ".mduit-staging-1-ab", "write": ["../x"], "remove": []}))
    with pytest.raises(Exception, match="commit journal"):
        roll_forward(tmp_path)

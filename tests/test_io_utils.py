"""Atomic outputs: the file appears complete or not at all; no temporary files are left behind."""
import json

import pytest

from mduit_loc.io_utils import atomic_open, atomic_path, write_json_atomic, write_text_atomic


class Boom(Exception):
    pass


def test_exception_leaves_no_file_and_no_temporary(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with pytest.raises(Boom):
        with atomic_open(target) as handle:
            handle.write("half")
            raise Boom()
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_exception_keeps_the_previous_version(tmp_path):
    target = tmp_path / "out.json"
    write_json_atomic(target, {"version": 1})
    with pytest.raises(Boom):
        with atomic_path(target) as tmp:
            tmp.write_text("{broken")
            raise Boom()
    assert json.loads(target.read_text()) == {"version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_keyboard_interrupt_also_cleans_up(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(tmp_path / "out.txt") as handle:
            handle.write("x")
            raise KeyboardInterrupt()
    assert list(tmp_path.iterdir()) == []


def test_success_writes_and_replaces(tmp_path):
    target = tmp_path / "a" / "b.txt"
    write_text_atomic(target, "one\n")
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_text("two\n")
        assert target.read_text() == "one\n"  # unchanged until the block ends
    assert target.read_text() == "two\n" and [p.name for p in target.parent.iterdir()] == ["b.txt"]
    write_json_atomic(tmp_path / "c.json", {"b": 2, "a": [1]})
    assert (tmp_path / "c.json").read_text() == '{\n  "a": [\n    1\n  ],\n  "b": 2\n}\n'


def test_binary_and_read_modes(tmp_path):
    with atomic_open(tmp_path / "x.bin", "wb") as handle:
        handle.write(b"\x00\x01")
    assert (tmp_path / "x.bin").read_bytes() == b"\x00\x01"
    with pytest.raises(ValueError, match="for writing"):
        with atomic_open(tmp_path / "x.bin", "r"):
            pass

"""Atomic outputs (complete or absent, no temporaries left) and the shared text-line reader."""
import json
import os
import re

import pytest

from mduit_loc.errors import DataNotFoundError, FormatError, MduitError
from mduit_loc.io_utils import (
    MAX_ABS_VALUE,
    atomic_open,
    atomic_path,
    parse_floats,
    parse_int,
    read_json_file,
    read_text_lines,
    write_json_atomic,
    write_text_atomic,
)


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


# --- text input (issue 12: every bad byte named by file and line) ---------------------------
def _lines(path, **kwargs):
    return list(read_text_lines(path, "test file", **kwargs))


def test_text_lines_are_stripped_numbered_and_skip_blanks_and_comments(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"# comment\n  one 1 \n\n\ttwo\n")
    assert _lines(path) == [(2, "one 1"), (4, "two")]
    assert _lines(path, comments=False) == [(1, "# comment"), (2, "one 1"), (4, "two")]
    assert _lines(path, keep_empty=True) == [(2, "one 1"), (3, ""), (4, "two")]


@pytest.mark.parametrize("data", [
    b"\xef\xbb\xbfone 1\r\n\r\ntwo\r\n",      # BOM and CRLF
    b"one 1\r\rtwo",                           # old Mac line ends, no final newline
    b"one 1 \t\n\n\xef\xbb\xbftwo  \n",        # trailing whitespace, a BOM inside (concatenated files)
])
def test_bom_and_line_ends_do_not_change_the_lines(tmp_path, data):
    path = tmp_path / "a.txt"
    path.write_bytes(data)
    assert _lines(path) == [(1, "one 1"), (3, "two")]


def test_undecodable_byte_names_file_line_and_column(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"fine\nna\xefme 1\n")
    with pytest.raises(FormatError) as info:
        _lines(path)
    assert info.value.path == path and info.value.line == 2
    assert str(info.value) == f"{path}:2: expected UTF-8 text (byte 0xef at column 3 is not UTF-8)"


def test_utf16_file_gets_a_hint(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes("fx 400\n".encode("utf-16"))
    with pytest.raises(FormatError, match=r"a.txt:1: .*looks like UTF-16"):
        _lines(path)


def test_control_characters_are_refused(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"ok\nnul\x00here\n")
    with pytest.raises(FormatError, match=r"a.txt:2: expected text \(control character U\+0000 at column 4\)"):
        _lines(path)


def test_missing_or_unreadable_text_file(tmp_path):
    with pytest.raises(DataNotFoundError, match="test file not found"):
        _lines(tmp_path / "none.txt")
    (tmp_path / "folder").mkdir()
    with pytest.raises(MduitError, match="folder"):
        _lines(tmp_path / "folder")


@pytest.mark.parametrize("token", ["nan", "inf", "-inf", "1e400", "1e300", str(MAX_ABS_VALUE * 10), "x"])
def test_parse_floats_refuses_non_finite_and_huge(token):
    with pytest.raises(FormatError) as info:
        parse_floats(["1", token], "f.txt", 3, "two numbers", got=f"1 {token}")
    assert info.value.line == 3 and "\n" not in str(info.value)
    assert parse_floats(["1", "-2.5e3"], "f.txt", 3, "two numbers") == [1.0, -2500.0]


def test_parse_int_bounds():
    assert parse_int("7", "f.txt", 1, "an integer", minimum=0, maximum=9) == 7
    for token in ("-1", "10", "1.5", "nan", "²", "9" * 5000):
        with pytest.raises(FormatError):
            parse_int(token, "f.txt", 1, "an integer", minimum=0, maximum=9)


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_written_files_get_the_usual_permissions_not_0600(tmp_path, umask):
    """Issue 12 item 14: 0666 minus the umask, as a plain open() would give (mkstemp gave 0600)."""
    from mduit_loc.output_set import staged_outputs

    old = os.umask(umask)
    try:
        write_text_atomic(tmp_path / "a.txt", "x")
        with atomic_path(tmp_path / "b.h5") as tmp:
            assert re.fullmatch(rf"\.b\.h5\.{os.getpid()}-[0-9a-f]{{8}}\.tmp", tmp.name)  # names its writer
            tmp.write_bytes(b"x")
        with staged_outputs(tmp_path / "set", ["c.txt"]) as staged:
            assert staged.staging.stat().st_mode & 0o777 == 0o777 & ~umask
            write_text_atomic(staged.path("c.txt"), "x")
    finally:
        os.umask(old)
    for path in (tmp_path / "a.txt", tmp_path / "b.h5", tmp_path / "set" / "c.txt"):
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path


def test_json_files_with_bad_bytes_or_syntax_are_named_errors(tmp_path):
    path = tmp_path / "run.json"
    path.write_bytes(b'{"a":\n "\xff"}')
    with pytest.raises(FormatError, match=r"run.json:2: expected UTF-8 JSON \(byte 0xff"):
        read_json_file(path, "run description")
    path.write_bytes(b"\xef\xbb\xbf" + b'{"a": [1, 2,]}')
    with pytest.raises(FormatError, match=r"run.json:1: expected valid JSON \(run description\)"):
        read_json_file(path, "run description")
    path.write_bytes(b"\xef\xbb\xbf" + b'{"a": 1}')  # a BOM is accepted
    assert read_json_file(path, "run description") == {"a": 1}
    with pytest.raises(DataNotFoundError, match="run description not found"):
        read_json_file(tmp_path / "none.json", "run description")

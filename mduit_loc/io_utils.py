"""File input and output shared by every reader and writer.

Output is atomic: write to a temporary file beside the target, then rename, so a crash or Ctrl-C
never leaves a half-written output under the final name. Temporary files are named
``.NAME.PID-TOKEN.tmp`` (so a later run can tell a dead writer's leftover, ``output_lock``) and get
the permissions of a plainly created file (0666 minus the umask). Several files written as one
set: ``output_set``.

Text input goes through ``read_text_lines``: UTF-8 with or without a BOM, LF, CRLF or CR line
ends, and every problem (missing file, undecodable byte, control character, non-finite or absurd
number) is an ``MduitError`` naming the file and the line.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import IO, Generator, Iterator, Sequence

from mduit_loc.errors import DataNotFoundError, FormatError, MduitError

# Magnitude above which a number in a data file is refused as corrupt: no coordinate, focal
# length, pixel position or count of a localization dataset comes near it.
MAX_ABS_VALUE = 1e12
_BOM = "\ufeff"
# Undecodable bytes (kept as lone surrogates by ``surrogateescape``) and control characters other
# than the whitespace ones (tab, LF, VT, FF, CR): neither occurs in a text file.
_NOT_TEXT = re.compile("[\x00-\x08\x0e-\x1f\x7f\udc80-\udcff]")


def temporary_name(name: str) -> str:
    """``.NAME.PID-TOKEN.tmp``: hidden, and naming the writing process, so a later run can tell a dead
    writer's leftover (``output_lock.clean_stale_temporaries``) from a live writer's file."""
    return f".{name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"


def create_temporary(path: Path) -> Path:
    """An empty new file named ``temporary_name`` beside ``path``, with the usual permissions
    (0666 minus the umask; ``mkstemp`` would make it 0600 whatever the umask)."""
    while True:
        tmp = path.parent / temporary_name(path.name)
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:  # pragma: no cover - a 32-bit token collision
            continue
        return tmp


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``path`` on success.

    For writers that need a file name (h5py, faiss, torch.save, PIL). The file exists (empty) and
    gets the permissions of a plainly created file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = create_temporary(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def link_or_copy(source: str | Path, target: str | Path) -> None:
    """Atomically make ``target`` a hard link of ``source`` (a copy where links are not possible).

    For files that are only ever replaced, never changed in place (everything written here).
    """
    with atomic_path(target) as tmp:
        tmp.unlink()
        try:
            os.link(source, tmp)
        except OSError:  # file systems without hard links, another device
            shutil.copyfile(source, tmp)


def link_tree(source: str | Path, target: str | Path) -> None:
    """``target`` as a tree of hard links (or copies) of the files under ``source``."""
    def link(src: str, dst: str) -> None:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copyfile(src, dst)

    shutil.copytree(source, target, copy_function=link, dirs_exist_ok=True)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Like ``open(path, mode)`` for writing, but the file appears only once complete."""
    if not any(flag in mode for flag in "wx"):
        raise ValueError(f"atomic_open is for writing, got mode {mode!r}")
    with atomic_path(path) as tmp:
        with open(tmp, mode.replace("x", "w"), **kwargs) as handle:
            yield handle


def write_text_atomic(path: str | Path, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def write_json_atomic(path: str | Path, data) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


# --- text input ----------------------------------------------------------------------------
def read_json_file(path: str | Path, what: str, hint: str = "") -> object:
    """A JSON file (UTF-8, with or without a BOM); every problem is an ``MduitError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(path, what, hint)
    try:
        data = path.read_bytes()
    except OSError as err:
        raise MduitError(f"{path}: cannot read the {what} ({err.strerror or err})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[:err.start].count(b"\n") + 1
        raise FormatError(path, line, f"UTF-8 JSON (byte 0x{data[err.start]:02x} is not UTF-8)") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise FormatError(path, err.lineno, f"valid JSON ({what})", got=err.msg) from None
    except RecursionError:
        raise FormatError(path, None, f"valid JSON ({what})", got="nesting too deep") from None


def _not_text_error(path: Path, number: int, line: str, match: re.Match) -> FormatError:
    char, column = match.group(), match.start() + 1
    if "\udc80" <= char <= "\udcff":
        byte = ord(char) - 0xDC00
        hint = ""
        if number == 1 and line[:2] in ("\udcff\udcfe", "\udcfe\udcff"):
            hint = "; the file looks like UTF-16, save it as UTF-8"
        return FormatError(path, number, f"UTF-8 text (byte 0x{byte:02x} at column {column} is not UTF-8{hint})")
    return FormatError(path, number, f"text (control character U+{ord(char):04X} at column {column})")


def read_text_lines(path: str | Path, what: str = "file", comments: bool = True,
                    keep_empty: bool = False) -> Generator[tuple[int, str], None, None]:
    """The lines of a UTF-8 text file, stripped, with their 1-based numbers.

    A UTF-8 byte-order mark is dropped (at the start of the file or of any line), LF, CRLF and
    CR end lines alike, and surrounding whitespace is stripped. Empty lines are skipped unless
    ``keep_empty``, lines starting with ``#`` when ``comments``. A missing file is a
    ``DataNotFoundError`` (``what`` names it); an undecodable byte or a control character is a
    ``FormatError`` naming the file, the line and the column.
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(path, what)
    try:
        handle = open(path, encoding="utf-8-sig", errors="surrogateescape", newline=None)
    except OSError as err:
        raise MduitError(f"{path}: cannot read the {what} ({err.strerror or err})") from None
    search = _NOT_TEXT.search
    number = 0
    with handle:
        try:  # only reading raises OSError here: the consumer's exceptions never enter a generator
            for number, line in enumerate(handle, start=1):
                bad = search(line)
                if bad is not None:
                    raise _not_text_error(path, number, line, bad)
                stripped = line.strip()
                if stripped.startswith(_BOM):
                    stripped = stripped.lstrip(_BOM).strip()
                if (stripped or keep_empty) and not (comments and stripped.startswith("#")):
                    yield number, stripped
        except OSError as err:
            raise MduitError(f"{path}:{number + 1}: cannot read the {what} ({err.strerror or err})") from None


def leaves_folder(name: str) -> bool:
    """Whether a name stored relative to a folder (an image name) would lead out of it: empty,
    absolute, or with a ``..`` component. Such names are refused wherever they are read."""
    return not name or name.startswith("/") or ".." in name.split("/")


def parse_floats(tokens: Sequence[str], path: str | Path, number: int | None, expected: str,
                 got: str | None = None, max_abs: float = MAX_ABS_VALUE) -> list[float]:
    """``tokens`` as finite numbers of magnitude at most ``max_abs``, else a ``FormatError``."""
    try:
        values = [float(token) for token in tokens]
    except ValueError:
        raise FormatError(path, number, expected, got=got) from None
    for value in values:
        if not -max_abs <= value <= max_abs:  # also false for NaN
            what = "finite numbers" if not math.isfinite(value) else f"numbers of magnitude at most {max_abs:g}"
            raise FormatError(path, number, f"{expected} ({what})", got=got)
    return values


def parse_int(token: str, path: str | Path, number: int | None, expected: str, got: str | None = None,
              minimum: int | None = None, maximum: int = int(MAX_ABS_VALUE)) -> int:
    """``token`` as an integer in ``[minimum, maximum]``, else a ``FormatError``."""
    try:
        value = int(token)
    except ValueError:
        raise FormatError(path, number, expected, got=got) from None
    if (minimum is not None and value < minimum) or value > maximum:
        raise FormatError(path, number, expected, got=got)
    return value

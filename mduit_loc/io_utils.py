"""File input and output shared by every reader and writer.

Output is atomic: write to a temporary file beside the target, then rename, so a crash or Ctrl-C
never leaves a half-written output under the final name.

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
import tempfile
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


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``path`` on success.

    For writers that need a file name (h5py, faiss, torch.save, PIL).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


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

"""User-facing errors.

Every error a user can cause (bad file, bad option, missing data) is an ``MduitError``;
the CLI prints its message as one line and exits non-zero, so messages must say what
went wrong, where (file and line), and what was expected.
"""
from __future__ import annotations

from pathlib import Path


class MduitError(Exception):
    """An error caused by input or configuration; the CLI shows ``str(err)`` only."""


class DataNotFoundError(MduitError):
    """A file or folder the operation needs does not exist."""

    def __init__(self, path: str | Path, what: str, hint: str = ""):
        self.path = Path(path)
        message = f"{what} not found: {self.path}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)


class FormatError(MduitError):
    """A file does not have the expected format; names the file, the line and the expectation."""

    def __init__(self, path: str | Path, line: int | None, expected: str, got: str | None = None):
        self.path = Path(path)
        self.line = line
        self.expected = expected
        self.got = got
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        message = f"{where}: expected {expected}"
        if got is not None:
            shown = got if len(got) <= 80 else got[:77] + "..."
            message += f", got {shown!r}"
        super().__init__(message)


class ConfigMismatchError(MduitError):
    """Two artefacts that must match (index and model, checkpoint and config) do not."""

"""The outputs of one command, whole or absent as a set: staged, then moved into place together.

A command that writes several files into a folder (``index``: index.faiss, database.tsv, the
descriptors and the manifest; ``query``: pairs, poses, scores, summary; ``train``: model.pt,
appearances.pt, run.json) writes them into a staging folder inside the output folder
(``OUT/.mduit-staging-PID-TOKEN/``). Nothing the command had written before changes until the set
is complete. Then the commit:

1. ``OUT/.mduit-commit.json`` is written atomically: the staging folder, the files it holds and
   the members of the set to delete (written by an earlier run, not by this one). Its appearance
   is the commit point;
2. every staged file is renamed onto its final name, the members to delete are deleted;
3. the journal and the staging folder are removed.

Killed before step 1, the old set is intact and the staging folder is a leftover that the next
writer removes (``discard_stale_staging``); killed during step 2, the journal is there and the next
writer or reader of the folder finishes the commit (``roll_forward``), which is idempotent. The
output folder keeps any other file (a user's, another command's). Members may be folders
(``INDEX/translations/``).
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
from pathlib import Path
from typing import Iterable, Iterator

from mduit_loc.errors import FormatError
from mduit_loc.io_utils import write_json_atomic

JOURNAL = ".mduit-commit.json"
STAGING_PREFIX = ".mduit-staging-"
_STAGING = re.compile(rf"^{re.escape(STAGING_PREFIX)}(\d+)-[0-9a-f]+$")
_OLD_SUFFIX = ".mduit-old"   # a folder member being replaced, parked inside the staging folder


class OutputSet:
    """A staging folder for the members of one output set; ``path(name)`` is where to write ``name``."""

    def __init__(self, folder: Path, members: Iterable[str]):
        self.folder = folder
        self.members = tuple(members)
        self.staging = folder / f"{STAGING_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
        os.mkdir(self.staging, 0o777)   # the umask applies, as for any folder

    def path(self, name: str) -> Path:
        """Where to write member ``name`` (it appears in the output folder at the commit)."""
        if name not in self.members:
            raise ValueError(f"{name!r} is not a member of this output set {self.members}")
        return self.staging / name

    def previous(self, name: str) -> Path:
        """The committed ``name`` of an earlier run (may not exist): what a resumed run reuses."""
        return self.folder / name

    def commit(self) -> None:
        """Move the staged members into place. Once the journal is written, a failure (or a kill) leaves
        it and the staging folder for ``roll_forward``, which completes the commit."""
        written = [name for name in self.members if (self.staging / name).exists()]
        removed = [name for name in self.members if name not in written]
        try:
            write_json_atomic(self.folder / JOURNAL, {"staging": self.staging.name, "write": written,
                                                      "remove": removed})
        except BaseException:
            self.discard()
            raise
        roll_forward(self.folder)

    def discard(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


@contextlib.contextmanager
def staged_outputs(folder: str | Path, members: Iterable[str]) -> Iterator[OutputSet]:
    """Stage the members of a set in ``folder``; commit them together when the block completes.

    On any exception (Ctrl-C included) the staging folder is removed and the folder is unchanged.
    The caller holds the folder's lock (``output_lock``).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    roll_forward(folder)
    staged = OutputSet(folder, members)
    try:
        yield staged
    except BaseException:
        staged.discard()
        raise
    staged.commit()


def _read_journal(path: Path) -> dict:
    try:
        journal = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise FormatError(path, None, "a commit journal written by mduit-loc", got=str(err)) from None
    names = [*journal.get("write", []), *journal.get("remove", [])] if isinstance(journal, dict) else None
    if (names is None or not _STAGING.match(str(journal.get("staging")))
            or not all(isinstance(n, str) and n and "/" not in n and n not in (".", "..") for n in names)):
        raise FormatError(path, None, "a commit journal naming a staging folder and plain member names")
    return journal


def _replace(source: Path, target: Path, parking: Path) -> None:
    """Move ``source`` onto ``target``; a folder ``target`` is first parked (renames cannot replace it)."""
    if target.is_dir() and not target.is_symlink():
        parked = parking / (target.name + _OLD_SUFFIX)
        shutil.rmtree(parked, ignore_errors=True)
        os.rename(target, parked)
    elif source.is_dir() and (target.exists() or target.is_symlink()):
        target.unlink()
    os.replace(source, target)


def _remove(target: Path) -> None:
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)
    elif target.exists() or target.is_symlink():
        target.unlink()


def roll_forward(folder: str | Path) -> bool:
    """Finish a commit that was interrupted (idempotent); True when there was one. Caller holds the lock."""
    folder = Path(folder)
    journal_path = folder / JOURNAL
    if not journal_path.is_file():
        return False
    journal = _read_journal(journal_path)
    staging = folder / journal["staging"]
    for name in journal["write"]:
        source = staging / name
        if source.exists() or source.is_symlink():   # absent: already moved by the interrupted commit
            _replace(source, folder / name, staging)
    for name in journal["remove"]:
        _remove(folder / name)
    journal_path.unlink()
    shutil.rmtree(staging, ignore_errors=True)
    return True


def pending_commit(folder: str | Path) -> bool:
    return (Path(folder) / JOURNAL).is_file()


def discard_stale_staging(folder: str | Path, live_pids: set[int] | None = None) -> list[Path]:
    """Remove staging folders of runs that died before their commit; returns what was removed.

    The caller holds the lock, so no other process stages in ``folder``; this process's own
    staging folders (``live_pids``, default: this process) are kept.
    """
    folder = Path(folder)
    live = {os.getpid()} if live_pids is None else live_pids
    removed = []
    with contextlib.suppress(FileNotFoundError):
        for child in folder.iterdir():
            match = _STAGING.match(child.name)
            if match and int(match.group(1)) not in live and child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
                removed.append(child)
    return removed

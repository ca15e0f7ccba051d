"""One writer per output folder, and the cleanup a writer does when it takes the folder.

``output_lock(folder, command)`` holds an exclusive, non-blocking ``fcntl.flock`` on
``FOLDER/.mduit-lock`` while a command writes there (train, train-netvlad, index, query, synth,
eval --out, table1, demo). A second writer is refused at once, before doing any work::

    another mduit-loc train (pid 1234) is writing to runs/mduit; wait for it to finish or choose another --out

The lock belongs to the process: it is re-entrant within it (a pipeline stage calling a command on
a folder it holds) and the kernel drops it when the process ends, kill -9 included; the lock file
itself stays (it is reused). Under torchrun only rank 0 takes it.

Having taken the lock, the writer settles the folder: a commit of an output set that was
interrupted is finished (``output_set.roll_forward``), staging folders and temporary files
(``.NAME.PID-TOKEN.tmp``) left by writers that died are deleted. ``settle(folder)`` does the first
part for a reader that finds an interrupted commit.
"""
from __future__ import annotations

import contextlib
import fcntl
import os
import re
from pathlib import Path
from typing import Iterable, Iterator

from mduit_loc.errors import MduitError
from mduit_loc.output_set import discard_stale_staging, pending_commit, roll_forward

LOCK_FILE = ".mduit-lock"
_TEMPORARY = re.compile(r"^\.(.+)\.(\d+)-[0-9a-f]{8}\.tmp$")          # io_utils.temporary_name
_LEGACY_TEMPORARY = re.compile(r"^\.(.+)\.[a-z0-9_]{8}\.tmp$")        # mkstemp names of earlier versions
_held: dict[Path, int] = {}      # folder (resolved) -> nesting depth, for this process


class OutputBusyError(MduitError):
    """Another process holds the output folder."""


def _holder(lock_path: Path) -> str:
    try:
        pid, _, command = lock_path.read_text(encoding="utf-8", errors="replace").strip().partition(" ")
    except OSError:
        return "another mduit-loc command"
    if not pid.isdigit():
        return "another mduit-loc command"
    return f"another mduit-loc {command or 'command'} (pid {pid})"


@contextlib.contextmanager
def output_lock(folder: str | Path, command: str, clean: Iterable[str] = (), beside: bool = False) -> Iterator[Path]:
    """Hold ``folder`` (created if needed) for ``command``; ``clean``: subfolders also cleared of
    dead writers' temporaries (``checkpoints``); ``beside``: the lock file is ``.NAME.mduit-lock`` next to
    the folder, for a folder that must stay empty until written (``synth``). Raises ``OutputBusyError``
    when another process holds it."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise MduitError(f"output {folder} is a file; give a folder")
    folder.mkdir(parents=True, exist_ok=True)
    key = folder.resolve()
    if key in _held:
        _held[key] += 1
        try:
            yield folder
        finally:
            _held[key] -= 1
        return
    lock_path = key.parent / f".{key.name}{LOCK_FILE}" if beside else key / LOCK_FILE
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as err:
        raise MduitError(f"{folder}: cannot create the lock file {LOCK_FILE} ({err.strerror or err})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputBusyError(f"{_holder(lock_path)} is writing to {folder}; wait for it to finish or choose "
                                  "another output folder") from None
        except OSError as err:   # e.g. a file system without locks
            raise MduitError(f"{folder}: cannot lock the folder ({err.strerror or err})") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {command}\n".encode())
        _held[key] = 1
        try:
            settle_held(folder, clean)
            yield folder
        finally:
            del _held[key]
    finally:
        os.close(fd)   # releases the lock


def holds(folder: str | Path) -> bool:
    """Whether this process holds ``folder``'s lock."""
    return Path(folder).resolve() in _held


def settle_held(folder: Path, clean: Iterable[str] = ()) -> None:
    """Finish an interrupted commit, drop dead writers' staging folders and temporaries (lock held)."""
    roll_forward(folder)
    discard_stale_staging(folder)
    for place in (folder, *(folder / name for name in clean)):
        clean_stale_temporaries(place, legacy=True)


def settle(folder: str | Path) -> None:
    """For a reader: finish an interrupted commit in ``folder`` so it reads a whole set.

    Nothing to do (and no lock taken) unless a commit journal is there; then the folder's lock is
    taken for the moment of the repair, and a writer still committing makes this an ``OutputBusyError``.
    """
    folder = Path(folder)
    if not pending_commit(folder):
        return
    try:
        with output_lock(folder, "recovery"):
            pass   # taking the lock settles the folder
    except OSError as err:
        raise MduitError(f"{folder}: an interrupted write left its files half-replaced and they cannot be "
                         f"repaired here ({err.strerror or err}); run the command that wrote them again") from None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:   # another user's process
        return True
    return True


def clean_stale_temporaries(folder: str | Path, names: Iterable[str] | None = None, legacy: bool = False) -> list[Path]:
    """Delete ``.NAME.PID-TOKEN.tmp`` files in ``folder`` whose writer is dead; returns them.

    ``names``: only temporaries of these target names. ``legacy``: also the pid-less temporaries
    of earlier versions (only safe under the folder's lock).
    """
    wanted = set(names) if names is not None else None
    removed = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for child in Path(folder).iterdir():
            match = _TEMPORARY.match(child.name)
            stale = match is not None and not _alive(int(match.group(2)))
            if match is None and legacy:
                match = _LEGACY_TEMPORARY.match(child.name)
                stale = match is not None
            if not stale or match is None or (wanted is not None and match.group(1) not in wanted):
                continue
            if child.is_file() or child.is_symlink():
                child.unlink(missing_ok=True)
                removed.append(child)
    return removed

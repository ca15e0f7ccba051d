"""One writer per output folder (issue 12 item 12) and the cleanup of dead writers' leftovers (item 11)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from mduit_loc.output_lock import LOCK_FILE, OutputBusyError, clean_stale_temporaries, holds, output_lock, settle
from mduit_loc.output_set import JOURNAL


def dead_pid() -> int:
    """A pid no process has (the child of a finished subprocess)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def hold_in_another_process(folder, command: str = "train", beside: bool = False):
    """A process holding ``folder``'s lock until its stdin closes (``holder.communicate("")`` ends it)."""
    script = textwrap.dedent(f"""
        import sys
        from mduit_loc.output_lock import output_lock
        with output_lock({str(folder)!r}, {command!r}, beside={beside!r}):
            print("locked", flush=True)
            sys.stdin.read()
    """)
    holder = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_a_second_writer_is_refused_with_the_holders_command_and_pid(tmp_path):
    folder = tmp_path / "run"
    holder = hold_in_another_process(folder)
    try:
        with pytest.raises(OutputBusyError, match=rf"another mduit-loc train \(pid {holder.pid}\) is writing to "
                                                  rf".*run; wait for it to finish"):
            with output_lock(folder, "index"):
                pass
    finally:
        holder.communicate("")
    with output_lock(folder, "index"):      # released when the holder ended
        assert holds(folder)
        with output_lock(folder, "query"):  # re-entrant in one process
            assert holds(folder)
        assert holds(folder)
    assert not holds(folder)
    assert (folder / LOCK_FILE).is_file()


def test_the_lock_dies_with_a_killed_process(tmp_path):
    holder = hold_in_another_process(tmp_path)
    holder.kill()
    holder.wait()
    with output_lock(tmp_path, "query"):
        pass


def test_taking_a_folder_removes_dead_writers_temporaries_and_staging_folders(tmp_path):
    pid = dead_pid()
    stale = [tmp_path / f".pairs.txt.{pid}-0123abcd.tmp", tmp_path / ".scores.csv.k3j_9xq2.tmp",  # old mkstemp name
             tmp_path / "checkpoints" / f".last.pt.{pid}-89abcdef.tmp"]
    live = [tmp_path / f".pairs.txt.{os.getpid()}-0123abcd.tmp", tmp_path / "notes.tmp"]
    for path in stale + live:
        path.parent.mkdir(exist_ok=True)
        path.write_text("x")
    (tmp_path / f".mduit-staging-{pid}-00ff00ff").mkdir()
    (tmp_path / f".mduit-staging-{pid}-00ff00ff" / "pairs.txt").write_text("half")
    with output_lock(tmp_path, "train", clean=("checkpoints",)):
        pass
    assert not any(path.exists() for path in stale) and all(path.exists() for path in live)
    assert not (tmp_path / f".mduit-staging-{pid}-00ff00ff").exists()
    # without the lock (a single-file writer such as 'extract'): only dead writers' files of that name
    (tmp_path / f".a.h5.{pid}-01234567.tmp").write_text("x")
    (tmp_path / f".b.h5.{pid}-01234567.tmp").write_text("x")
    assert clean_stale_temporaries(tmp_path, names=["a.h5"]) == [tmp_path / f".a.h5.{pid}-01234567.tmp"]


def test_a_reader_finishes_an_interrupted_commit_but_not_one_in_progress(tmp_path):
    holder = hold_in_another_process(tmp_path, "query")   # a writer in the middle of its commit
    staging = tmp_path / ".mduit-staging-1-abcd"
    staging.mkdir()
    (staging / "pairs.txt").write_text("new")
    (tmp_path / "pairs.txt").write_text("old")
    (tmp_path / JOURNAL).write_text('{"staging": ".mduit-staging-1-abcd", "write": ["pairs.txt"], "remove": []}')
    try:
        with pytest.raises(OutputBusyError, match="another mduit-loc query"):
            settle(tmp_path)
    finally:
        holder.communicate("")
    settle(tmp_path)
    assert (tmp_path / "pairs.txt").read_text() == "new" and not (tmp_path / JOURNAL).exists()


def test_an_output_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "out").write_text("x")
    with pytest.raises(Exception, match="is a file"):
        with output_lock(tmp_path / "out", "query"):
            pass

"""``mduit-loc demo`` and ``table1`` take their output folder's lock before any work (issue 12 item 12)."""
from __future__ import annotations

import pytest

from mduit_loc.cli import main

from ..test_output_lock import hold_in_another_process


@pytest.mark.parametrize("command", ["demo", "table1"])
def test_a_second_pipeline_into_a_held_folder_is_refused(tmp_path, capsys, command):
    out = tmp_path / "out"
    holder = hold_in_another_process(out, command)
    try:
        assert main([command, "--out", str(out), "--data", str(tmp_path / "data"), "--no-progress"]) == 2
        error = capsys.readouterr().err
        assert f"another mduit-loc {command} (pid {holder.pid}) is writing to {out}" in error, error
    finally:
        holder.communicate("")
    assert not (tmp_path / "data").exists()

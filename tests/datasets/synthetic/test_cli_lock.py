"""``mduit-loc synth`` takes its output folder's lock (beside it: the folder stays empty until rendered)."""
from __future__ import annotations

from mduit_loc.cli import main

from ...test_output_lock import hold_in_another_process


def test_a_second_synth_into_a_held_folder_is_refused_before_rendering(tmp_path, capsys):
    out = tmp_path / "syn"
    holder = hold_in_another_process(out, "synth", beside=True)
    try:
        assert main(["synth", "--out", str(out), "--quiet"]) == 2
        error = capsys.readouterr().err
        assert f"another mduit-loc synth (pid {holder.pid}) is writing to {out}" in error, error
    finally:
        holder.communicate("")
    assert list(out.iterdir()) == []                      # nothing rendered, no lock file inside
    assert (tmp_path / ".syn.mduit-lock").is_file()

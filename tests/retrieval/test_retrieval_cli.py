"""The ``extract``, ``index`` and ``query`` commands, through ``mduit_loc.cli.main``."""
from __future__ import annotations

import shutil
from pathlib import Path

import h5py

from mduit_loc.cli import main
from mduit_loc.pose_files import read_pairs, read_poses

MINI = Path(__file__).parents[1] / "datasets" / "data" / "robotcar_mini"
QUIET = ["--num-workers", "0", "--no-progress", "--device", "cpu"]


def test_index_then_query_writes_all_outputs(tmp_path, capsys):
    assert main(["index", "--db", str(MINI), "--model", "raw-pixels:4x4", "--out", str(tmp_path / "idx"), *QUIET]) == 0
    assert "flat index of 2 vectors" in capsys.readouterr().out
    code = main(["query", "--index", str(tmp_path / "idx"), "--images", str(MINI), "--top-k", "1",
                 "--per-camera", "--out", str(tmp_path / "res"), *QUIET])
    assert code == 0
    pairs = read_pairs(tmp_path / "res" / "pairs.txt")
    assert sorted(pairs) == ["night/rear/1418235223450115.jpg", "sun/left/1416315296136145.jpg",
                             "sun/rear/1416315296136145.jpg"]
    assert set(read_poses(tmp_path / "res" / "poses.txt")) == set(pairs)


def test_query_errors_are_one_line_with_exit_code_2(tmp_path, capsys):
    main(["index", "--db", str(MINI), "--model", "raw-pixels:4x4", "--out", str(tmp_path / "idx"), *QUIET])
    capsys.readouterr()
    code = main(["query", "--index", str(tmp_path / "idx"), "--images", str(MINI), "--model", "raw-pixels:8x8",
                 "--out", str(tmp_path / "res"), *QUIET])
    error = capsys.readouterr().err
    assert code == 2 and "the index was built with dimension 48" in error and "raw-pixels:8x8" in error
    assert not (tmp_path / "res" / "pairs.txt").exists()
    code = main(["query", "--index", str(tmp_path / "nothing"), "--images", str(MINI), "--out", str(tmp_path / "r")])
    assert code == 2 and "index directory not found" in capsys.readouterr().err


def test_extract_skips_corrupt_images_when_asked_and_lists_them(tmp_path, capsys):
    folder = tmp_path / "photos"
    shutil.copytree(MINI / "images" / "sun", folder)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    out = tmp_path / "d.h5"
    code = main(["extract", "--model", "raw-pixels:4x4", "--images", str(folder), "--out", str(out), *QUIET])
    assert code == 2 and "broken.jpg" in capsys.readouterr().err and not out.exists()
    code = main(["extract", "--model", "raw-pixels:4x4", "--images", str(folder), "--out", str(out),
                 "--on-error", "skip", *QUIET])
    printed = capsys.readouterr().out
    assert code == 0 and "2 descriptor(s) written" in printed and "skipped" in printed and "broken.jpg" in printed
    with h5py.File(out, "r") as handle:
        assert handle["left/1416315296136145.jpg/global_descriptor"].shape == (48,)

"""Issue 13 item 2: poses and pairs files as hloc reads them (golden files; rules in hloc_rules)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mduit_loc.pose_files import read_pairs, read_poses, write_pairs, write_poses
from mduit_loc.poses import Pose
from mduit_loc.retrieval.outputs import write_results

from .hloc_rules import read_pairs_like_hloc, read_poses_like_hloc

DATA = Path(__file__).parent / "data"
POSES = {"night/rear/1418235223450115.jpg": Pose.from_qvec([1, 0, 0, 0], [1, 2, 3]),
         "sun/left/2.jpg": Pose.from_qvec([0.7071067812, 0, 0, 0.7071067812], [-1, 0, 0.5]),
         "dusk/right/3.png": Pose.from_qvec([0.5, -0.5, 0.5, 0.5], [-0.0, 1e-7, 123456.789])}
PAIRS = {"night/rear/1.jpg": ["overcast-reference/rear/5.jpg", "overcast-reference/rear/4.jpg"],
         "sun/left/2.jpg": ["overcast-reference/left/1.jpg"]}


def test_written_poses_equal_the_golden_file_and_hloc_reads_every_line(tmp_path: Path):
    path = tmp_path / "poses.txt"
    write_poses(path, POSES)
    assert path.read_bytes() == (DATA / "poses_golden.txt").read_bytes()
    by_hloc = read_poses_like_hloc(path)
    assert list(by_hloc) == list(POSES)  # no header line, no comment: every line is a pose
    for name, pose in POSES.items():
        q, t = by_hloc[name]
        assert np.allclose(q, pose.qvec) and np.allclose(t, pose.t)
    assert all(read_poses(path)[name].allclose(pose) for name, pose in POSES.items())


def test_hloc_rules_reject_a_header_line(tmp_path: Path):
    """The checker is as strict as hloc: the header our older versions wrote fails it."""
    path = tmp_path / "old.txt"
    path.write_text("# cam_from_world (COLMAP convention): name qw qx qy qz tx ty tz; pose: top1\n"
                    + (DATA / "poses_golden.txt").read_text())
    with pytest.raises(ValueError):
        read_poses_like_hloc(path)
    assert list(read_poses(path)) == list(POSES)  # ours still read such files


def test_written_pairs_equal_the_golden_file_and_hloc_reads_them(tmp_path: Path):
    path = tmp_path / "pairs.txt"
    write_pairs(path, PAIRS)
    assert path.read_bytes() == (DATA / "pairs_golden.txt").read_bytes()
    assert read_pairs_like_hloc(path) == [(q, db) for q, ranked in PAIRS.items() for db in ranked]
    assert read_pairs(path) == PAIRS


def test_query_results_keep_pose_metadata_in_summary_not_in_poses_file(tmp_path: Path):
    from mduit_loc.retrieval.localize import LocalizationResults

    results = LocalizationResults([], dict(POSES), dict(PAIRS), {q: [0.9] * len(r) for q, r in PAIRS.items()},
                                  {q: ["original"] * len(r) for q, r in PAIRS.items()},
                                  {q: ["rear"] * len(r) for q, r in PAIRS.items()}, pose_method="weighted")
    write_results(tmp_path, results, {"counts": {"queries": 3}})
    assert (tmp_path / "poses.txt").read_bytes() == (DATA / "poses_golden.txt").read_bytes()
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["poses_file"] == {"name": "poses.txt", "convention": "cam_from_world (COLMAP)",
                                     "columns": "name qw qx qy qz tx ty tz", "pose_method": "weighted"}
    assert summary["counts"] == {"queries": 3}

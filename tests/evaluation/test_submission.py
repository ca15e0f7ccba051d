"""Submission files: golden files (rear only, v2 .png names, all cameras), refusal of missing queries."""
from __future__ import annotations

import os

import pytest

from mduit_loc.errors import MduitError
from mduit_loc.evaluation.submission import (
    build_submission,
    check_complete,
    parse_cameras,
    required_test_queries,
    submission_name,
    write_submission,
)
from mduit_loc.pose_files import read_poses

from .conftest import DATA, TEST_GT

POSES = DATA / "poses_for_submission.txt"


def _check_golden(path, golden_name):
    golden = DATA / golden_name
    if os.environ.get("MDUIT_UPDATE_GOLDEN"):
        golden.write_text(path.read_text())
    assert path.read_text() == golden.read_text()


@pytest.mark.parametrize("cameras, v2, golden", [
    (("rear",), False, "submission_rear.txt"),
    (("rear",), True, "submission_rear_v2.txt"),
    (("left", "rear", "right"), False, "submission_all_cameras.txt"),
])
def test_submission_golden_files(tmp_path, cameras, v2, golden):
    submission = build_submission(read_poses(POSES), None, cameras, v2)
    path = write_submission(tmp_path / "sub.txt", submission)
    _check_golden(path, golden)


def test_rear_only_by_default_and_names_without_condition():
    submission = build_submission(read_poses(POSES))
    names = [line.split()[0] for line in submission.lines]
    assert names == ["rear/2100.jpg", "rear/2200.jpg", "rear/3100.jpg"]
    assert submission.skipped == ["left/2100"]
    # -q in the input is written with qw >= 0: the same rotation
    assert submission.lines[2].split()[1:5] == ["0.5", "0.5", "0.5", "0.5"]


def test_submission_name():
    assert submission_name("night/rear/1418235223450115.jpg") == "rear/1418235223450115.jpg"
    assert submission_name("night/rear/1418235223450115.jpg", v2=True) == "rear/1418235223450115.png"
    assert submission_name("left/77.png") == "left/77.jpg"


def test_missing_required_queries_are_refused_with_a_count():
    poses = read_poses(POSES)
    required = [*TEST_GT, "sun/rear/5555.jpg", "sun/rear/6666.jpg"]
    submission = build_submission(poses, required)
    assert submission.missing == ["rear/5555.jpg", "rear/6666.jpg"]
    with pytest.raises(MduitError, match=r"2 of 5 rear test queries have no pose .*--allow-missing"):
        check_complete(submission, POSES, ("rear",))
    assert len(submission.lines) == 3


def test_required_queries_from_the_dataset(benchmark_root):
    names = required_test_queries(benchmark_root)
    assert sorted(names) == sorted(TEST_GT)   # snow/left shares its rear frame's split
    complete = build_submission(read_poses(POSES), names, parse_cameras("all"))
    assert complete.missing == [] and len(complete.lines) == 4


def test_required_queries_need_a_test_list(tmp_path):
    from .conftest import write_benchmark

    root = write_benchmark(tmp_path / "b")
    (root / "robotcar_v2_test.txt").unlink()
    with pytest.raises(MduitError, match="no test queries"):
        required_test_queries(root)


def test_duplicate_frames_and_bad_cameras_are_refused(tmp_path):
    from mduit_loc.poses import Pose

    with pytest.raises(MduitError, match="twice"):
        build_submission({"sun/rear/1.jpg": Pose.identity(), "night/rear/1.jpg": Pose.identity()})
    with pytest.raises(MduitError, match="--cameras"):
        parse_cameras("rear,front")
    with pytest.raises(MduitError, match="empty"):
        write_submission(tmp_path / "unused.txt", build_submission({}, None))


def test_an_unknown_condition_in_a_poses_file_names_the_file_and_line(tmp_path):
    """Issue 12 (phase A leftover): the submit command reads poses with their line numbers."""
    from mduit_loc.errors import MduitError
    from mduit_loc.evaluation.submission import read_submission_poses

    path = tmp_path / "poses.txt"
    line = " 1 0 0 0 0 0 0"
    path.write_bytes(("\ufeff" + "night/rear/1.jpg" + line + "\r\nevening/rear/2.jpg" + line + "\n").encode())
    with pytest.raises(MduitError, match=r"poses.txt:2: unknown condition 'evening' in 'evening/rear/2.jpg'"):
        read_submission_poses(path)
    path.write_text("night/rear/1.jpg" + line + "\nsnow/rear/1.jpg" + line + "\n")
    with pytest.raises(MduitError, match=r"poses.txt:2: 'snow/rear/1.jpg' is the same camera and timestamp as line 1"):
        read_submission_poses(path)
    path.write_text("\ufeffnight/rear/1.jpg" + line + "\n")   # a BOM: the first pose is kept
    assert list(read_submission_poses(path)) == ["night/rear/1.jpg"]

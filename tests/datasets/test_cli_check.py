"""``mduit-loc check``: layout detection, validation problems (one line each), summary table."""
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from mduit_loc.cli import main
from mduit_loc.datasets import robotcar_files as files
from mduit_loc.datasets.aligned import write_aligned_list
from mduit_loc.datasets.cli_check import (
    LAYOUT_COLMAP,
    LAYOUT_DOMAINS,
    LAYOUT_ROBOTCAR,
    LAYOUT_SYNTHETIC,
    CheckOptions,
    check_dataset,
    detect_layout,
    summary_table,
)
from mduit_loc.datasets.colmap_text import ColmapImage, write_colmap_text
from mduit_loc.datasets.images import save_image
from mduit_loc.datasets.types import Intrinsics
from mduit_loc.poses import Pose, yaw_pose

MINI = Path(__file__).parent / "data" / "robotcar_mini"
QUIET = ["--num-workers", "0", "--no-progress"]
FULL = CheckOptions(full=True)


@pytest.fixture()
def mini_copy(tmp_path):
    shutil.copytree(MINI, tmp_path / "mini")
    return tmp_path / "mini"


def _row(text: str, label: str) -> list[str]:
    (line,) = [line for line in text.splitlines() if re.match(rf"\s+{re.escape(label)}\s", line)]
    return line.split()


def test_fixture_passes_and_the_table_counts_it(capsys):
    assert main(["check", str(MINI), *QUIET]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert captured.err == ""
    assert f"dataset: {MINI} ({LAYOUT_ROBOTCAR})" in out
    header = _row(out, "condition")
    assert header == ["condition", "day/night", "left", "rear", "total"]
    assert _row(out, "overcast-reference") == ["overcast-reference", "day", "0", "2", "2"]
    assert _row(out, "night") == ["night", "night", "0", "1", "1"]
    assert _row(out, "sun") == ["sun", "day", "1", "1", "2"]
    assert _row(out, "total") == ["total", "1", "4", "5"]
    assert "queries per split: test 2, train 1" in out
    assert "queries day/night: day 2, night 1" in out
    assert "locations: 1 (1 with database images, 1 with queries)" in out
    assert "images: 5 listed, 0 missing, 5 decoded" in out
    # The fixture's 8x8 images carry the real 1024x1024 calibration: a warning, not a failure.
    assert "warning: camera 'rear': principal point (508.2, 498.2) lies outside its 8x8 images" in out
    assert out.rstrip().endswith("is a valid robotcar-seasons dataset")


def test_problems_are_one_line_each_and_fail_the_check(mini_copy, capsys):
    (mini_copy / "images" / "sun" / "left" / "1416315296136145.jpg").unlink()
    (mini_copy / "images" / "night" / "rear" / "1418235223450115.jpg").write_bytes(b"\xff\xd8 broken")
    (mini_copy / "intrinsics" / "left_intrinsics.txt").unlink()
    assert main(["check", str(mini_copy), *QUIET]) == 1
    err = capsys.readouterr().err.splitlines()
    problems = [line for line in err if line.startswith("problem: ")]
    assert len(problems) == 3 and err[-1] == f"check failed: 3 problem(s) in {mini_copy}"
    missing, unreadable, intrinsics = problems
    assert "sun/left/1416315296136145.jpg: image listed in " \
           "3D-models/individual/queries_per_location/queries_location_001.txt does not exist" in missing
    assert "night/rear/1418235223450115.jpg: not a readable image" in unreadable
    assert f"no intrinsics for camera 'left' (1 images); expected in {mini_copy}/intrinsics/left_intrinsics.txt" \
        in intrinsics
    assert main(["check", str(mini_copy), "--max-problems", "1", *QUIET]) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 3 and "and 2 more" in err[1]


def test_image_size_must_match_its_camera(mini_copy):
    save_image(mini_copy / "images" / "sun" / "rear" / "1416315296136145.jpg", np.zeros((16, 12, 3), np.uint8))
    report = check_dataset(mini_copy, options=FULL)
    assert not report.ok
    (problem,) = report.problems
    assert "sun/rear/1416315296136145.jpg: 12x16 pixels, but the 'rear' camera's images are 8x8" in problem


def test_only_a_sample_is_decoded_without_full(mini_copy):
    report = check_dataset(mini_copy, options=CheckOptions(sample=2))
    assert (report.images_listed, report.images_decoded) == (5, 2)
    assert check_dataset(mini_copy, options=FULL).images_decoded == 5


def test_unlisted_images_and_optional_files_are_warnings(mini_copy):
    save_image(mini_copy / "images" / "sun" / "rear" / "999.jpg", np.zeros((8, 8, 3), np.uint8))
    (mini_copy / files.TEST_FILE).unlink()
    shutil.rmtree(mini_copy / "extrinsics")
    report = check_dataset(mini_copy, options=FULL)
    assert report.ok
    text = "\n".join(report.warnings)
    assert "1 image(s) under images/ are in no model or query list, e.g. sun/rear/999.jpg" in text
    assert "no robotcar_v2_test.txt" in text and "no extrinsics for camera(s) left, rear" in text


def test_synthetic_benchmark_needs_ground_truth_for_every_test_query(mini_copy):
    (mini_copy / "synth.json").write_text("{}")
    assert detect_layout(mini_copy) == LAYOUT_SYNTHETIC
    report = check_dataset(mini_copy, options=FULL)
    assert report.problems == [f"test ground truth not found: {mini_copy / files.TEST_GROUND_TRUTH_FILE} "
                               "(only the synthetic benchmark ships it; for the real RobotCar Seasons test split, "
                               "write a submission with 'mduit-loc submit' and upload it to the benchmark server)"]
    files.write_pose_matrix_file(mini_copy / files.TEST_GROUND_TRUTH_FILE, [("sun/rear/1416315296136145.jpg",
                                                                             Pose.identity())])
    report = check_dataset(mini_copy, options=FULL)
    assert report.problems == [f"{mini_copy / files.TEST_GROUND_TRUTH_FILE}: no ground truth for test query "
                               "sun/left/1416315296136145.jpg"]


def test_colmap_map_and_domain_folders(tmp_path, capsys):
    poses = {"cam/a.jpg": yaw_pose(0), "cam/b.jpg": yaw_pose(30, (1, 0, 0))}
    write_colmap_text(tmp_path / "map" / "sparse", {1: Intrinsics(10, 10, 4, 3, 8, 6)},
                      [ColmapImage(name, pose, 1) for name, pose in poses.items()])
    for name in poses:
        save_image(tmp_path / "map" / "images" / name, np.zeros((6, 8, 3), np.uint8))
    assert detect_layout(tmp_path / "map") == LAYOUT_COLMAP
    assert check_dataset(tmp_path / "map", options=FULL).ok
    save_image(tmp_path / "map" / "images" / "cam" / "b.jpg", np.zeros((8, 8, 3), np.uint8))
    (problem,) = check_dataset(tmp_path / "map", options=FULL).problems
    assert "b.jpg: 8x8 pixels, but the 'cam' camera's images are 8x6" in problem

    for domain in ("summer", "winter"):
        save_image(tmp_path / "domains" / domain / "x.jpg", np.zeros((6, 8, 3), np.uint8))
    assert detect_layout(tmp_path / "domains") == LAYOUT_DOMAINS
    assert main(["check", str(tmp_path / "domains"), *QUIET]) == 0
    out = capsys.readouterr().out
    assert _row(out, "summer") == ["summer", "-", "1", "1"] and "queries per split: none 2" in out


def test_unknown_or_missing_folder_is_one_error_line(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["check", str(tmp_path / "empty"), *QUIET]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("mduit-loc check: error: ") and "per appearance domain" in err
    assert main(["check", str(tmp_path / "missing"), *QUIET]) == 2
    assert "dataset folder not found" in capsys.readouterr().err


def test_parse_errors_stop_the_check_with_file_and_line(mini_copy, capsys):
    (mini_copy / files.TRAIN_FILE).write_text("night/rear/1418235223450115.png 1 0 0\n")
    assert main(["check", str(mini_copy), *QUIET]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{mini_copy / files.TRAIN_FILE}:1: expected 17 tokens" in err


def test_negative_counts_are_refused(capsys):
    assert main(["check", str(MINI), "--sample", "-1", *QUIET]) == 2
    assert "--sample, --max-problems and --num-workers must be >= 0" in capsys.readouterr().err


# --- issue 12: check reads the NVM point section and refuses shifted or duplicated cameras ---
NVM = "3D-models/all-merged/all.nvm"


def test_check_reports_the_point_count(capsys):
    assert main(["check", str(MINI), *QUIET]) == 0
    assert "3D points: 2 (3 measurements)" in capsys.readouterr().out


@pytest.mark.parametrize("old,new,line", [
    (b"1 2 3 255 0 0", b"nan 2 3 255 0 0", 8),     # NaN point: was accepted
    (b"1 2 3 255 0 0", b"1 2 3 999 0 0", 8),       # colour out of range: was an OverflowError at --pose pnp
    (b"2 0 6 1 2 1 7", b"2 0 6 1 2 5 7", 9),       # image index out of range
    (b"\n2\n1 2 3", b"\n3\n1 2 3", 11),            # more points declared than present: the final 0 read as one
])
def test_corrupt_nvm_points_are_a_check_problem(mini_copy, capsys, old, new, line):
    path = mini_copy / NVM
    data = path.read_bytes()
    assert old in data
    path.write_bytes(data.replace(old, new, 1))
    assert main(["check", str(mini_copy), *QUIET]) == 1
    problems = [p for p in capsys.readouterr().err.splitlines() if "all.nvm" in p]
    assert len(problems) == 1
    assert problems[0].startswith(f"problem: {path}:{line}: expected")


@pytest.mark.parametrize("mutation", ["drop_number", "duplicate"])
def test_shifted_or_duplicated_nvm_camera_stops_the_check(mini_copy, capsys, mutation):
    """A camera line missing a number (fields shifted) or a duplicated one passed 'check'."""
    path = mini_copy / NVM
    lines = path.read_text().splitlines(keepends=True)
    if mutation == "drop_number":
        lines[3] = lines[3].replace(" 10 20 30 ", " 10 20 ")
    else:
        lines.insert(3, lines[3])
    path.write_text("".join(lines))
    assert main(["check", str(mini_copy), *QUIET]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}:" in err


def test_non_utf8_list_stops_the_check_with_file_and_line(mini_copy, capsys):
    path = mini_copy / files.TEST_FILE
    path.write_bytes(b"rear/1416315296136145.png\nrear/14\xff18235223450115.png\n")
    assert main(["check", str(mini_copy), *QUIET]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}:2: expected UTF-8 text" in err and "internal error" not in err


def test_colmap_map_points_are_checked(tmp_path, capsys):
    root = tmp_path / "map"
    write_colmap_text(root, {1: Intrinsics(8, 8, 4, 4, 8, 8)},
                      [ColmapImage("cam/a.jpg", Pose.identity(), 1, np.array([[1.0, 2]]), np.array([1]))],
                      np.array([[1.0, 2, 3]]))
    save_image(root / "images" / "cam" / "a.jpg", np.zeros((8, 8, 3), np.uint8))
    assert check_dataset(root, options=FULL).ok
    (root / "points3D.txt").write_text((root / "points3D.txt").read_text().replace("1 1 2 3", "1 1 2 inf"))
    report = check_dataset(root, options=FULL)
    assert report.problems == [f"{root / 'points3D.txt'}:3: expected numbers X Y Z and ERROR (finite numbers), "
                               "got '1 1 2 inf 128 128 128 0 1 0'"]


def test_oversized_image_is_one_problem_line(mini_copy, monkeypatch):
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20)  # the fixture's images are 8x8
    report = check_dataset(mini_copy, options=FULL)
    assert len(report.problems) == 5 and all("decompression-bomb limit" in p for p in report.problems)


def test_aligned_set_is_summarised_and_its_problems_are_one_line_each(mini_copy):
    names = [f"{c}/rear/1417176456183210.jpg" for c in ("overcast-reference", "night")]
    for name in names:
        save_image(mini_copy / "aligned" / name, np.zeros((8, 8, 3), np.uint8))
    write_aligned_list(mini_copy, names)
    report = check_dataset(mini_copy, options=FULL)
    assert report.ok and "aligned set: 1 database poses x 2 conditions (aligned/)" in summary_table(report)
    save_image(mini_copy / "aligned" / "night/rear/5.jpg", np.zeros((8, 8, 3), np.uint8))
    write_aligned_list(mini_copy, names + ["night/rear/5.jpg"])
    report = check_dataset(mini_copy, options=FULL)
    list_path = mini_copy / "aligned" / "aligned.txt"
    assert report.problems == [f"{list_path}:3: expected every pose under the same conditions as the first "
                               "(overcast-reference, night), got 'rear/5 differs in overcast-reference'"]
    write_aligned_list(mini_copy, ["night/rear/5.jpg"])
    report = check_dataset(mini_copy, options=FULL)
    assert report.problems == [f"{list_path}: rear/5 is not the pose of a database image "
                               "(overcast-reference/rear/5.jpg is not in the NVM model)"]

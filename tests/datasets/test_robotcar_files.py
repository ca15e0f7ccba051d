"""RobotCar Seasons text files: golden files, hand-checked values, hypothesis round trips and bad lines."""
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mduit_loc.datasets import robotcar_files as files
from mduit_loc.datasets.layout import (
    CAMERAS,
    DAY_CONDITIONS,
    NIGHT_CONDITIONS,
    QUERY_CONDITIONS,
    ImageName,
    canonical_name,
    day_or_night,
    png_name,
)
from mduit_loc.errors import DataNotFoundError, FormatError
from mduit_loc.poses import Pose, qvec_to_rotmat

DATA = Path(__file__).parent / "data"
MINI = DATA / "robotcar_mini"
GOLDEN = DATA / "golden"
_SCRATCH = Path(tempfile.mkdtemp(prefix="mduit-robotcar-files-"))  # hypothesis runs many examples per test


def _world_from_cam(rotation, center) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, :3], matrix[:3, 3] = rotation, center
    return matrix


# --- layout ------------------------------------------------------------------------------
def test_names_are_normalised_in_one_place():
    assert (canonical_name("./overcast-reference/rear/1417176456183210.png")
            == "overcast-reference/rear/1417176456183210.jpg")
    assert canonical_name("night\\left\\1.jpg") == "night/left/1.jpg"
    assert png_name("sun/rear/5.jpg") == "sun/rear/5.png"
    parsed = ImageName.parse("rear/1416315296136145.png")
    assert (parsed.condition, parsed.camera, parsed.timestamp) == (None, "rear", "1416315296136145")
    assert parsed.name("sun") == "sun/rear/1416315296136145.jpg"
    assert len(QUERY_CONDITIONS) == 9 and NIGHT_CONDITIONS == {"night", "night-rain"} and len(DAY_CONDITIONS) == 7
    assert day_or_night("night-rain") == "night" and day_or_night("overcast-winter") == "day"
    for bad in ("fog/rear/1.jpg", "sun/front/1.jpg", "sun/rear/.jpg", "a/b/c/d.jpg"):
        with pytest.raises(ValueError):
            ImageName.parse(bad)


# --- intrinsics --------------------------------------------------------------------------
def test_intrinsics_fixture_has_the_published_values():
    assert files.read_intrinsics_file(MINI / "intrinsics" / "rear_intrinsics.txt") == {
        "fx": 400.0, "fy": 400.0, "cx": 508.222931, "cy": 498.187378}
    assert files.read_intrinsics_file(MINI / "intrinsics" / "left_intrinsics.txt")["cy"] == 511.461426


def test_intrinsics_writer_matches_golden_file(tmp_path):
    files.write_intrinsics_file(tmp_path / "rear_intrinsics.txt", 400.0, 400.0, 508.222931, 498.187378)
    assert (tmp_path / "rear_intrinsics.txt").read_text() == (GOLDEN / "rear_intrinsics.txt").read_text()


@pytest.mark.parametrize("text,line", [
    ("fx 400\nfy 400\ncx 1\nk1 0.1\n", 4),
    ("fx 400\nfy abc\ncx 1\ncy 2\n", 2),
    ("fx 400\nfx 401\ncx 1\ncy 2\n", 2),
    ("fx 400 401\nfy 400\ncx 1\ncy 2\n", 1),
    ("fx inf\nfy 400\ncx 1\ncy 2\n", 1),
    ("fx 400\nfy 400\ncx 1\n", None),
])
def test_bad_intrinsics_name_the_file_and_line(tmp_path, text, line):
    path = tmp_path / "rear_intrinsics.txt"
    path.write_text(text)
    with pytest.raises(FormatError) as info:
        files.read_intrinsics_file(path)
    assert info.value.line == line and str(path) in str(info.value)
    if line is None:
        assert "missing cy" in str(info.value)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=4, max_size=4))
def test_intrinsics_round_trip(values):
    path = _SCRATCH / "intrinsics.txt"
    files.write_intrinsics_file(path, *values)
    back = files.read_intrinsics_file(path)
    np.testing.assert_allclose([back[k] for k in ("fx", "fy", "cx", "cy")], values, rtol=1e-9, atol=1e-300)


# --- extrinsics --------------------------------------------------------------------------
def test_extrinsics_fixture_is_car_from_cam():
    rear = files.read_extrinsics_file(MINI / "extrinsics" / "rear_extrinsics.txt")
    np.testing.assert_array_equal(rear, [[-1, 0, 0, -0.2], [0, -1, 0, 0], [0, 0, 1, 1.5], [0, 0, 0, 1]])
    left = files.read_extrinsics_file(MINI / "extrinsics" / "left_extrinsics.txt")
    np.testing.assert_array_equal(left[:3, 3], [0.1, 0.5, 1.5])  # the camera position on the car


def test_extrinsics_writer_matches_golden_file(tmp_path):
    matrix = np.array([[-1.0, 0, 0, -0.2], [0, -1, 0, 0], [0, 0, 1, 1.5], [0, 0, 0, 1]])
    files.write_extrinsics_file(tmp_path / "rear_extrinsics.txt", matrix)
    assert (tmp_path / "rear_extrinsics.txt").read_text() == (GOLDEN / "rear_extrinsics.txt").read_text()


@pytest.mark.parametrize("text,line,expected", [
    ("1,0,0\n0,1,0,0\n0,0,1,0\n0,0,0,1\n", 1, "4 comma-separated"),
    ("1,0,0,0\n0,1,x,0\n0,0,1,0\n0,0,0,1\n", 2, "4 comma-separated"),
    ("1,0,0,0\n0,1,0,0\n0,0,1,0\n", None, "4 rows"),
    ("2,0,0,0\n0,1,0,0\n0,0,1,0\n0,0,0,1\n", None, "rigid"),
    ("1,0,0,0\n0,1,0,0\n0,0,1,0\n0,0,1,1\n", None, "rigid"),
])
def test_bad_extrinsics_name_the_file(tmp_path, text, line, expected):
    path = tmp_path / "rear_extrinsics.txt"
    path.write_text(text)
    with pytest.raises(FormatError, match=expected) as info:
        files.read_extrinsics_file(path)
    assert info.value.line == line and info.value.path == path


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-1, 1), min_size=4, max_size=4).filter(lambda q: np.linalg.norm(q) > 0.1),
       st.lists(st.floats(-10, 10), min_size=3, max_size=3))
def test_extrinsics_round_trip(qvec, position):
    car_from_cam = _world_from_cam(qvec_to_rotmat(qvec), position)
    path = _SCRATCH / "extrinsics.txt"
    files.write_extrinsics_file(path, car_from_cam)
    assert all(line.count(",") == 3 for line in path.read_text().splitlines())
    np.testing.assert_allclose(files.read_extrinsics_file(path), car_from_cam, atol=1e-9)


# --- pose lists: robotcar_v2_train.txt and the synthetic test ground truth -----------------
def test_train_fixture_is_a_camera_to_world_matrix():
    ((number, name, pose),) = files.read_pose_matrix_file(MINI / "robotcar_v2_train.txt")
    assert (number, name) == (1, "night/rear/1418235223450115.png")
    # The file's matrix is [I | (10, 20, 30)]: the camera centre is its last column.
    np.testing.assert_allclose(pose.center, [10, 20, 30])
    np.testing.assert_allclose(pose.t, [-10, -20, -30])
    np.testing.assert_allclose(pose.R, np.eye(3))


def test_rotated_train_line_is_inverted_to_cam_from_world():
    line = "night/rear/1.png 0 -1 0 5 1 0 0 6 0 0 1 7 0 0 0 1"
    _, pose = files.parse_pose_matrix_line(line)
    world_from_cam_R = np.array([[0, -1, 0], [1, 0, 0], [0, 0, 1]])
    np.testing.assert_allclose(pose.R, world_from_cam_R.T)
    np.testing.assert_allclose(pose.center, [5, 6, 7])
    # A point one metre in front of the camera (camera z) lies along world_from_cam_R[:, 2] = world z.
    np.testing.assert_allclose(pose.transform(np.array([[5, 6, 8]])), [[0, 0, 1]], atol=1e-12)


def test_pose_matrix_writer_matches_golden_train_and_ground_truth_files(tmp_path):
    first = Pose.from_world_from_cam_matrix(_world_from_cam([[0, -1, 0], [1, 0, 0], [0, 0, 1]], [5, 6, 7]))
    second = Pose.from_world_from_cam_matrix(_world_from_cam(np.eye(3), [-3.25, 0.5, 100]))
    files.write_pose_matrix_file(tmp_path / "train.txt", [("night/rear/1418235223450115.png", first),
                                                          ("sun/rear/1416315296136145.png", second)])
    assert (tmp_path / "train.txt").read_text() == (GOLDEN / "robotcar_v2_train.txt").read_text()
    gt_root = tmp_path / "syn"
    files.write_pose_matrix_file(gt_root / files.TEST_GROUND_TRUTH_FILE, [("sun/rear/1416315296136145.jpg", first)])
    assert (gt_root / files.TEST_GROUND_TRUTH_FILE).read_text() == (GOLDEN / "robotcar_v2_test_gt.txt").read_text()
    truth = files.read_test_ground_truth(gt_root)
    assert list(truth) == ["sun/rear/1416315296136145.jpg"]
    assert truth["sun/rear/1416315296136145.jpg"].allclose(first)


def test_missing_test_ground_truth_says_only_the_synthetic_benchmark_has_it(tmp_path):
    with pytest.raises(DataNotFoundError, match="only the synthetic benchmark"):
        files.read_test_ground_truth(tmp_path)


def test_duplicate_pose_line_names_both_lines(tmp_path):
    path = tmp_path / "train.txt"
    line = "night/rear/1.png 1 0 0 0 0 1 0 0 0 0 1 0 0 0 0 1\n"
    path.write_text(line + "\n" + line.replace(".png", ".jpg"))
    with pytest.raises(FormatError, match="already appears on line 1") as info:
        files.read_pose_matrix_file(path)
    assert info.value.line == 3


rotations = st.lists(st.floats(-1, 1), min_size=4, max_size=4).filter(
    lambda q: np.linalg.norm(q) > 0.1).map(qvec_to_rotmat)
centers = st.lists(st.floats(-1e4, 1e4), min_size=3, max_size=3)
image_names = st.builds(lambda c, cam, ts: f"{c}/{cam}/{ts}.png", st.sampled_from(QUERY_CONDITIONS),
                        st.sampled_from(CAMERAS), st.integers(10**15, 10**16 - 1))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(image_names, rotations, centers), min_size=1, max_size=5, unique_by=lambda e: e[0]))
def test_pose_matrix_file_round_trip(entries):
    poses = [(name, Pose.from_world_from_cam_matrix(_world_from_cam(r, c))) for name, r, c in entries]
    path = _SCRATCH / "poses.txt"
    files.write_pose_matrix_file(path, poses)
    back = files.read_pose_matrix_file(path)
    assert [(number, name) for number, name, _ in back] == [(i + 1, name) for i, (name, _) in enumerate(poses)]
    for (_, _, read), (_, written) in zip(back, poses):
        np.testing.assert_allclose(read.R, written.R, atol=1e-9)
        np.testing.assert_allclose(read.center, written.center, atol=1e-5)


def _corrupt(line: str, how: str, position: int) -> str:
    tokens = line.split()
    if how == "drop":
        del tokens[1 + position % 16]
    elif how == "word":
        tokens[1 + position % 16] = "abc"
    elif how == "nan":
        tokens[1 + position % 16] = "nan"
    elif how == "scale":  # a rotation block scaled by 2 is not a rotation
        tokens[1:13] = [str(2 * float(t)) if i % 4 != 3 else t for i, t in enumerate(tokens[1:13])]
    elif how == "last_row":
        tokens[13] = "0.5"
    return " ".join(tokens)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(image_names, rotations, centers), min_size=1, max_size=4, unique_by=lambda e: e[0]),
       st.integers(0, 3), st.sampled_from(["drop", "word", "nan", "scale", "last_row"]), st.integers(0, 100))
def test_malformed_pose_line_raises_format_error_with_path_and_line(entries, bad_index, how, position):
    path = _SCRATCH / "bad_poses.txt"
    files.write_pose_matrix_file(path, [(n, Pose.from_world_from_cam_matrix(_world_from_cam(r, c)))
                                        for n, r, c in entries])
    lines = path.read_text().splitlines()
    bad_index %= len(lines)
    lines[bad_index] = _corrupt(lines[bad_index], how, position)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(FormatError) as info:
        files.read_pose_matrix_file(path)
    assert info.value.line == bad_index + 1
    assert f"{path}:{bad_index + 1}: expected" in str(info.value)


# --- name lists: robotcar_v2_test.txt and queries_per_location ----------------------------
def test_test_list_and_query_list_fixtures():
    assert files.read_name_list(MINI / "robotcar_v2_test.txt", "test list", require_condition=False) == [
        (1, "rear/1416315296136145.png")]
    assert files.read_query_lists(MINI) == {1: ["night/rear/1418235223450115.jpg", "sun/rear/1416315296136145.jpg",
                                                "sun/left/1416315296136145.jpg"]}


def test_name_list_writers_match_golden_files(tmp_path):
    files.write_name_list(tmp_path / "test.txt", ["rear/1416315296136145.png", "rear/1418235223450115.png"])
    assert (tmp_path / "test.txt").read_text() == (GOLDEN / "robotcar_v2_test.txt").read_text()
    path = files.query_list_path(tmp_path, 7)
    assert path == tmp_path / "3D-models/individual/queries_per_location/queries_location_007.txt"
    files.write_name_list(path, ["night/rear/1418235223450115.jpg", "sun/left/1416315296136145.jpg"])
    assert path.read_text() == (GOLDEN / "queries_location_007.txt").read_text()
    assert files.read_query_lists(tmp_path) == {7: ["night/rear/1418235223450115.jpg",
                                                    "sun/left/1416315296136145.jpg"]}
    assert files.location_model_dir(tmp_path, 7) == tmp_path / "3D-models/individual/colmap_reconstructions/007_aligned"


@settings(max_examples=40, deadline=None)
@given(st.lists(image_names, min_size=1, max_size=6, unique_by=canonical_name), st.booleans())
def test_name_list_round_trip(names, with_condition):
    written = names if with_condition else [n.split("/", 1)[1] for n in names]
    if len({canonical_name(n) for n in written}) < len(written):
        return  # dropping the condition made two names equal; duplicates are tested below
    path = _SCRATCH / "names.txt"
    files.write_name_list(path, written)
    back = files.read_name_list(path, "list", require_condition=with_condition)
    assert back == [(i + 1, n) for i, n in enumerate(written)]


@settings(max_examples=40, deadline=None)
@given(st.lists(image_names, min_size=1, max_size=4, unique_by=canonical_name), st.integers(0, 3),
       st.sampled_from(["fog/rear/1.jpg", "sun/front/1.jpg", "sun rear 1.jpg", "rear/1.jpg", "sun/rear/.jpg",
                        "a/sun/rear/1.jpg"]))
def test_malformed_query_list_line_raises_format_error_with_path_and_line(names, bad_index, bad):
    bad_index %= len(names)
    names = list(names)
    names[bad_index] = bad
    path = _SCRATCH / "queries.txt"
    path.write_text("".join(n + "\n" for n in names))
    with pytest.raises(FormatError) as info:
        files.read_name_list(path, "query list", require_condition=True)
    assert info.value.line == bad_index + 1 and f"{path}:{bad_index + 1}" in str(info.value)


def test_duplicate_in_name_list_is_an_error_even_across_png_and_jpg(tmp_path):
    path = tmp_path / "queries.txt"
    path.write_text("sun/rear/1.jpg\n# a comment\nsun/rear/1.png\n")
    with pytest.raises(FormatError, match="already appears on line 1") as info:
        files.read_name_list(path, "query list", require_condition=True)
    assert info.value.line == 3


def test_missing_files_are_named(tmp_path):
    with pytest.raises(DataNotFoundError, match="intrinsics file not found"):
        files.read_intrinsics_file(tmp_path / "rear_intrinsics.txt")
    with pytest.raises(DataNotFoundError, match="test list not found"):
        files.read_name_list(tmp_path / "robotcar_v2_test.txt", "test list", require_condition=False)
    assert files.read_query_lists(tmp_path) == {}


# --- issue 12: every reader names the file and line of a bad byte; BOM and CRLF are harmless ---
_READERS = {
    "rear_intrinsics.txt": files.read_intrinsics_file,
    "rear_extrinsics.txt": files.read_extrinsics_file,
    "robotcar_v2_train.txt": lambda p: files.read_pose_matrix_file(p, "training ground truth"),
    "robotcar_v2_test.txt": lambda p: files.read_name_list(p, "test list", require_condition=False),
    "queries_location_007.txt": lambda p: files.read_name_list(p, "query list", require_condition=True),
}


def _plain(value):
    if isinstance(value, Pose):
        return ("pose", value.R.tolist(), value.t.tolist())
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@pytest.mark.parametrize("name", sorted(_READERS))
def test_non_utf8_byte_names_file_and_line(tmp_path, name):
    """Any non-UTF-8 byte was an 'internal error (UnicodeDecodeError ...)' naming no file."""
    text = (GOLDEN / name).read_bytes().splitlines(keepends=True)
    text[1] = text[1][:3] + b"\xe9" + text[1][3:]
    path = tmp_path / name
    path.write_bytes(b"".join(text))
    with pytest.raises(FormatError, match="expected UTF-8 text") as info:
        _READERS[name](path)
    assert info.value.path == path and info.value.line == 2 and "\n" not in str(info.value)


@pytest.mark.parametrize("name", sorted(_READERS))
def test_bom_crlf_and_trailing_spaces_read_the_same(tmp_path, name):
    data = (GOLDEN / name).read_bytes()
    path = tmp_path / name
    path.write_bytes(b"\xef\xbb\xbf" + data.replace(b"\n", b" \t\r\n"))
    assert _plain(_READERS[name](path)) == _plain(_READERS[name](GOLDEN / name))


@pytest.mark.parametrize("value", ["nan", "-inf", "1e400", "1e300"])
def test_non_finite_or_huge_numbers_name_file_and_line(tmp_path, value):
    path = tmp_path / "rear_extrinsics.txt"
    path.write_text(f"1,0,0,0\n0,1,0,{value}\n0,0,1,0\n0,0,0,1\n")
    with pytest.raises(FormatError, match="rear_extrinsics.txt:2: expected 4 comma-separated numbers") as info:
        files.read_extrinsics_file(path)
    assert info.value.line == 2
    path = tmp_path / "rear_intrinsics.txt"
    path.write_text(f"fx 400\nfy 400\ncx {value}\ncy 2\n")
    with pytest.raises(FormatError, match="rear_intrinsics.txt:3: expected a number after cx"):
        files.read_intrinsics_file(path)

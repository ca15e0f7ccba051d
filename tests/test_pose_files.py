from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mduit_loc.errors import FormatError
from mduit_loc.pose_files import parse_pose_line, read_pairs, read_poses, write_pairs, write_poses
from mduit_loc.poses import Pose, yaw_pose

# A file of an older version, with its header line: still read (comments are allowed on reading).
GOLDEN_POSES = """# method: test
night/rear/1.jpg 1 0 0 0 1 2 3
sun/left/2.jpg 0.7071067812 0 0 0.7071067812 -1 0 0.5
"""


def test_poses_golden_round_trip(tmp_path: Path):
    poses = {"night/rear/1.jpg": Pose.from_qvec([1, 0, 0, 0], [1, 2, 3]),
             "sun/left/2.jpg": Pose.from_qvec([0.7071067812, 0, 0, 0.7071067812], [-1, 0, 0.5])}
    path = tmp_path / "poses.txt"
    write_poses(path, poses)
    assert path.read_text() == GOLDEN_POSES.split("\n", 1)[1]  # pose lines only, no header (hloc)
    old = tmp_path / "old_poses.txt"
    old.write_text(GOLDEN_POSES)
    assert list(read_poses(old)) == list(poses)
    back = read_poses(path)
    assert list(back) == list(poses)
    assert all(back[k].allclose(poses[k]) for k in poses)


def test_pairs_golden_round_trip(tmp_path: Path):
    pairs = {"q/rear/1.jpg": ["db/rear/5.jpg", "db/rear/4.jpg"], "q/rear/2.jpg": ["db/rear/1.jpg"]}
    path = tmp_path / "pairs.txt"
    write_pairs(path, pairs)
    assert path.read_text() == "q/rear/1.jpg db/rear/5.jpg\nq/rear/1.jpg db/rear/4.jpg\nq/rear/2.jpg db/rear/1.jpg\n"
    assert read_pairs(path) == pairs


def test_malformed_pose_line_names_file_and_line(tmp_path: Path):
    path = tmp_path / "poses.txt"
    path.write_text("a.jpg 1 0 0 0 1 2 3\nb.jpg 1 0 0 0 1 2\n")
    with pytest.raises(FormatError, match=r"poses.txt:2: expected 8 tokens"):
        read_poses(path)


def test_duplicate_pose_names_rejected(tmp_path: Path):
    path = tmp_path / "poses.txt"
    path.write_text("a.jpg 1 0 0 0 1 2 3\na.jpg 1 0 0 0 1 2 3\n")
    with pytest.raises(FormatError, match=":2: expected each image once"):
        read_poses(path)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="abc/._0123456789", min_size=1, max_size=20),
       st.floats(-360, 360), st.lists(st.floats(-1e4, 1e4), min_size=3, max_size=3))
def test_pose_line_parse_inverts_format(name, yaw, centre):
    from mduit_loc.poses import format_pose

    pose = yaw_pose(yaw, centre)
    parsed_name, parsed = parse_pose_line(f"{name} {format_pose(pose)}")
    assert parsed_name == name
    assert parsed.allclose(pose, atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=0, max_size=60))
def test_pose_line_parser_never_crashes_unexpectedly(line):
    try:
        parse_pose_line(line)
    except FormatError:
        pass


# --- issue 12: BOM, bad bytes, non-finite numbers, duplicates ------------------------------
def test_bom_and_crlf_keep_the_first_pose(tmp_path: Path):
    """A BOM once made 'eval' drop the first pose and 'submit' see the condition '\\ufeffdawn'."""
    path = tmp_path / "poses.txt"
    path.write_bytes(b"\xef\xbb\xbf" + GOLDEN_POSES.replace("\n", "\r\n").encode())
    poses = read_poses(path)
    assert list(poses) == ["night/rear/1.jpg", "sun/left/2.jpg"]
    path.write_bytes(b"\xef\xbb\xbfdawn/rear/1.jpg 1 0 0 0 1 2 3\n")
    assert list(read_poses(path)) == ["dawn/rear/1.jpg"]


def test_non_utf8_pose_file_names_file_and_line(tmp_path: Path):
    path = tmp_path / "poses.txt"
    path.write_bytes(b"a.jpg 1 0 0 0 1 2 3\nb\xe9.jpg 1 0 0 0 1 2 3\n")
    with pytest.raises(FormatError, match=r"poses.txt:2: expected UTF-8 text") as info:
        read_poses(path)
    assert info.value.path == path and info.value.line == 2


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400", "1e300"])
def test_non_finite_or_huge_pose_numbers_name_file_and_line(tmp_path: Path, value):
    path = tmp_path / "poses.txt"
    path.write_text(f"a.jpg 1 0 0 0 1 2 3\nb.jpg 1 0 0 0 1 {value} 3\n")
    with pytest.raises(FormatError, match=r"poses.txt:2: expected 7 numbers after the image name \(") as info:
        read_poses(path)
    assert info.value.line == 2


def test_duplicate_names_say_where_the_first_one_is(tmp_path: Path):
    from mduit_loc.pose_files import read_pose_entries

    path = tmp_path / "poses.txt"
    path.write_text("# header\na.jpg 1 0 0 0 1 2 3\nb.jpg 1 0 0 0 1 2 3\na.jpg 1 0 0 0 1 2 3\n")
    with pytest.raises(FormatError, match=r"poses.txt:4: expected each image once, but 'a.jpg' already appears "
                                          r"on line 2"):
        read_poses(path)
    path.write_text("# header\na.jpg 1 0 0 0 1 2 3\nb.jpg 1 0 0 0 1 2 3\n")
    assert [(n, name) for n, name, _ in read_pose_entries(path)] == [(2, "a.jpg"), (3, "b.jpg")]


def test_wrong_token_counts_in_pairs_name_file_and_line(tmp_path: Path):
    path = tmp_path / "pairs.txt"
    path.write_bytes(b"\xef\xbb\xbfq.jpg d.jpg\r\nq.jpg d2.jpg extra\r\n")
    with pytest.raises(FormatError, match=r"pairs.txt:2: expected 2 tokens"):
        read_pairs(path)


def test_duplicated_pair_is_refused(tmp_path: Path):
    path = tmp_path / "pairs.txt"
    path.write_text("q.jpg d.jpg\nq.jpg e.jpg\nq.jpg d.jpg\n")
    with pytest.raises(FormatError, match=r"pairs.txt:3: expected each pair once, but it already appears on line 1"):
        read_pairs(path)


def test_pose_names_with_whitespace_are_refused_on_writing(tmp_path: Path):
    from mduit_loc.errors import MduitError

    with pytest.raises(MduitError, match="whitespace"):
        write_poses(tmp_path / "poses.txt", {"my photo.jpg": Pose.from_qvec([1, 0, 0, 0], [0, 0, 0])})

"""The aligned set reader (issue 10 item 1): golden list file, the per-pose structure, errors that
name the file and the line."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mduit_loc.datasets.aligned import (
    ALIGNED_DIR,
    ALIGNED_LIST,
    has_aligned_set,
    read_aligned_set,
    write_aligned_list,
)
from mduit_loc.datasets.images import save_image
from mduit_loc.errors import DataNotFoundError, FormatError, MduitError

GOLDEN = Path(__file__).parent / "data" / "golden" / "aligned.txt"
NAMES = ["overcast-reference/rear/100.jpg", "night/rear/100.jpg", "snow/rear/100.jpg",
         "overcast-reference/left/200.jpg", "night/left/200.jpg", "snow/left/200.jpg"]


@pytest.fixture()
def aligned_root(tmp_path: Path) -> Path:
    for k, name in enumerate(NAMES):
        save_image(tmp_path / ALIGNED_DIR / name, np.full((4, 4, 3), k, np.uint8))
    write_aligned_list(tmp_path, NAMES)
    return tmp_path


def _rewrite_list(root: Path, lines: list[str]) -> Path:
    path = root / ALIGNED_DIR / ALIGNED_LIST
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def test_writer_matches_the_golden_file_and_the_reader_groups_images_by_pose(aligned_root):
    assert (aligned_root / ALIGNED_DIR / ALIGNED_LIST).read_text() == GOLDEN.read_text()
    for root in (aligned_root, aligned_root / ALIGNED_DIR):  # the dataset root or the aligned/ folder itself
        aligned = read_aligned_set(root)
        assert aligned.folder == aligned_root / ALIGNED_DIR
        assert aligned.conditions == ("overcast-reference", "night", "snow")
        assert [(p.camera, p.timestamp, p.database_name) for p in aligned.poses] == [
            ("rear", "100", "overcast-reference/rear/100.jpg"), ("left", "200", "overcast-reference/left/200.jpg")]
        assert aligned.poses[1].images == {c: aligned_root / ALIGNED_DIR / c / "left" / "200.jpg"
                                           for c in aligned.conditions}
    folder = aligned_root / ALIGNED_DIR
    assert aligned.pairs("night", "overcast-reference") == [
        (folder / "night/rear/100.jpg", folder / "overcast-reference/rear/100.jpg"),
        (folder / "night/left/200.jpg", folder / "overcast-reference/left/200.jpg")]
    with pytest.raises(MduitError, match="has no condition 'sun'; it has overcast-reference, night, snow"):
        aligned.pairs("sun", "night")


def test_a_missing_aligned_set_says_where_it_comes_from(tmp_path):
    assert not has_aligned_set(tmp_path)
    with pytest.raises(DataNotFoundError, match=r"aligned set not found: .*aligned\.txt \('mduit-loc synth' writes"):
        read_aligned_set(tmp_path)


@pytest.mark.parametrize("lines, line, expected", [
    (["night/rear/100.jpg", "fog/rear/100.jpg"], 2, "unknown condition 'fog'"),
    (["night/rear/100.jpg", "rear/100.jpg"], 2, "expected '<condition>/<camera>/<timestamp>.jpg'"),
    (["night/rear/100.jpg", "night/rear/100.jpg"], 2, "each image once, but it already appears on line 1"),
    (["night/rear/100.jpg", "night/rear/100.jpg extra"], 2, "expected '<condition>/<camera>/<timestamp>.jpg'"),
    (["snow/rear/100.jpg", "night/rear/100.jpg", "night/left/200.jpg"], 3,
     "every pose under the same conditions as the first \\(night, snow\\), got 'left/200 differs in snow'"),
])
def test_malformed_lists_name_the_file_and_the_line(aligned_root, lines, line, expected):
    path = _rewrite_list(aligned_root, lines)
    with pytest.raises(FormatError, match=expected) as info:
        read_aligned_set(aligned_root)
    assert info.value.path == path and info.value.line == line
    assert str(info.value).startswith(f"{path}:{line}: ")


def test_a_missing_image_names_the_image_and_the_line_that_lists_it(aligned_root):
    (aligned_root / ALIGNED_DIR / "snow" / "left" / "200.jpg").unlink()
    with pytest.raises(DataNotFoundError) as info:
        read_aligned_set(aligned_root)
    assert str(info.value) == (f"aligned image not found: {aligned_root / ALIGNED_DIR / 'snow/left/200.jpg'} "
                               f"(listed on line 6 of {aligned_root / ALIGNED_DIR / ALIGNED_LIST})")


def test_an_empty_list_is_an_error(aligned_root):
    path = _rewrite_list(aligned_root, ["# nothing"])
    with pytest.raises(FormatError, match="expected at least one line") as info:
        read_aligned_set(aligned_root)
    assert info.value.path == path

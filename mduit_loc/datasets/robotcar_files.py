"""Line-level readers and writers for the RobotCar Seasons text files.

Every reader names the file and the line of a problem; every writer is atomic and is the
exact inverse of its reader (golden-file round trips in tests/datasets).

Files (relative to the dataset root):
- ``intrinsics/<camera>_intrinsics.txt``: ``fx <v>``, ``fy <v>``, ``cx <v>``, ``cy <v>``.
- ``extrinsics/<camera>_extrinsics.txt``: a comma-separated 4x4 ``[R c; 0 1]`` camera->car.
- ``robotcar_v2_train.txt``: ``<name> m00 ... m33``, camera->world row-major (rear camera).
- ``robotcar_v2_test.txt``: ``rear/<ts>.png`` per line.
- ``3D-models/individual/queries_per_location/queries_location_NNN.txt``: ``condition/camera/ts.jpg``.
- ``ground_truth/robotcar_v2_test_gt.txt`` (synthetic benchmark only): as the train file.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from mduit_loc.datasets.layout import CAMERAS, ImageName, canonical_name
from mduit_loc.errors import DataNotFoundError, FormatError
from mduit_loc.io_utils import atomic_open, parse_floats, read_text_lines
from mduit_loc.poses import Pose

TRAIN_FILE = "robotcar_v2_train.txt"
TEST_FILE = "robotcar_v2_test.txt"
TEST_GROUND_TRUTH_FILE = "ground_truth/robotcar_v2_test_gt.txt"
QUERY_LISTS_DIR = "3D-models/individual/queries_per_location"
LOCATION_MODELS_DIR = "3D-models/individual/colmap_reconstructions"
NVM_FILE = "3D-models/all-merged/all.nvm"
_QUERY_LIST_PATTERN = re.compile(r"queries_location_(\d+)\.txt$")


def _lines(path: Path, what: str) -> Iterator[tuple[int, str]]:
    """Non-empty, non-comment lines with their 1-based numbers (BOM, CRLF, bad bytes: see io_utils)."""
    return read_text_lines(path, what)


def _floats(tokens: list[str], path: Path, number: int | None, line: str, expected: str) -> list[float]:
    return parse_floats(tokens, path, number, expected, got=line)


def _fmt(value: float) -> str:
    return f"{float(value) + 0.0:.10g}"  # + 0.0 turns -0.0 into 0.0 (no "-0" in files)


# --- intrinsics ---------------------------------------------------------------------------
_INTRINSIC_KEYS = ("fx", "fy", "cx", "cy")


def read_intrinsics_file(path: str | Path) -> dict[str, float]:
    path = Path(path)
    values: dict[str, float] = {}
    for number, line in _lines(path, "intrinsics file"):
        tokens = line.split()
        if len(tokens) != 2 or tokens[0] not in _INTRINSIC_KEYS:
            raise FormatError(path, number, "'<fx|fy|cx|cy> <value>'", got=line)
        if tokens[0] in values:
            raise FormatError(path, number, f"{tokens[0]} once, but it appears again", got=line)
        (value,) = _floats(tokens[1:], path, number, line, f"a number after {tokens[0]}")
        values[tokens[0]] = value
    missing = [k for k in _INTRINSIC_KEYS if k not in values]
    if missing:
        raise FormatError(path, None, f"lines for {', '.join(_INTRINSIC_KEYS)}; missing {', '.join(missing)}")
    return values


def write_intrinsics_file(path: str | Path, fx: float, fy: float, cx: float, cy: float) -> None:
    with atomic_open(path, "w", encoding="utf-8") as handle:
        for key, value in zip(_INTRINSIC_KEYS, (fx, fy, cx, cy)):
            handle.write(f"{key} {_fmt(value)}\n")


# --- extrinsics ---------------------------------------------------------------------------
def read_extrinsics_file(path: str | Path) -> np.ndarray:
    """The 4x4 car_from_cam matrix ``[R c; 0 1]``."""
    path = Path(path)
    rows = []
    for number, line in _lines(path, "extrinsics file"):
        tokens = [t for t in re.split(r"[,\s]+", line) if t]
        if len(tokens) != 4:
            raise FormatError(path, number, "4 comma-separated numbers per row", got=line)
        rows.append(_floats(tokens, path, number, line, "4 comma-separated numbers"))
    if len(rows) != 4:
        raise FormatError(path, None, "a 4x4 matrix (4 rows)", got=f"{len(rows)} rows")
    matrix = np.array(rows)
    try:
        Pose.from_world_from_cam_matrix(matrix)  # validates rotation and last row
    except ValueError as err:
        raise FormatError(path, None, "a rigid transform [R c; 0 1]", got=str(err)) from None
    return matrix


def write_extrinsics_file(path: str | Path, car_from_cam: np.ndarray) -> None:
    with atomic_open(path, "w", encoding="utf-8") as handle:
        for row in np.asarray(car_from_cam, dtype=np.float64):
            handle.write(",".join(_fmt(v) for v in row) + "\n")


# --- pose lists (train file, test ground truth) -------------------------------------------
def parse_pose_matrix_line(line: str, path: Path | str = "<string>", number: int | None = None) -> tuple[str, Pose]:
    """``<name> m00 ... m33`` (camera->world, row-major) -> (name as written, cam_from_world)."""
    tokens = line.split()
    if len(tokens) != 17:
        raise FormatError(path, number, "17 tokens '<name> m00 ... m33'", got=line)
    values = _floats(tokens[1:], Path(path), number, line, "16 numbers after the image name")
    try:
        pose = Pose.from_world_from_cam_matrix(np.array(values).reshape(4, 4))
    except ValueError as err:
        raise FormatError(path, number, "a rigid camera-to-world matrix", got=str(err)) from None
    return tokens[0], pose


def read_pose_matrix_file(path: str | Path, what: str = "pose list") -> list[tuple[int, str, Pose]]:
    path = Path(path)
    entries: list[tuple[int, str, Pose]] = []
    seen: dict[str, int] = {}
    for number, line in _lines(path, what):
        name, pose = parse_pose_matrix_line(line, path, number)
        key = canonical_name(name)
        if key in seen:
            raise FormatError(path, number, f"each image once, but {name!r} already appears on line {seen[key]}")
        seen[key] = number
        entries.append((number, name, pose))
    return entries


def write_pose_matrix_file(path: str | Path, entries: Iterable[tuple[str, Pose]]) -> None:
    with atomic_open(path, "w", encoding="utf-8") as handle:
        for name, pose in entries:
            values = pose.world_from_cam_matrix().reshape(-1)
            handle.write(name + " " + " ".join(_fmt(v) for v in values) + "\n")


# --- name lists (test file, per-location query lists) -------------------------------------
def read_name_list(path: str | Path, what: str, require_condition: bool) -> list[tuple[int, str]]:
    path = Path(path)
    names: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for number, line in _lines(path, what):
        if len(line.split()) != 1:
            raise FormatError(path, number, "one image name per line", got=line)
        try:
            parsed = ImageName.parse(line)
        except ValueError as err:
            raise FormatError(path, number, "an image name 'condition/camera/timestamp.jpg'", got=str(err)) from None
        if require_condition and parsed.condition is None:
            raise FormatError(path, number, "'condition/camera/timestamp.jpg' (with a condition)", got=line)
        key = canonical_name(line)
        if key in seen:
            raise FormatError(path, number, f"each image once, but {line!r} already appears on line {seen[key]}")
        seen[key] = number
        names.append((number, line))
    return names


def write_name_list(path: str | Path, names: Iterable[str]) -> None:
    with atomic_open(path, "w", encoding="utf-8") as handle:
        for name in names:
            handle.write(f"{name}\n")


def query_list_path(root: str | Path, location: int) -> Path:
    return Path(root) / QUERY_LISTS_DIR / f"queries_location_{location:03d}.txt"


def location_model_dir(root: str | Path, location: int) -> Path:
    return Path(root) / LOCATION_MODELS_DIR / f"{location:03d}_aligned"


def read_query_lists(root: str | Path) -> dict[int, list[str]]:
    """location -> canonical query names, from ``queries_per_location``."""
    folder = Path(root) / QUERY_LISTS_DIR
    if not folder.is_dir():
        return {}
    lists: dict[int, list[str]] = {}
    for path in sorted(folder.glob("queries_location_*.txt")):
        match = _QUERY_LIST_PATTERN.search(path.name)
        if match:
            names = read_name_list(path, "per-location query list", require_condition=True)
            lists[int(match.group(1))] = [canonical_name(n) for _, n in names]
    return lists


def read_test_ground_truth(root: str | Path) -> dict[str, Pose]:
    """The synthetic benchmark's test-split ground truth: canonical name -> cam_from_world."""
    path = Path(root) / TEST_GROUND_TRUTH_FILE
    if not path.is_file():
        raise DataNotFoundError(
            path, "test ground truth",
            "only the synthetic benchmark ships it; for the real RobotCar Seasons test split, "
            "write a submission with 'mduit-loc submit' and upload it to the benchmark server")
    return {canonical_name(name): pose for _, name, pose in read_pose_matrix_file(path, "test ground truth")}


def camera_of(name: str) -> str:
    camera = ImageName.parse(name).camera
    assert camera in CAMERAS
    return camera

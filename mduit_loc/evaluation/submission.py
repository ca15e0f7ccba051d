"""RobotCar Seasons benchmark submission files.

One line per query: ``rear/<timestamp>.jpg qw qx qy qz tx ty tz`` with the world->camera
(cam_from_world) pose; the camera folder prefixes the name and the condition is left out (the
server matches by camera and timestamp; a missing camera prefix scores zero). v2 test names end in
``.png`` (``v2=True``). The server scores the rear camera only, so only rear queries are written
unless other cameras are asked for. Lines are sorted by name.

Which queries must be present: the dataset's test list (``robotcar_v2_test.txt`` through the
dataset, left/right frames sharing the rear image's split) when a dataset is given, else the poses
file's own queries. A missing query is refused with its count unless ``allow_missing``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from mduit_loc.datasets import open_dataset
from mduit_loc.datasets.layout import CAMERAS, ImageName
from mduit_loc.datasets.robotcar_files import TEST_FILE
from mduit_loc.errors import MduitError
from mduit_loc.io_utils import atomic_open
from mduit_loc.pose_files import read_pose_entries
from mduit_loc.poses import Pose, submission_line

DEFAULT_CAMERAS = ("rear",)


@dataclass
class Submission:
    lines: list[str]
    missing: list[str] = field(default_factory=list)     # required queries without a pose (submission names)
    skipped: list[str] = field(default_factory=list)     # poses not written (other cameras / not required)


def parse_cameras(text: str) -> tuple[str, ...]:
    """``rear`` (default), ``all``, or a comma-separated list of cameras."""
    if text.strip() == "all":
        return CAMERAS
    cameras = tuple(c.strip() for c in text.split(",") if c.strip())
    unknown = [c for c in cameras if c not in CAMERAS]
    if not cameras or unknown:
        raise MduitError(f"--cameras: expected 'all' or a comma-separated list of {', '.join(CAMERAS)}, got {text!r}")
    return cameras


def _frame_key(name: str, what: str) -> tuple[str, str]:
    try:
        parsed = ImageName.parse(name)
    except ValueError as err:
        raise MduitError(f"{what}: {err}") from None
    return parsed.camera, parsed.timestamp


def submission_name(name: str, v2: bool = False) -> str:
    """``night/rear/123.jpg`` -> ``rear/123.jpg`` (``rear/123.png`` with ``v2``)."""
    camera, timestamp = _frame_key(name, "image name")
    return f"{camera}/{timestamp}.{'png' if v2 else 'jpg'}"


def read_submission_poses(path: str | Path) -> dict[str, Pose]:
    """A poses file whose names are RobotCar Seasons image names; a bad name, or two lines for one camera
    and timestamp, is an error naming the file and the line."""
    path = Path(path)
    poses: dict[str, Pose] = {}
    frames: dict[tuple[str, str], int] = {}
    for number, name, pose in read_pose_entries(path):
        try:
            parsed = ImageName.parse(name)
        except ValueError as err:
            raise MduitError(f"{path}:{number}: {err}") from None
        key = (parsed.camera, parsed.timestamp)
        if key in frames:
            raise MduitError(f"{path}:{number}: {name!r} is the same camera and timestamp as line {frames[key]}")
        frames[key], poses[name] = number, pose
    return poses


def _poses_by_frame(poses: Mapping[str, Pose]) -> dict[tuple[str, str], Pose]:
    by_frame: dict[tuple[str, str], Pose] = {}
    written: dict[tuple[str, str], str] = {}
    for name, pose in poses.items():
        key = _frame_key(name, "poses file")
        if key in by_frame:
            raise MduitError(f"the poses name the same camera and timestamp twice: {written[key]!r} and {name!r}")
        by_frame[key], written[key] = pose, name
    return by_frame


def build_submission(poses: Mapping[str, Pose], required: Sequence[str] | None = None,
                     cameras: Sequence[str] = DEFAULT_CAMERAS, v2: bool = False) -> Submission:
    """Lines for the queries of ``cameras`` among ``required`` (default: the poses' own queries)."""
    by_frame = _poses_by_frame(poses)
    wanted = set(cameras)
    if required is None:
        keys = sorted(key for key in by_frame if key[0] in wanted)
    else:
        keys = sorted({_frame_key(name, "required query") for name in required})
        keys = [key for key in keys if key[0] in wanted]
    lines, missing = [], []
    for camera, timestamp in keys:
        name = f"{camera}/{timestamp}.{'png' if v2 else 'jpg'}"
        pose = by_frame.get((camera, timestamp))
        if pose is None:
            missing.append(name)
        else:
            lines.append(submission_line(name, pose))
    chosen = set(keys)
    skipped = sorted(f"{c}/{t}" for c, t in by_frame if (c, t) not in chosen)
    return Submission(sorted(lines), missing, skipped)


def check_complete(submission: Submission, poses_path: str | Path, cameras: Sequence[str]) -> None:
    """Refuse a submission with missing queries (the server would score them as failures)."""
    if submission.missing:
        total = len(submission.missing) + len(submission.lines)
        shown = ", ".join(submission.missing[:3]) + (", ..." if len(submission.missing) > 3 else "")
        raise MduitError(f"{len(submission.missing)} of {total} {'/'.join(cameras)} test queries have no pose in "
                         f"{poses_path} (e.g. {shown}); pass --allow-missing to write the file anyway "
                         "(missing queries count as failures on the server)")


def write_submission(path: str | Path, submission: Submission) -> Path:
    if not submission.lines:
        raise MduitError("the submission would be empty: no pose for any of the chosen queries")
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.writelines(line + "\n" for line in submission.lines)
    return Path(path)


def required_test_queries(data: str | Path) -> list[str]:
    """Canonical names of the dataset's test-split queries (robotcar_v2_test.txt, all cameras)."""
    dataset = open_dataset(data)
    names = [q.name for q in dataset.queries if q.split == "test"]
    if not names:
        raise MduitError(f"{data}: the dataset has no test queries ({TEST_FILE} missing or empty); "
                         "leave out --data to submit the poses file's own queries")
    return names

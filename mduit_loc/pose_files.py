"""Text files that connect the stages (hloc-compatible).

- poses: ``name qw qx qy qz tx ty tz`` per line, cam_from_world (COLMAP convention);
- pairs: ``query_name db_name`` per line, ranked best first within each query.
Lines starting with ``#`` and blank lines are ignored on reading.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

from mduit_loc.errors import DataNotFoundError, FormatError, MduitError
from mduit_loc.io_utils import atomic_open
from mduit_loc.poses import Pose, format_pose


def _content_lines(path: Path) -> Iterable[tuple[int, str]]:
    if not path.is_file():
        raise DataNotFoundError(path, "file")
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            stripped = line.strip()
            if stripped and not stripped.startswith("#"):
                yield number, stripped


def parse_pose_line(line: str, path: Path | str = "<string>", number: int | None = None) -> tuple[str, Pose]:
    tokens = line.split()
    if len(tokens) != 8:
        raise FormatError(path, number, "8 tokens 'name qw qx qy qz tx ty tz'", got=line)
    try:
        values = [float(v) for v in tokens[1:]]
    except ValueError:
        raise FormatError(path, number, "7 numbers after the image name", got=line) from None
    try:
        return tokens[0], Pose.from_qvec(values[:4], values[4:])
    except ValueError as err:
        raise FormatError(path, number, "a valid quaternion and translation", got=str(err)) from None


def read_poses(path: str | Path) -> dict[str, Pose]:
    path = Path(path)
    poses: dict[str, Pose] = {}
    for number, line in _content_lines(path):
        name, pose = parse_pose_line(line, path, number)
        if name in poses:
            raise FormatError(path, number, f"each image once, but {name!r} appears again")
        poses[name] = pose
    return poses


def write_poses(path: str | Path, poses: Mapping[str, Pose], header: str | None = None) -> None:
    with atomic_open(path, "w", encoding="utf-8") as handle:
        if header:
            for line in header.splitlines():
                handle.write(f"# {line}\n")
        for name, pose in poses.items():
            handle.write(f"{name} {format_pose(pose)}\n")


def read_pairs(path: str | Path) -> dict[str, list[str]]:
    path = Path(path)
    pairs: dict[str, list[str]] = {}
    for number, line in _content_lines(path):
        tokens = line.split()
        if len(tokens) != 2:
            raise FormatError(path, number, "2 tokens 'query_name db_name'", got=line)
        pairs.setdefault(tokens[0], []).append(tokens[1])
    return pairs


def write_pairs(path: str | Path, pairs: Mapping[str, Iterable[str]]) -> None:
    with atomic_open(path, "w", encoding="utf-8") as handle:
        for query, ranked in pairs.items():
            for db_name in ranked:
                if " " in query or " " in db_name:
                    raise MduitError(f"image names with spaces cannot be written to a pairs file: {query!r}, {db_name!r}")
                handle.write(f"{query} {db_name}\n")

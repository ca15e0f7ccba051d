"""Text files that connect the stages (hloc-compatible).

- poses: ``name qw qx qy qz tx ty tz`` per line, cam_from_world (COLMAP convention);
- pairs: ``query_name db_name`` per line, ranked best first within each query.
Written files hold data lines only: hloc's readers split every line into a name and numbers, so a
``#`` header line breaks them (metadata goes into ``summary.json`` next to the file). On reading,
lines starting with ``#`` and blank lines are still ignored, so files written with a header by
older versions (and hand-edited ones) stay readable.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping

from mduit_loc.errors import FormatError, MduitError
from mduit_loc.io_utils import atomic_open, parse_floats, read_text_lines
from mduit_loc.poses import Pose, format_pose


def parse_pose_line(line: str, path: Path | str = "<string>", number: int | None = None) -> tuple[str, Pose]:
    tokens = line.split()
    if len(tokens) != 8:
        raise FormatError(path, number, "8 tokens 'name qw qx qy qz tx ty tz'", got=line)
    values = parse_floats(tokens[1:], path, number, "7 numbers after the image name", got=line)
    try:
        return tokens[0], Pose.from_qvec(values[:4], values[4:])
    except ValueError as err:
        raise FormatError(path, number, "a valid quaternion and translation", got=str(err)) from None


def read_pose_entries(path: str | Path) -> list[tuple[int, str, Pose]]:
    """(line number, name, cam_from_world) per pose, in file order; each name once."""
    path = Path(path)
    entries: list[tuple[int, str, Pose]] = []
    seen: dict[str, int] = {}
    for number, line in read_text_lines(path, "poses file"):
        name, pose = parse_pose_line(line, path, number)
        if name in seen:
            raise FormatError(path, number, f"each image once, but {name!r} already appears on line {seen[name]}")
        seen[name] = number
        entries.append((number, name, pose))
    return entries


def read_poses(path: str | Path) -> dict[str, Pose]:
    return {name: pose for _, name, pose in read_pose_entries(path)}


def write_poses(path: str | Path, poses: Mapping[str, Pose]) -> None:
    """One ``name qw qx qy qz tx ty tz`` line per pose, nothing else (hloc reads no header)."""
    for name in poses:
        if not name or any(c.isspace() for c in name):  # a reader splitting on whitespace would misparse it
            raise MduitError(f"image names with whitespace cannot be written to a poses file: {name!r}")
    with atomic_open(path, "w", encoding="utf-8") as handle:
        for name, pose in poses.items():
            handle.write(f"{name} {format_pose(pose)}\n")


def read_pairs(path: str | Path) -> dict[str, list[str]]:
    path = Path(path)
    pairs: dict[str, list[str]] = {}
    seen: dict[tuple[str, str], int] = {}
    for number, line in read_text_lines(path, "pairs file"):
        tokens = line.split()
        if len(tokens) != 2:
            raise FormatError(path, number, "2 tokens 'query_name db_name'", got=line)
        pair = (tokens[0], tokens[1])
        if pair in seen:
            raise FormatError(path, number, f"each pair once, but it already appears on line {seen[pair]}", got=line)
        seen[pair] = number
        pairs.setdefault(tokens[0], []).append(tokens[1])
    return pairs


def write_pairs(path: str | Path, pairs: Mapping[str, Iterable[str]]) -> None:
    with atomic_open(path, "w", encoding="utf-8") as handle:
        for query, ranked in pairs.items():
            for db_name in ranked:
                if " " in query or " " in db_name:
                    raise MduitError(f"image names with spaces cannot be written to a pairs file: "
                                     f"{query!r}, {db_name!r}")
                handle.write(f"{query} {db_name}\n")


def unwritable_name(name: str) -> bool:
    """A name the pairs and poses formats cannot carry: empty, with whitespace (their separator), or
    starting with ``#`` (a comment on reading)."""
    return not name or name.startswith("#") or any(c.isspace() for c in name)


def check_token_names(names: Iterable[str], what: str, where: str = "") -> None:
    """Refuse, before any work is done, names that pairs/poses files cannot hold; lists the first few."""
    bad = [name for name in names if unwritable_name(name)]
    if bad:
        shown = ", ".join(repr(name) for name in bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise MduitError(f"{where}{len(bad)} {what} name(s) cannot be written to the hloc pairs and poses files "
                         f"(whitespace separates their fields, '#' starts a comment): {shown}; rename these files")

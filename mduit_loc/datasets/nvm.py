"""NVM_V3 (VisualSFM) models, as ``3D-models/all-merged/all.nvm`` in RobotCar Seasons.

Camera line: ``<name> <focal> <qw qx qy qz> <cx cy cz> <radial> 0`` with the world->camera
quaternion and the camera *centre*. Point line: ``x y z r g b <n> (<image> <feature> <u> <v>)*n``
with measurements relative to the image centre.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Generator, Iterator

import numpy as np

from mduit_loc.errors import DataNotFoundError, FormatError
from mduit_loc.io_utils import MAX_ABS_VALUE, atomic_open, parse_floats, parse_int, read_text_lines
from mduit_loc.poses import Pose


@dataclass(frozen=True)
class NvmCamera:
    name: str           # as written in the file, e.g. ./overcast-reference/rear/123.png
    focal: float
    pose: Pose          # cam_from_world
    radial: float = 0.0


@dataclass
class NvmPoints:
    xyz: np.ndarray                     # (N, 3) float64
    rgb: np.ndarray                     # (N, 3) uint8
    # observations per point: (image index, feature index, u, v), u/v relative to the image centre
    observations: list[np.ndarray] = field(default_factory=list)


@dataclass
class NvmModel:
    cameras: list[NvmCamera]
    points: NvmPoints | None


class _LineReader:
    """Yields (number, tokens, line) of non-empty lines; keeps the path for errors."""

    def __init__(self, path: Path):
        self.path = path
        self._iter: Generator[tuple[int, str], None, None] = read_text_lines(path, "NVM model", comments=False)

    def __enter__(self) -> "_LineReader":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._iter.close()  # closes the file when reading stops early

    def next(self, expected: str) -> tuple[int, list[str], str]:
        for number, line in self._iter:
            return number, line.split(), line
        raise FormatError(self.path, None, f"{expected}, but the file ended")

    def next_or_none(self) -> tuple[int, list[str], str] | None:
        for number, line in self._iter:
            return number, line.split(), line
        return None


_CAMERA_LINE = "'<name> <focal> <qw qx qy qz> <cx cy cz> <radial> 0' (11 tokens)"
_POINT_LINE = "'x y z r g b n (image feature u v)*n'"


def _count_of(path: Path, number: int, tokens: list[str], line: str, what: str) -> int:
    expected = f"the number of {what} (one non-negative integer)"
    if len(tokens) != 1 or not tokens[0].isascii() or not tokens[0].isdigit():
        raise FormatError(path, number, expected, got=line)
    return parse_int(tokens[0], path, number, expected, got=line, minimum=0)


def _count(reader: _LineReader, what: str) -> int:
    number, tokens, line = reader.next(f"the number of {what}")
    return _count_of(reader.path, number, tokens, line, what)


def _check_header(path: Path, number: int, tokens: list[str], line: str) -> None:
    if tokens[0] == "NVM_V3_R9T":
        raise FormatError(path, number, "the header 'NVM_V3' (rotation-matrix NVM_V3_R9T files are not supported)",
                          got=line)
    if tokens[0] != "NVM_V3":
        raise FormatError(path, number, "the header 'NVM_V3'", got=line)
    if len(tokens) > 1:  # NVM_V3 FixedK fx cx fy cy [r]: the optional shared calibration
        if tokens[1] != "FixedK" or len(tokens) not in (6, 7):
            raise FormatError(path, number, "the header 'NVM_V3' or 'NVM_V3 FixedK fx cx fy cy r'", got=line)
        parse_floats(tokens[2:], path, number, "numbers after FixedK", got=line)


def _parse_camera(tokens: list[str], path: Path, number: int, line: str) -> NvmCamera:
    if len(tokens) != 11:
        raise FormatError(path, number, _CAMERA_LINE, got=line)
    values = parse_floats(tokens[1:10], path, number, "9 numbers after the camera name", got=line)
    parse_floats(tokens[10:], path, number, "a number (0) as the last token of a camera line", got=line)
    if values[0] <= 0:
        raise FormatError(path, number, "a positive focal length after the camera name", got=line)
    try:
        pose = Pose.from_qvec_center(values[1:5], values[5:8])
    except ValueError as err:
        raise FormatError(path, number, "a valid quaternion and camera centre", got=str(err)) from None
    return NvmCamera(tokens[0], values[0], pose, values[8])


def _parse_point(tokens: list[str], path: Path, number: int, line: str,
                 n_cameras: int) -> tuple[list[float], list[int], np.ndarray]:
    """A point line; the fast path checks everything, ``_point_error`` says what is wrong."""
    try:
        xyz = [float(tokens[0]), float(tokens[1]), float(tokens[2])]
        rgb = [int(tokens[3]), int(tokens[4]), int(tokens[5])]
        n_obs = int(tokens[6])
        measurements = [float(token) for token in tokens[7:]]
    except (ValueError, IndexError):
        raise _point_error(tokens, path, number, line, n_cameras) from None
    if not (len(tokens) == 7 + 4 * n_obs and all(0 <= c <= 255 for c in rgb)
            and all(-MAX_ABS_VALUE <= v <= MAX_ABS_VALUE for v in xyz)  # NaN fails too
            and all(-MAX_ABS_VALUE <= v <= MAX_ABS_VALUE for v in measurements)
            and all(v.is_integer() and 0 <= v < n_cameras for v in measurements[0::4])
            and all(v.is_integer() and v >= 0 for v in measurements[1::4])):
        raise _point_error(tokens, path, number, line, n_cameras)
    return xyz, rgb, np.array(measurements, dtype=np.float64).reshape(-1, 4)


def _point_error(tokens: list[str], path: Path, number: int, line: str, n_cameras: int) -> FormatError:
    def error(detail: str) -> FormatError:
        return FormatError(path, number, f"{_POINT_LINE} with {detail}", got=line)

    if len(tokens) < 7:
        return error("at least 7 tokens")
    try:
        parse_floats(tokens[:3], path, number, "x y z")
    except FormatError:
        return error(f"x y z finite numbers of magnitude at most {MAX_ABS_VALUE:g}")
    try:
        for value in tokens[3:6]:
            parse_int(value, path, number, "r g b", minimum=0, maximum=255)
    except FormatError:
        return error("r g b integers in [0, 255]")
    try:
        n_obs = parse_int(tokens[6], path, number, "n", minimum=0)
    except FormatError:
        return error("n a non-negative integer")
    if len(tokens) != 7 + 4 * n_obs:
        return error(f"{7 + 4 * n_obs} tokens for {n_obs} measurements")
    try:
        obs = np.array(tokens[7:], dtype=np.float64).reshape(-1, 4)
    except ValueError:
        return error("numbers in the measurements")
    if not np.all(np.abs(obs) <= MAX_ABS_VALUE):  # NaN fails too
        return error(f"finite measurements of magnitude at most {MAX_ABS_VALUE:g}")
    indices = obs[:, :2]
    if np.any(indices != np.floor(indices)) or obs[:, 1].min() < 0:
        return error("integer image indices and non-negative integer feature indices")
    if obs[:, 0].min() < 0 or obs[:, 0].max() >= n_cameras:
        return error(f"image indices in [0, {n_cameras})")
    return error("valid values")  # not reached: the fast path found a problem


def _read_cameras(reader: _LineReader) -> list[NvmCamera]:
    path = reader.path
    number, tokens, line = reader.next("the header NVM_V3")
    _check_header(path, number, tokens, line)
    n_cameras = _count(reader, "cameras")
    cameras: list[NvmCamera] = []
    seen: dict[str, int] = {}
    for _ in range(n_cameras):
        number, tokens, line = reader.next(f"{n_cameras} camera lines")
        camera = _parse_camera(tokens, path, number, line)
        key = camera.name.removeprefix("./")
        if key in seen:
            raise FormatError(path, number, f"each camera once, but {camera.name!r} already appears on line "
                              f"{seen[key]}")
        seen[key] = number
        cameras.append(camera)
    return cameras


def _end_of_section(reader: _LineReader, count: int, what: str, next_what: str) -> int | None:
    """The count on the line after a section of ``count`` lines (None at the end of the file).

    A line of the section itself there (a duplicated or extra line) is an error, not ignored.
    """
    following = reader.next_or_none()
    if following is None:
        return None
    number, tokens, line = following
    if len(tokens) != 1:
        raise FormatError(reader.path, number, f"{count} {what} then the number of {next_what} (one integer); "
                          f"the file has more {what} than it declares", got=line)
    return _count_of(reader.path, number, tokens, line, next_what)


def _iter_points(reader: _LineReader, n_cameras: int) -> Iterator[tuple[list[float], list[int], np.ndarray]]:
    """The points of the section after the cameras; nothing when the file ends after the cameras."""
    n_points = _end_of_section(reader, n_cameras, "camera lines", "points")
    if n_points is None:
        return
    for _ in range(n_points):
        number, tokens, line = reader.next(f"{n_points} point lines")
        yield _parse_point(tokens, reader.path, number, line, n_cameras)
    _end_of_section(reader, n_points, "point lines", "cameras of the next model")


def read_nvm(path: str | Path, with_points: bool = True) -> NvmModel:
    """The first model of an NVM_V3 file, validated line by line.

    Without ``with_points`` the point section is not parsed, but its count must follow the
    cameras (so a duplicated or extra camera line is an error either way).
    """
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(path, "NVM model", "expected 3D-models/all-merged/all.nvm")
    with _LineReader(path) as reader:
        cameras = _read_cameras(reader)
        if not with_points:
            _end_of_section(reader, len(cameras), "camera lines", "points")
            return NvmModel(cameras, None)
        xyz: list[list[float]] = []
        rgb: list[list[int]] = []
        observations: list[np.ndarray] = []
        for p, c, obs in _iter_points(reader, len(cameras)):
            xyz.append(p)
            rgb.append(c)
            observations.append(obs)
    points = NvmPoints(np.array(xyz, dtype=np.float64).reshape(-1, 3),
                       np.array(rgb, dtype=np.uint8).reshape(-1, 3), observations)
    return NvmModel(cameras, points)


@dataclass(frozen=True)
class NvmSummary:
    cameras: int
    points: int
    measurements: int


def validate_nvm(path: str | Path) -> NvmSummary:
    """Parse the whole first model, points included, without keeping it (for ``mduit-loc check``)."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(path, "NVM model", "expected 3D-models/all-merged/all.nvm")
    n_points = n_measurements = 0
    with _LineReader(path) as reader:
        n_cameras = len(_read_cameras(reader))
        for _, _, obs in _iter_points(reader, n_cameras):
            n_points += 1
            n_measurements += len(obs)
    return NvmSummary(n_cameras, n_points, n_measurements)


def write_nvm(path: str | Path, cameras: list[NvmCamera], points: NvmPoints | None = None) -> None:
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write("NVM_V3\n\n")
        handle.write(f"{len(cameras)}\n")
        for cam in cameras:
            q = " ".join(f"{v:.10g}" for v in cam.pose.qvec)
            c = " ".join(f"{v + 0.0:.10g}" for v in cam.pose.center)  # + 0.0: no "-0"
            handle.write(f"{cam.name} {cam.focal:.10g} {q} {c} {cam.radial:.10g} 0\n")
        if points is None:
            points = NvmPoints(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.uint8), [])
        handle.write(f"\n{len(points.xyz)}\n")
        for index in range(len(points.xyz)):
            x, y, z = points.xyz[index]
            r, g, b = (int(v) for v in points.rgb[index])
            obs = points.observations[index] if points.observations else np.zeros((0, 4))
            measurements = "".join(f" {int(o[0])} {int(o[1])} {o[2]:.6g} {o[3]:.6g}" for o in obs)
            handle.write(f"{x:.10g} {y:.10g} {z:.10g} {r} {g} {b} {len(obs)}{measurements}\n")
        handle.write("\n0\n")

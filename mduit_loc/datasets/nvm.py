"""NVM_V3 (VisualSFM) models, as ``3D-models/all-merged/all.nvm`` in RobotCar Seasons.

Camera line: ``<name> <focal> <qw qx qy qz> <cx cy cz> <radial> 0`` with the world->camera
quaternion and the camera *centre*. Point line: ``x y z r g b <n> (<image> <feature> <u> <v>)*n``
with measurements relative to the image centre.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, TextIO

import numpy as np

from mduit_loc.errors import DataNotFoundError, FormatError
from mduit_loc.io_utils import atomic_open
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
    """Yields (number, tokens) of non-empty lines; keeps the path for errors."""

    def __init__(self, handle: TextIO, path: Path):
        self.path = path
        self._iter: Iterator[tuple[int, str]] = ((n, line) for n, line in enumerate(handle, start=1))

    def next(self, expected: str) -> tuple[int, list[str], str]:
        for number, line in self._iter:
            if line.strip():
                return number, line.split(), line.strip()
        raise FormatError(self.path, None, f"{expected}, but the file ended")


def _count(reader: _LineReader, what: str) -> int:
    number, tokens, line = reader.next(f"the number of {what}")
    if len(tokens) != 1 or not tokens[0].isdigit():
        raise FormatError(reader.path, number, f"the number of {what} (one non-negative integer)", got=line)
    return int(tokens[0])


def _parse_camera(tokens: list[str], path: Path, number: int, line: str) -> NvmCamera:
    if len(tokens) not in (10, 11):
        raise FormatError(path, number, "'<name> <focal> <qw qx qy qz> <cx cy cz> <radial> 0' (11 tokens)", got=line)
    try:
        values = [float(v) for v in tokens[1:10]]
    except ValueError:
        raise FormatError(path, number, "9 numbers after the camera name", got=line) from None
    try:
        pose = Pose.from_qvec_center(values[1:5], values[5:8])
    except ValueError as err:
        raise FormatError(path, number, "a valid quaternion and camera centre", got=str(err)) from None
    return NvmCamera(tokens[0], values[0], pose, values[8])


def _parse_point(tokens: list[str], path: Path, number: int, line: str, n_cameras: int):
    try:
        xyz = [float(v) for v in tokens[:3]]
        rgb = [int(v) for v in tokens[3:6]]
        n_obs = int(tokens[6])
        obs = np.array(tokens[7:], dtype=np.float64).reshape(-1, 4) if n_obs else np.zeros((0, 4))
    except (ValueError, IndexError):
        raise FormatError(path, number, "'x y z r g b n (image feature u v)*n'", got=line) from None
    if len(tokens) != 7 + 4 * n_obs:
        raise FormatError(path, number, f"{7 + 4 * n_obs} tokens for {n_obs} measurements", got=line)
    if n_obs and (obs[:, 0].min() < 0 or obs[:, 0].max() >= n_cameras):
        raise FormatError(path, number, f"image indices in [0, {n_cameras})", got=line)
    return xyz, rgb, obs


def read_nvm(path: str | Path, with_points: bool = True) -> NvmModel:
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(path, "NVM model", "expected 3D-models/all-merged/all.nvm")
    with open(path, encoding="utf-8") as handle:
        reader = _LineReader(handle, path)
        number, tokens, line = reader.next("the header NVM_V3")
        if not tokens[0].startswith("NVM_V3"):
            raise FormatError(path, number, "the header 'NVM_V3'", got=line)
        n_cameras = _count(reader, "cameras")
        cameras = []
        for _ in range(n_cameras):
            number, tokens, line = reader.next("a camera line")
            cameras.append(_parse_camera(tokens, path, number, line))
        if not with_points:
            return NvmModel(cameras, None)
        try:
            n_points = _count(reader, "points")
        except FormatError as err:
            if "file ended" in str(err):
                return NvmModel(cameras, NvmPoints(np.zeros((0, 3)), np.zeros((0, 3), np.uint8)))
            raise
        xyz, rgb, observations = [], [], []
        for _ in range(n_points):
            number, tokens, line = reader.next("a point line")
            p, c, obs = _parse_point(tokens, path, number, line, n_cameras)
            xyz.append(p), rgb.append(c), observations.append(obs)
    points = NvmPoints(np.array(xyz, dtype=np.float64).reshape(-1, 3),
                       np.array(rgb, dtype=np.uint8).reshape(-1, 3), observations)
    return NvmModel(cameras, points)


def write_nvm(path: str | Path, cameras: list[NvmCamera], points: NvmPoints | None = None) -> None:
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write("NVM_V3\n\n")
        handle.write(f"{len(cameras)}\n")
        for cam in cameras:
            q = " ".join(f"{v:.10g}" for v in cam.pose.qvec)
            c = " ".join(f"{v + 0.0:.10g}" for v in cam.pose.center)  # + 0.0: no "-0"
            handle.write(f"{cam.name} {cam.focal:.10g} {q} {c} {cam.radial:.10g} 0\n")
        n_points = 0 if points is None else len(points.xyz)
        handle.write(f"\n{n_points}\n")
        for index in range(n_points):
            x, y, z = points.xyz[index]
            r, g, b = (int(v) for v in points.rgb[index])
            obs = points.observations[index] if points.observations else np.zeros((0, 4))
            measurements = "".join(f" {int(o[0])} {int(o[1])} {o[2]:.6g} {o[3]:.6g}" for o in obs)
            handle.write(f"{x:.10g} {y:.10g} {z:.10g} {r} {g} {b} {len(obs)}{measurements}\n")
        handle.write("\n0\n")

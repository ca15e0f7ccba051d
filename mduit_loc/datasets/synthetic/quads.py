"""Scene primitives: textured rectangles (quads) and their kinds.

A quad is ``origin + u * axis_u + v * axis_v`` for ``0 <= u <= width``, ``0 <= v <= height``;
its texture is a procedural function of (kind, param, u, v) evaluated by the shaders.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np


class Kind(IntEnum):
    GROUND = 0
    ROAD = 1
    PAVEMENT = 2
    KERB = 3
    FACADE = 4
    WALL = 5        # side and back walls of alleys
    POLE = 6
    LAMP = 7        # street lamp head (emissive at night)
    SIGN = 8        # traffic sign plate
    TREE = 9        # alpha-tested billboard: trunk, branches, foliage
    CAR = 10        # parked car body panel
    PEDESTRIAN = 11 # alpha-tested billboard


ALPHA_KINDS = (Kind.TREE, Kind.PEDESTRIAN)
GROUND_KINDS = (Kind.GROUND, Kind.ROAD, Kind.PAVEMENT)


@dataclass
class Quads:
    origin: np.ndarray   # (N, 3) float64
    axis_u: np.ndarray   # (N, 3) unit
    axis_v: np.ndarray   # (N, 3) unit, orthogonal to axis_u
    size: np.ndarray     # (N, 2) width (along u), height (along v) in metres
    kind: np.ndarray     # (N,) int16 Kind
    param: np.ndarray    # (N,) int64: facade index, street index, seed, ... (per kind)

    def __len__(self) -> int:
        return len(self.kind)

    @property
    def normal(self) -> np.ndarray:
        return np.cross(self.axis_u, self.axis_v)

    def corners(self) -> np.ndarray:
        """(N, 4, 3) corners."""
        u = self.axis_u * self.size[:, :1]
        v = self.axis_v * self.size[:, 1:]
        return np.stack([self.origin, self.origin + u, self.origin + u + v, self.origin + v], axis=1)

    def subset(self, index: np.ndarray) -> "Quads":
        return Quads(self.origin[index], self.axis_u[index], self.axis_v[index], self.size[index],
                     self.kind[index], self.param[index])

    @staticmethod
    def concat(parts: list["Quads"]) -> "Quads":
        parts = [p for p in parts if len(p)]
        if not parts:
            return QuadBuilder().build()
        return Quads(*(np.concatenate([getattr(p, f) for p in parts]) for f in
                       ("origin", "axis_u", "axis_v", "size", "kind", "param")))


class QuadBuilder:
    """Collects quads one by one (scene construction is not the hot path)."""

    def __init__(self):
        self._rows: list[tuple] = []

    def add(self, origin, axis_u, axis_v, width: float, height: float, kind: Kind, param: int = 0) -> None:
        axis_u = np.asarray(axis_u, np.float64)
        axis_v = np.asarray(axis_v, np.float64)
        self._rows.append((np.asarray(origin, np.float64), axis_u / np.linalg.norm(axis_u),
                           axis_v / np.linalg.norm(axis_v), (float(width), float(height)), int(kind), int(param)))

    def add_box(self, centre, forward, size, kind: Kind, param: int = 0) -> None:
        """Four sides and the top of an axis-aligned-in-heading box standing on the ground."""
        length, width, height = size
        forward = np.asarray(forward, np.float64) / np.linalg.norm(forward)
        left = np.array([-forward[1], forward[0], 0.0])
        up = np.array([0.0, 0.0, 1.0])
        base = np.asarray(centre, np.float64) - forward * length / 2 - left * width / 2
        self.add(base, forward, up, length, height, kind, param)
        self.add(base + left * width, forward, up, length, height, kind, param)
        self.add(base, left, up, width, height, kind, param)
        self.add(base + forward * length, left, up, width, height, kind, param)
        self.add(base + up * height, forward, left, length, width, kind, param)

    def build(self) -> Quads:
        if not self._rows:
            zeros3 = np.zeros((0, 3))
            return Quads(zeros3, zeros3, zeros3, np.zeros((0, 2)), np.zeros(0, np.int16), np.zeros(0, np.int64))
        origin, axis_u, axis_v, size, kind, param = zip(*self._rows)
        return Quads(np.stack(origin), np.stack(axis_u), np.stack(axis_v), np.array(size, np.float64),
                     np.array(kind, np.int16), np.array(param, np.int64))

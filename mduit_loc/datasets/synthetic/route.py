"""The route through the town: straight streets joined by 90-degree turns with rounded corners.

The car path is the street centreline offset laterally (UK: drive on the left); positions and
headings are interpolated from a dense sampling by arc length ``s``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CORNER_RADIUS = 9.0
_SAMPLE_STEP = 0.25


@dataclass(frozen=True)
class Route:
    waypoints: np.ndarray      # (M, 2) street corners, first and last are the route ends
    turns: np.ndarray          # (M,) +1 left, -1 right, 0 at the two ends
    path_s: np.ndarray         # (K,) arc length of the dense samples
    path_xy: np.ndarray        # (K, 2) centreline samples (rounded corners)
    path_heading: np.ndarray   # (K,) unwrapped heading (radians, 0 = +x, CCW)

    @property
    def length(self) -> float:
        return float(self.path_s[-1])

    @property
    def n_streets(self) -> int:
        return len(self.waypoints) - 1

    def street_direction(self, street: int) -> np.ndarray:
        delta = self.waypoints[street + 1] - self.waypoints[street]
        return delta / np.linalg.norm(delta)

    def pose_2d(self, s, lateral) -> tuple[np.ndarray, np.ndarray]:
        """Positions (N, 2) and headings (N,) at arc lengths ``s``, offset ``lateral`` to the left."""
        s = np.clip(np.asarray(s, np.float64), 0.0, self.length)
        x = np.interp(s, self.path_s, self.path_xy[:, 0])
        y = np.interp(s, self.path_s, self.path_xy[:, 1])
        heading = np.interp(s, self.path_s, self.path_heading)
        left = np.stack([-np.sin(heading), np.cos(heading)], axis=-1)
        return np.stack([x, y], axis=-1) + left * np.asarray(lateral, np.float64)[..., None], heading


def _plan_streets(rng: np.random.Generator, min_length: float) -> tuple[np.ndarray, np.ndarray]:
    """Waypoints and turn signs of a route that never crosses itself.

    Streets alternate between a main direction and a side direction chosen left or right at
    random; the route never heads against the main direction, so every street is at least one
    street length (>= 75 m) from all non-adjacent ones and town blocks cannot overlap.
    """
    directions = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]], np.float64)
    main_heading = int(rng.integers(4))
    heading = main_heading
    points = [np.zeros(2)]
    turns = [0]
    total = 0.0
    while True:
        length = float(rng.uniform(75.0, 165.0))
        points.append(points[-1] + directions[heading] * length)
        total += length
        if total >= min_length:
            break
        if heading == main_heading:
            turn = int(rng.choice([-1, 1]))
        else:  # back to the main direction
            turn = 1 if (heading + 1) % 4 == main_heading else -1
        turns.append(turn)
        heading = (heading + turn) % 4
    turns.append(0)
    return np.array(points), np.array(turns)


def _dense_path(waypoints: np.ndarray, turns: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pieces_xy, pieces_heading = [], []
    cursor = waypoints[0]
    for index in range(1, len(waypoints)):
        d_in = waypoints[index] - waypoints[index - 1]
        d_in /= np.linalg.norm(d_in)
        heading_in = np.arctan2(d_in[1], d_in[0])
        is_corner = index < len(waypoints) - 1
        straight_end = waypoints[index] - d_in * (CORNER_RADIUS if is_corner else 0.0)
        n = max(2, int(np.ceil(np.linalg.norm(straight_end - cursor) / _SAMPLE_STEP)))
        t = np.linspace(0.0, 1.0, n, endpoint=not is_corner)[:, None]
        pieces_xy.append(cursor + t * (straight_end - cursor))
        pieces_heading.append(np.full(len(t), heading_in))
        if is_corner:
            turn = turns[index]
            left = np.array([-d_in[1], d_in[0]])
            centre = straight_end + left * CORNER_RADIUS * turn
            angles = heading_in - turn * np.pi / 2 + turn * np.linspace(0.0, np.pi / 2, 40, endpoint=False)
            pieces_xy.append(centre + CORNER_RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1))
            pieces_heading.append(heading_in + turn * np.linspace(0.0, np.pi / 2, 40, endpoint=False))
            d_out = waypoints[index + 1] - waypoints[index]
            cursor = waypoints[index] + d_out / np.linalg.norm(d_out) * CORNER_RADIUS
    xy = np.concatenate(pieces_xy)
    heading = np.unwrap(np.concatenate(pieces_heading))
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(xy, axis=0), axis=1))])
    return s, xy, heading


def make_route(rng: np.random.Generator, min_length: float) -> Route:
    waypoints, turns = _plan_streets(rng, min_length)
    s, xy, heading = _dense_path(waypoints, turns)
    return Route(waypoints, turns, s, xy, heading)

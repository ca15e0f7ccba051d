"""The procedural town along the route: road, pavements, kerbs, facades, alleys, street lamps,
trees, sign poles, and the parking slots and pavement spots used by transient objects.

Everything static is a function of the seed only, so all traversals see the same town.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mduit_loc.datasets.synthetic.facades import FacadeTable, sample_facades
from mduit_loc.datasets.synthetic.noise import rng_for
from mduit_loc.datasets.synthetic.quads import Kind, QuadBuilder, Quads
from mduit_loc.datasets.synthetic.route import Route, make_route

ROAD_HALF_WIDTH = 5.6          # two 3.6 m lanes plus 2 m parking strips
PAVEMENT_WIDTH = 3.0
FACADE_OFFSET = ROAD_HALF_WIDTH + PAVEMENT_WIDTH
KERB_HEIGHT = 0.12
LANE_OFFSET = 2.0              # the car drives in the left lane (UK)
ROUTE_END_EXTENSION = 60.0     # town beyond the two ends of the route
ROUTE_MARGIN = 45.0            # route length before the first and after the last location
UP = np.array([0.0, 0.0, 1.0])


@dataclass
class World:
    seed: int
    route: Route
    quads: Quads                   # static scene
    facades: FacadeTable
    lamps: np.ndarray              # (L, 3) lamp head positions
    parking: np.ndarray            # (S, 4) x, y, heading, street
    sidewalk: np.ndarray           # (W, 4) x, y, heading of the facing street, street
    location_starts: np.ndarray    # (n_locations,) arc length where each location begins
    location_length: float

    def location_range(self, location: int) -> tuple[float, float]:
        """Arc-length interval of a location (1-based, as in queries_location_001.txt)."""
        start = float(self.location_starts[location - 1])
        return start, start + self.location_length


@dataclass
class _Street:
    index: int
    start: np.ndarray       # 2D
    direction: np.ndarray   # 2D unit
    length: float
    turn_start: int         # turn at the start waypoint (+1 left, -1 right, 0 route end)
    turn_end: int

    @property
    def left(self) -> np.ndarray:
        return np.array([-self.direction[1], self.direction[0]])

    def point(self, along: float, lateral: float, z: float = 0.0) -> np.ndarray:
        xy = self.start + self.direction * along + self.left * lateral
        return np.array([xy[0], xy[1], z])

    def dir3(self) -> np.ndarray:
        return np.array([self.direction[0], self.direction[1], 0.0])

    def left3(self) -> np.ndarray:
        return np.array([-self.direction[1], self.direction[0], 0.0])

    def end_extent(self, side: int, at_start: bool, inner: float, outer: float) -> float:
        """How far a row on ``side`` reaches past the street's end: less on the inside of a turn."""
        turn = self.turn_start if at_start else self.turn_end
        if turn == 0:
            return ROUTE_END_EXTENSION
        return -inner if turn == side else outer


class _TownBuilder:
    def __init__(self, seed: int):
        self.seed = seed
        self.quads = QuadBuilder()
        self.n_facades = 0
        self.lamps: list[np.ndarray] = []
        self.parking: list[tuple] = []
        self.sidewalk: list[tuple] = []

    def street(self, street: _Street) -> None:
        rng = rng_for(self.seed, 101, street.index)
        d3, l3 = street.dir3(), street.left3()
        # the road covers the crossing square at a turn and runs on past the route's ends
        ext0 = ROUTE_END_EXTENSION if street.turn_start == 0 else ROAD_HALF_WIDTH
        ext1 = ROUTE_END_EXTENSION if street.turn_end == 0 else ROAD_HALF_WIDTH
        z_eps = 0.002 * (street.index % 5)  # overlapping crossings: a fixed winner, no z-fighting noise
        self.quads.add(street.point(-ext0, -ROAD_HALF_WIDTH, z_eps), d3, l3, street.length + ext0 + ext1,
                       2 * ROAD_HALF_WIDTH, Kind.ROAD, street.index)
        for side in (+1, -1):
            self._pavement_and_kerb(street, side, z_eps)
            self._facade_row(street, side, rng)
            self._parking_and_sidewalk(street, side)
        self._street_furniture(street, rng)

    def _row_span(self, street: _Street, side: int, inner: float, outer: float) -> tuple[float, float]:
        a0 = -street.end_extent(side, True, inner, outer)
        a1 = street.length + street.end_extent(side, False, inner, outer)
        return a0, a1

    def _pavement_and_kerb(self, street: _Street, side: int, z_eps: float) -> None:
        d3, l3 = street.dir3(), street.left3()
        a0, a1 = self._row_span(street, side, ROAD_HALF_WIDTH, FACADE_OFFSET)
        lateral0 = ROAD_HALF_WIDTH if side > 0 else -(FACADE_OFFSET + 3.0)
        self.quads.add(street.point(a0, lateral0, KERB_HEIGHT + z_eps), d3, l3, a1 - a0,
                       PAVEMENT_WIDTH + 3.0, Kind.PAVEMENT, street.index)
        k0, k1 = self._row_span(street, side, ROAD_HALF_WIDTH, ROAD_HALF_WIDTH)
        self.quads.add(street.point(k0, side * ROAD_HALF_WIDTH, 0.0), d3, UP, k1 - k0, KERB_HEIGHT, Kind.KERB,
                       street.index)

    def _facade_row(self, street: _Street, side: int, rng: np.random.Generator) -> None:
        a0, a1 = self._row_span(street, side, FACADE_OFFSET, FACADE_OFFSET)
        widths: list[float] = []
        while a1 - a0 - sum(widths) > 0:
            widths.append(float(rng.uniform(6.0, 17.0)))
        widths[-1] -= sum(widths) - (a1 - a0)
        if len(widths) > 1 and widths[-1] < 4.0:
            widths[-2] += widths.pop()
        position = a0
        previous = None  # (setback, height) of the previous building
        for index, width in enumerate(widths):
            edge = index in (0, len(widths) - 1)
            alley = not edge and rng.random() < 0.1
            setback = 0.0 if edge or rng.random() < 0.6 else float(rng.uniform(0.4, 2.2))
            height = float(rng.uniform(7.0, 22.0))
            if alley:
                self._alley(street, side, position, width, height)
                previous = (12.0, height)
            else:
                self._facade(street, side, position, width, setback, height)
                if previous is not None and abs(previous[0] - setback) > 0.01:
                    depth0, depth1 = sorted((previous[0], setback))
                    wall_h = previous[1] if previous[0] < setback else height
                    self._side_wall(street, side, position, depth0, depth1, wall_h)
                previous = (setback, height)
            position += width

    def _facade(self, street: _Street, side: int, a: float, width: float, setback: float, height: float) -> None:
        lateral = side * (FACADE_OFFSET + setback)
        axis_u = street.dir3() * side  # u runs left-to-right as seen from the street
        origin = street.point(a if side > 0 else a + width, lateral)
        self.quads.add(origin, axis_u, UP, width, height, Kind.FACADE, self.n_facades)
        self.n_facades += 1

    def _side_wall(self, street: _Street, side: int, a: float, depth0: float, depth1: float, height: float) -> None:
        origin = street.point(a, side * (FACADE_OFFSET + depth0))
        self.quads.add(origin, street.left3() * side, UP, depth1 - depth0, height, Kind.WALL, self.n_facades - 1)

    def _alley(self, street: _Street, side: int, a: float, width: float, height: float) -> None:
        depth = 12.0
        back = street.point(a, side * (FACADE_OFFSET + depth))
        self.quads.add(back, street.dir3(), UP, width, height, Kind.FACADE, self.n_facades)
        self.n_facades += 1
        for along in (a, a + width):
            self.quads.add(street.point(along, side * FACADE_OFFSET), street.left3() * side, UP, depth,
                           height * 0.9, Kind.WALL, self.n_facades - 1)

    def _parking_and_sidewalk(self, street: _Street, side: int) -> None:
        heading = np.arctan2(street.direction[1], street.direction[0]) + (0.0 if side > 0 else np.pi)
        for along in np.arange(FACADE_OFFSET + 4.0, street.length - FACADE_OFFSET - 4.0, 6.0):
            xy = street.point(along, side * (ROAD_HALF_WIDTH - 1.0))[:2]
            self.parking.append((xy[0], xy[1], heading, street.index))
        for along in np.arange(FACADE_OFFSET + 2.0, street.length - FACADE_OFFSET - 2.0, 2.5):
            xy = street.point(along, side * (ROAD_HALF_WIDTH + 1.2))[:2]
            self.sidewalk.append((xy[0], xy[1], heading, street.index))

    def _street_furniture(self, street: _Street, rng: np.random.Generator) -> None:
        lamp_positions = []
        along, side = float(rng.uniform(FACADE_OFFSET + 2, FACADE_OFFSET + 14)), int(rng.choice([-1, 1]))
        while along < street.length - FACADE_OFFSET - 2:
            self._lamp(street, along, side)
            lamp_positions.append(along)
            along += float(rng.uniform(22.0, 32.0))
            side = -side
        for side in (+1, -1):
            if rng.random() < 0.3:
                continue
            along = float(rng.uniform(FACADE_OFFSET + 2, FACADE_OFFSET + 12))
            while along < street.length - FACADE_OFFSET - 2:
                if min((abs(along - p) for p in lamp_positions), default=99) > 3.0:
                    self._tree(street, along, side, rng)
                along += float(rng.uniform(8.0, 20.0))
            if rng.random() < 0.5:
                position = float(rng.uniform(FACADE_OFFSET + 3, street.length - FACADE_OFFSET - 3))
                self._sign_pole(street, position, side, rng)

    def _crossed(self, centre: np.ndarray, forward: np.ndarray, width: float, height: float, kind: Kind, param: int):
        left = np.array([-forward[1], forward[0], 0.0])
        for axis in (forward, left):
            self.quads.add(centre - axis * width / 2, axis, UP, width, height, kind, param)

    def _lamp(self, street: _Street, along: float, side: int) -> None:
        base = street.point(along, side * (ROAD_HALF_WIDTH + 0.45), KERB_HEIGHT)
        self._crossed(base, street.dir3(), 0.16, 6.6, Kind.POLE, 0)
        inward = -street.left3() * side
        top = base + UP * 6.5
        self.quads.add(top - street.dir3() * 0.04, inward, street.dir3(), 1.3, 0.08, Kind.POLE, 0)
        head = top + inward * 1.3 - street.dir3() * 0.18 - UP * 0.05
        self.quads.add(head, inward, street.dir3(), 0.7, 0.36, Kind.LAMP, len(self.lamps))
        self.lamps.append(head + inward * 0.35 + street.dir3() * 0.18 - UP * 0.15)

    def _tree(self, street: _Street, along: float, side: int, rng: np.random.Generator) -> None:
        base = street.point(along, side * (ROAD_HALF_WIDTH + 1.5), KERB_HEIGHT)
        width, height = float(rng.uniform(3.0, 5.5)), float(rng.uniform(5.0, 9.0))
        self._crossed(base, street.dir3(), width, height, Kind.TREE, int(rng.integers(2**31 - 1)))

    def _sign_pole(self, street: _Street, along: float, side: int, rng: np.random.Generator) -> None:
        base = street.point(along, side * (ROAD_HALF_WIDTH + 0.35), KERB_HEIGHT)
        self._crossed(base, street.dir3(), 0.08, 2.2, Kind.POLE, 0)
        plate = float(rng.uniform(0.55, 0.8))
        self.quads.add(base + UP * 2.1 - street.left3() * plate / 2, street.left3(), UP, plate, plate,
                       Kind.SIGN, int(rng.integers(2**31 - 1)))


def _streets(route: Route) -> list[_Street]:
    streets = []
    for index in range(route.n_streets):
        start, end = route.waypoints[index], route.waypoints[index + 1]
        length = float(np.linalg.norm(end - start))
        streets.append(_Street(index, start, (end - start) / length, length,
                               int(route.turns[index]), int(route.turns[index + 1])))
    return streets


def build_world(seed: int, n_locations: int, location_length: float, location_spacing: float) -> World:
    route = make_route(rng_for(seed, 100), 2 * ROUTE_MARGIN + n_locations * location_spacing + 40.0)
    builder = _TownBuilder(seed)
    for street in _streets(route):
        builder.street(street)
    lo = route.waypoints.min(axis=0) - 300.0
    hi = route.waypoints.max(axis=0) + 300.0
    builder.quads.add([lo[0], lo[1], -0.02], [1, 0, 0], [0, 1, 0], hi[0] - lo[0], hi[1] - lo[1], Kind.GROUND, 0)
    quads = builder.quads.build()
    facades = sample_facades(rng_for(seed, 102), builder.n_facades)
    starts = ROUTE_MARGIN + np.arange(n_locations) * location_spacing
    return World(seed, route, quads, facades, np.array(builder.lamps).reshape(-1, 3),
                 np.array(builder.parking).reshape(-1, 4), np.array(builder.sidewalk).reshape(-1, 4),
                 starts, location_length)

"""The car rig, and the frames of each traversal (one per condition) with their poses,
timestamps and transient objects (parked cars, pedestrians).

Each query traversal has its own lateral offset, heading bias and noise, roll/pitch jitter and
frame spacing, so queries never sit exactly on database poses.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mduit_loc.datasets.layout import CAMERAS, REFERENCE_CONDITION
from mduit_loc.datasets.synthetic.conditions import CONDITION_INDEX, STYLES
from mduit_loc.datasets.synthetic.noise import rng_for
from mduit_loc.datasets.synthetic.presets import SynthPreset
from mduit_loc.datasets.synthetic.quads import Kind, QuadBuilder, Quads
from mduit_loc.datasets.synthetic.world import LANE_OFFSET, World
from mduit_loc.datasets.types import Intrinsics
from mduit_loc.poses import Pose

# The published RobotCar Seasons intrinsics at 1024 x 1024 (fx = fy = 400).
ROBOTCAR_INTRINSICS = {
    "left": Intrinsics(400.0, 400.0, 500.107605, 511.461426, 1024, 1024),
    "rear": Intrinsics(400.0, 400.0, 508.222931, 498.187378, 1024, 1024),
    "right": Intrinsics(400.0, 400.0, 502.503754, 490.259033, 1024, 1024),
}
# Car frame: x forward, y left, z up, origin on the ground under the car's centre.
# (camera position, horizontal viewing direction, pitch down in degrees)
_MOUNTS = {
    "left": ((0.45, 0.85, 1.55), (0.0, 1.0), 4.0),
    "rear": ((-2.15, 0.0, 1.72), (-1.0, 0.0), 9.0),
    "right": ((0.45, -0.85, 1.55), (0.0, -1.0), 4.0),
}
CAR_SPEED = 8.0  # m/s, turns arc length into timestamps


def intrinsics_for(camera: str, size: int) -> Intrinsics:
    return ROBOTCAR_INTRINSICS[camera].scaled(size, size)


def car_from_camera(camera: str) -> np.ndarray:
    """4x4 ``[R c; 0 1]``: camera (x right, y down, z forward) to car coordinates."""
    position, heading, pitch = _MOUNTS[camera]
    pitch = np.radians(pitch)
    horizontal = np.array([heading[0], heading[1], 0.0])
    forward = np.cos(pitch) * horizontal + np.sin(pitch) * np.array([0.0, 0.0, -1.0])
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    matrix = np.eye(4)
    matrix[:3, :3] = np.stack([right, down, forward], axis=1)
    matrix[:3, 3] = position
    return matrix + 0.0  # no negative zeros ("-0") in the written extrinsics


def _rotation_zyx(yaw: float, pitch: float, roll: float) -> np.ndarray:
    cz, sz, cy, sy, cx, sx = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch), np.cos(roll), np.sin(roll)
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    return rz @ ry @ rx


@dataclass(frozen=True)
class Frame:
    condition: str
    location: int
    index: int                  # frame number within the traversal (increasing along the route)
    timestamp: int              # microseconds, shared by the three cameras
    world_from_car: np.ndarray  # 4x4

    def camera_pose(self, camera: str) -> Pose:
        """cam_from_world of one camera of the rig."""
        return Pose.from_world_from_cam_matrix(self.world_from_car @ car_from_camera(camera))

    def name(self, camera: str) -> str:
        return f"{self.condition}/{camera}/{self.timestamp}.jpg"


@dataclass(frozen=True)
class Traversal:
    condition: str
    frames: list[Frame]
    transients: Quads
    sun_azimuth: float          # radians, world frame


def _frame_positions(preset: SynthPreset, world: World, rng: np.random.Generator, reference: bool):
    """(location, arc length) of every frame of a traversal, in route order."""
    frames = []
    for location in range(1, preset.n_locations + 1):
        start, end = world.location_range(location)
        if reference:
            s = start + np.arange(preset.db_frames_per_location) * preset.db_spacing_m
        else:
            n = preset.query_frames
            spacing = rng.uniform(0.6, 0.95) * preset.location_length_m / max(n - 1, 1)
            spacing = min(spacing, preset.location_length_m / max(n - 1, 1))
            phase = rng.uniform(0.0, max(preset.location_length_m - (n - 1) * spacing, 0.0))
            s = start + phase + np.arange(n) * spacing
        frames += [(location, float(v)) for v in s if v <= end + 1e-6]
    return frames


def _car_motion(rng: np.random.Generator, s: np.ndarray, reference: bool):
    """Lateral offset (m), heading offset, pitch and roll (radians) per frame."""
    if reference:
        lateral = LANE_OFFSET + 0.08 * np.sin(s / 23.0)
        return lateral, np.zeros_like(s), np.zeros_like(s), np.zeros_like(s)
    # Another drive on another day: another position in the lane (towards the centre line more often
    # than towards the parked cars, sometimes straddling it), weaving, and a rig that sits differently.
    bias = rng.uniform(-1.5, -0.2) if rng.random() < 0.7 else rng.uniform(0.1, 0.4)
    lateral = LANE_OFFSET + bias + 0.35 * np.sin(s / rng.uniform(15, 40) + rng.uniform(0, 6.3))
    heading = np.radians(rng.uniform(-2.5, 2.5) + rng.normal(0.0, 1.0, size=s.shape))
    pitch = np.radians(rng.uniform(-1.0, 1.0) + rng.normal(0.0, 0.5, size=s.shape))
    roll = np.radians(rng.normal(0.0, 0.5, size=s.shape))
    return lateral, heading, pitch, roll


def make_traversal(preset: SynthPreset, world: World, condition: str) -> Traversal:
    reference = condition == REFERENCE_CONDITION
    rng = rng_for(world.seed, 200, CONDITION_INDEX[condition])
    positions = _frame_positions(preset, world, rng, reference)
    s = np.array([p[1] for p in positions])
    lateral, heading_noise, pitch, roll = _car_motion(rng, s, reference)
    xy, heading = world.route.pose_2d(s, lateral)
    start_us = (STYLES[condition].epoch_seconds() + int(rng.integers(0, 600))) * 1_000_000
    frames = []
    for index, (location, arc) in enumerate(positions):
        world_from_car = np.eye(4)
        world_from_car[:3, :3] = _rotation_zyx(heading[index] + heading_noise[index], pitch[index], roll[index])
        world_from_car[:3, 3] = [xy[index, 0], xy[index, 1], 0.0]
        timestamp = start_us + int(round(arc / CAR_SPEED * 1e6)) + index  # + index: strictly increasing
        frames.append(Frame(condition, location, index, timestamp, world_from_car))
    transients = Quads.concat([_transients(world, rng_for(world.seed, 300, CONDITION_INDEX[condition]), s),
                               _traffic(world, rng_for(world.seed, 310, CONDITION_INDEX[condition]), s)])
    azimuth = float(rng_for(world.seed, 400, CONDITION_INDEX[condition]).uniform(0, 2 * np.pi))
    return Traversal(condition, frames, transients, azimuth)


def _transients(world: World, rng: np.random.Generator, frame_s: np.ndarray) -> Quads:
    """Parked cars and pedestrians of one traversal, near its frames only (the rest is unseen)."""
    builder = QuadBuilder()
    frame_xy, _ = world.route.pose_2d(frame_s, 0.0)
    occupancy = rng.uniform(0.15, 0.6)
    walkers = rng.uniform(0.04, 0.14)
    for slots, probability, is_car in ((world.parking, occupancy, True), (world.sidewalk, walkers, False)):
        draws = rng.random(len(slots))
        jitter = rng.uniform(-0.4, 0.4, size=(len(slots), 2))
        params = rng.integers(0, 2**31 - 1, size=len(slots))
        sizes = rng.uniform(0.0, 1.0, size=(len(slots), 3))
        if len(frame_xy) == 0 or len(slots) == 0:
            continue
        near = np.min(np.linalg.norm(slots[:, None, :2] - frame_xy[None], axis=2), axis=1) < 80.0
        for k in np.flatnonzero((draws < probability) & near):
            x, y, heading = slots[k, :3]
            forward = np.array([np.cos(heading), np.sin(heading), 0.0])
            centre = np.array([x, y, 0.0]) + forward * jitter[k, 0] * (1.0 if is_car else 2.0)
            if is_car:
                size = (4.0 + 0.7 * sizes[k, 0], 1.75 + 0.15 * sizes[k, 1], 1.4 + 0.25 * sizes[k, 2])
                builder.add_box(centre, forward, size, Kind.CAR, int(params[k]))
            else:
                left = np.array([-forward[1], forward[0], 0.0])
                centre = centre + left * jitter[k, 1] + np.array([0.0, 0.0, 0.12])
                height = 1.55 + 0.35 * sizes[k, 0]
                for axis in (forward, left):
                    builder.add(centre - axis * 0.3, axis, [0.0, 0.0, 1.0], 0.6, height, Kind.PEDESTRIAN,
                                int(params[k]))
    return builder.build()


def _traffic(world: World, rng: np.random.Generator, frame_s: np.ndarray) -> Quads:
    """Moving traffic frozen at the traversal's frames: a car following in the own lane (rear camera) and
    oncoming cars in the other lane (rear and right cameras); never closer than 6 m to a frame's car."""
    builder = QuadBuilder()
    if len(frame_s) == 0:
        return builder.build()
    arcs, lanes = [], []
    for s in frame_s:
        if rng.random() < 0.35:
            arcs.append(s - rng.uniform(7.0, 16.0))
            lanes.append(LANE_OFFSET)
        for _ in range(int(rng.integers(0, 3))):
            arcs.append(s + rng.uniform(-25.0, 25.0))
            lanes.append(-LANE_OFFSET)
    params = rng.integers(0, 2**31 - 1, size=len(arcs))
    sizes = rng.uniform(0.0, 1.0, size=(len(arcs), 3))
    for k, (arc, lateral) in enumerate(zip(arcs, lanes)):
        if lateral == LANE_OFFSET and np.min(np.abs(frame_s - arc)) < 6.0:
            continue
        xy, heading = world.route.pose_2d(np.array([arc]), np.array([lateral]))
        direction = 1.0 if lateral == LANE_OFFSET else -1.0
        forward = direction * np.array([np.cos(heading[0]), np.sin(heading[0]), 0.0])
        size = (4.0 + 1.2 * sizes[k, 0], 1.75 + 0.2 * sizes[k, 1], 1.4 + 0.6 * sizes[k, 2])
        builder.add_box(np.array([xy[0, 0], xy[0, 1], 0.0]), forward, size, Kind.CAR, int(params[k]))
    return builder.build()


def rig_cameras() -> tuple[str, ...]:
    return CAMERAS

"""Multi-view tracks of the reference model's points: every database image that sees a point.

Each point is sampled from one database image (``model_points``). The renderer knows the exact
geometry, so the point is also observed by another database image of its location when it projects
into that image (in front of the camera) and nothing occludes it there: the ray from that camera
towards the point first meets the scene at the point's depth. That is the depth the image's depth
map holds at the projection, ray-cast for the candidate points only: a depth map casts a ray through
every pixel (the primary rays of a render) and would have to be kept for every neighbouring image.
The keypoint written for an observation is the exact projection, so every observation reprojects
with zero error, like the point's own pixel.

Work and size are bounded: only the points of images of the same location within
``NEIGHBOUR_FRAMES`` frames and ``TRACK_RADIUS_M`` are tested (against the quads the image can see),
and a point keeps at most ``MAX_TRACK_LENGTH`` observations, from the images nearest to the one it
was sampled from (unbounded tracks would make ``small``'s NVM file five times larger for nothing:
covisibility and triangulation need a few views per point).
"""
from __future__ import annotations

import sys

import numpy as np
from tqdm import tqdm

from mduit_loc.datasets.layout import CAMERAS
from mduit_loc.datasets.synthetic.appearance import Scene
from mduit_loc.datasets.synthetic.model_points import DatabasePoints
from mduit_loc.datasets.synthetic.presets import SynthPreset
from mduit_loc.datasets.synthetic.render import cull_to_view, intersect
from mduit_loc.datasets.synthetic.surface import alpha_test
from mduit_loc.datasets.synthetic.traversals import Frame, intrinsics_for

TRACK_RADIUS_M = 30.0           # database frames farther than this never see a point
NEIGHBOUR_FRAMES = 8            # frames before and after the target frame whose points are tested
MAX_TRACK_LENGTH = 5            # observations per point, the sampling image's included
_MIN_DEPTH_M = 0.1
# float32 ray casting agrees with the sampled depth to ~1e-5 relative; the nearest occluders (kerbs,
# sign plates, car bodies) stand centimetres or more in front of what they hide
_DEPTH_TOLERANCE_REL = 2e-3
_DEPTH_TOLERANCE_M = 0.01


def add_tracks(scene: Scene, preset: SynthPreset, points: DatabasePoints, progress: bool = False) -> DatabasePoints:
    """``points`` with their observations in the other database images of ``scene`` (the reference
    traversal; images in NVM order: frame-major, then camera) that see them."""
    database = [(frame, camera) for frame in scene.traversal.frames for camera in CAMERAS]
    positions = np.array([frame.world_from_car[:3, 3] for frame, _ in database]).reshape(-1, 3)
    frames = np.array([frame.index for frame, _ in database], np.int64)
    locations = np.array([frame.location for frame, _ in database], np.int64)
    order = np.argsort(points.image, kind="stable")
    bounds = np.searchsorted(points.image[order], np.arange(len(database) + 1))
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    bar = tqdm(total=len(database), desc="tracks", unit="img", file=sys.stderr, disable=not progress or None,
               leave=False)
    for location in np.unique(locations):
        here = np.flatnonzero(locations == location)
        observed = []
        for target in here:
            near = here[(np.abs(frames[here] - frames[target]) <= NEIGHBOUR_FRAMES) & (here != target)
                        & (np.linalg.norm(positions[here] - positions[target], axis=1) <= TRACK_RADIUS_M)]
            candidates = np.concatenate([order[bounds[k]:bounds[k + 1]] for k in near] + [np.zeros(0, np.int64)])
            frame, camera = database[target]
            seen, pixel = _visible(scene, preset, frame, camera, points.xyz[candidates])
            observed.append((candidates[seen], np.full(int(seen.sum()), target, np.int64), pixel))
            bar.update(1)
        point, image, pixel = (np.concatenate(parts) for parts in zip(*observed))
        # the nearest views first: the sampling image's neighbours share most of its view
        distance = np.linalg.norm(positions[image] - positions[points.image[point]], axis=1)
        ranked = np.lexsort((image, distance, point))
        rank = np.arange(len(ranked)) - np.searchsorted(point[ranked], point[ranked], side="left")
        keep = ranked[rank < MAX_TRACK_LENGTH - 1]
        found.append((point[keep], image[keep], pixel[keep]))
    bar.close()
    point, image, pixel = (np.concatenate(parts) for parts in zip(*found)) if found else (
        np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 2)))
    return points.with_tracks(point, image, pixel)


def _visible(scene: Scene, preset: SynthPreset, frame: Frame, camera: str,
             xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which points one database image sees (mask), and the pixels (COLMAP convention) of those."""
    size = preset.image_size
    pose, intrinsics = frame.camera_pose(camera), intrinsics_for(camera, size)
    cam = pose.transform(xyz)
    z = cam[:, 2]
    safe_z = np.where(z > _MIN_DEPTH_M, z, 1.0)
    pixel = np.column_stack([intrinsics.fx * cam[:, 0] / safe_z + intrinsics.cx,
                             intrinsics.fy * cam[:, 1] / safe_z + intrinsics.cy])
    seen = (z > _MIN_DEPTH_M) & np.all((pixel >= 0) & (pixel < size), axis=1)
    if seen.any():
        inside = np.flatnonzero(seen)
        # directions with unit camera-frame z: the ray parameter of a hit is its depth
        directions = (xyz[inside] - pose.center[None]) / z[inside, None]
        view = scene.quads.subset(cull_to_view(scene.quads, pose, intrinsics, preset.max_view_distance_m))
        hits = intersect(pose.center, directions.astype(np.float32), view, alpha_test(scene.style.foliage))
        depth = z[inside]
        seen[inside] = (hits.index >= 0) & (np.abs(hits.t - depth) <= _DEPTH_TOLERANCE_REL * depth + _DEPTH_TOLERANCE_M)
    return seen, pixel[seen]

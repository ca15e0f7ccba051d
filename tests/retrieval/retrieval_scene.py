"""A synthetic scene for the PnP refinement tests: a textured wall rendered from known poses.

The wall is the plane x = WALL_X (world z up), textured with multi-scale colour noise (plenty of
SIFT corners). Cameras from ``yaw_pose`` look along +x. Rendering intersects each pixel's ray
(pixel centres at +0.5, the COLMAP convention) with the wall and samples the texture bilinearly.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import map_coordinates, zoom

from mduit_loc.datasets.types import Intrinsics
from mduit_loc.poses import Pose

WALL_X = 10.0
TEXEL = 0.01                     # metres per texel
WALL_Y = (-10.0, 10.0)
WALL_Z = (-5.0, 8.0)


def wall_texture(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    height, width = int((WALL_Z[1] - WALL_Z[0]) / TEXEL), int((WALL_Y[1] - WALL_Y[0]) / TEXEL)
    texture = np.zeros((height, width, 3), np.float32)
    for cells, amplitude in ((8, 0.3), (32, 0.3), (128, 0.25), (400, 0.15)):
        grid = rng.random((cells * height // width + 2, cells + 2, 3)).astype(np.float32)
        texture += amplitude * zoom(grid, (height / grid.shape[0], width / grid.shape[1], 1), order=1)[:height, :width]
    return texture


def render(texture: np.ndarray, pose: Pose, intrinsics: Intrinsics) -> np.ndarray:
    v, u = np.mgrid[0:intrinsics.height, 0:intrinsics.width].astype(np.float64) + 0.5
    rays_camera = np.stack([(u - intrinsics.cx) / intrinsics.fx, (v - intrinsics.cy) / intrinsics.fy,
                            np.ones_like(u)], axis=-1)
    rays_world = rays_camera @ pose.R          # R^T applied to each ray
    center = pose.center
    distance = (WALL_X - center[0]) / rays_world[..., 0]
    points = center + distance[..., None] * rays_world
    columns = (points[..., 1] - WALL_Y[0]) / TEXEL - 0.5
    rows = (WALL_Z[1] - points[..., 2]) / TEXEL - 0.5
    image = np.stack([map_coordinates(texture[..., c], [rows, columns], order=1, mode="reflect") for c in range(3)], -1)
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


def wall_points(spacing: float = 0.02, y=(-8.0, 8.0), z=(-4.0, 7.0)) -> np.ndarray:
    ys, zs = np.meshgrid(np.arange(*y, spacing), np.arange(*z, spacing))
    return np.stack([np.full(ys.size, WALL_X), ys.ravel(), zs.ravel()], axis=1)

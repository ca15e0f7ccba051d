"""3D points of the reference model from exact depth: a grid of pixels per database image,
back-projected along the rays through their centres (so each point projects exactly onto its
pixel with the written intrinsics and pose)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mduit_loc.datasets.layout import CAMERAS
from mduit_loc.datasets.synthetic.appearance import Scene
from mduit_loc.datasets.synthetic.presets import SynthPreset
from mduit_loc.datasets.synthetic.quads import Kind
from mduit_loc.datasets.synthetic.render import cull_to_view, intersect
from mduit_loc.datasets.synthetic.surface import alpha_test
from mduit_loc.datasets.synthetic.traversals import intrinsics_for

_TRANSIENT_KINDS = (Kind.CAR, Kind.PEDESTRIAN)  # not part of the static map


@dataclass
class DatabasePoints:
    xyz: np.ndarray      # (M, 3) float64 world
    rgb: np.ndarray      # (M, 3) uint8, the rendered colour at the pixel
    image: np.ndarray    # (M,) database image index (NVM camera order)
    pixel: np.ndarray    # (M, 2) float64 COLMAP pixel coordinates (x, y), pixel centres at +0.5

    def nvm_observations(self, size: int) -> list[np.ndarray]:
        """One measurement per point: image, feature index, (u, v) relative to the image centre."""
        feature = np.zeros(len(self.image), np.int64)
        for image in np.unique(self.image):
            sel = np.flatnonzero(self.image == image)
            feature[sel] = np.arange(len(sel))
        rows = np.column_stack([self.image, feature, self.pixel - size / 2.0])
        return [row[None] for row in rows]

    def location_model(self, images: list[int]):
        """Keypoints and 1-based point ids per image, and the points of a set of database images."""
        selected = np.flatnonzero(np.isin(self.image, images))
        local_id = {int(g): k + 1 for k, g in enumerate(selected)}
        keypoints, point_ids = [], []
        for image in images:
            mine = selected[self.image[selected] == image]
            keypoints.append(self.pixel[mine])
            point_ids.append(np.array([local_id[int(g)] for g in mine], np.int64))
        return keypoints, point_ids, self.xyz[selected], self.rgb[selected]


def pixel_grid(size: int, count: int) -> np.ndarray:
    """(k, 2) integer (row, col) of a regular grid of about ``count`` pixels."""
    side = max(1, int(np.ceil(np.sqrt(count))))
    coords = np.minimum(((np.arange(side) + 0.5) * size / side).astype(np.int64), size - 1)
    rows, cols = np.meshgrid(coords, coords, indexing="ij")
    return np.column_stack([rows.ravel(), cols.ravel()])


def database_points(scene: Scene, preset: SynthPreset, grid_colours: dict[tuple[int, str], np.ndarray]) -> DatabasePoints:
    """Points of every database image; ``grid_colours[(frame index, camera)]``: the (k, 3) uint8
    colours of the rendered image at ``pixel_grid(size, preset.points_per_image)`` (only those are
    kept while rendering, not whole images: the ``full`` preset's would need tens of GB)."""
    size = preset.image_size
    grid = pixel_grid(size, preset.points_per_image)
    xyz, rgb, owner, pixel = [], [], [], []
    test = alpha_test(scene.style.foliage)
    image_index = 0
    for frame in scene.traversal.frames:
        for camera in CAMERAS:
            intrinsics = intrinsics_for(camera, size)
            pose = frame.camera_pose(camera)
            cam_dirs = np.column_stack([(grid[:, 1] + 0.5 - intrinsics.cx) / intrinsics.fx,
                                        (grid[:, 0] + 0.5 - intrinsics.cy) / intrinsics.fy, np.ones(len(grid))])
            world_dirs = cam_dirs @ pose.R
            view = scene.quads.subset(cull_to_view(scene.quads, pose, intrinsics, preset.max_view_distance_m))
            hits = intersect(pose.center, world_dirs.astype(np.float32), view, test)
            keep = hits.index >= 0
            keep[keep] = ~np.isin(view.kind[hits.index[keep]], _TRANSIENT_KINDS)
            points = pose.center[None] + world_dirs[keep] * hits.t[keep, None].astype(np.float64)
            xyz.append(points)
            rgb.append(grid_colours[(frame.index, camera)][keep])
            owner.append(np.full(int(keep.sum()), image_index))
            pixel.append(grid[keep][:, ::-1] + 0.5)
            image_index += 1
    return DatabasePoints(np.concatenate(xyz), np.concatenate(rgb).astype(np.uint8),
                          np.concatenate(owner).astype(np.int64), np.concatenate(pixel).astype(np.float64))

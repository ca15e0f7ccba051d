"""3D points of the reference model from exact depth: a grid of pixels per database image,
back-projected along the rays through their centres (so each point projects exactly onto its
pixel with the written intrinsics and pose). ``tracks.add_tracks`` adds the other database images
that see each point (multi-view tracks)."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from mduit_loc.datasets.layout import CAMERAS
from mduit_loc.datasets.synthetic.appearance import Scene
from mduit_loc.datasets.synthetic.presets import SynthPreset
from mduit_loc.datasets.synthetic.quads import Kind
from mduit_loc.datasets.synthetic.render import cull_to_view, intersect
from mduit_loc.datasets.synthetic.surface import alpha_test
from mduit_loc.datasets.synthetic.traversals import intrinsics_for

_TRANSIENT_KINDS = (Kind.CAR, Kind.PEDESTRIAN)  # not part of the static map


def _empty(*shape: int, dtype: type = np.float64) -> np.ndarray:
    return np.zeros((0, *shape), dtype)


@dataclass
class DatabasePoints:
    xyz: np.ndarray      # (M, 3) float64 world
    rgb: np.ndarray      # (M, 3) uint8, the rendered colour at the pixel
    image: np.ndarray    # (M,) database image index (NVM camera order) the point was sampled from
    pixel: np.ndarray    # (M, 2) float64 COLMAP pixel coordinates (x, y), pixel centres at +0.5
    # observations in the other database images that see the point (K of them): point, image, pixel
    track_point: np.ndarray = field(default_factory=lambda: _empty(dtype=np.int64))
    track_image: np.ndarray = field(default_factory=lambda: _empty(dtype=np.int64))
    track_pixel: np.ndarray = field(default_factory=lambda: _empty(2))

    def with_tracks(self, point: np.ndarray, image: np.ndarray, pixel: np.ndarray) -> DatabasePoints:
        return replace(self, track_point=np.asarray(point, np.int64), track_image=np.asarray(image, np.int64),
                       track_pixel=np.asarray(pixel, np.float64).reshape(-1, 2))

    def observations(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every observation (point, image, pixel, feature) sorted by image, then point; ``feature``
        numbers each image's observations from 0 in that order (its NVM feature index)."""
        point = np.concatenate([np.arange(len(self.xyz)), self.track_point])
        image = np.concatenate([self.image, self.track_image])
        pixel = np.concatenate([self.pixel, self.track_pixel])
        order = np.lexsort((point, image))
        point, image, pixel = point[order], image[order], pixel[order]
        feature = np.arange(len(image)) - np.searchsorted(image, image, side="left")
        return point, image, pixel, feature

    def nvm_observations(self, size: int) -> list[np.ndarray]:
        """Per point, its measurements: image, feature index, (u, v) relative to the image centre; the
        image it was sampled from first, then the others in image order."""
        point, image, pixel, feature = self.observations()
        rows = np.column_stack([image, feature, pixel - size / 2.0])
        secondary = image != self.image[point]
        order = np.lexsort((image, secondary, point))
        counts = np.bincount(point, minlength=len(self.xyz))
        return np.split(rows[order], np.cumsum(counts)[:-1])

    def location_model(self, images: list[int]):
        """Keypoints and 1-based point ids per image, and the points, of the points sampled from a
        set of database images (their tracks stay within a location, so within ``images``)."""
        selected = np.flatnonzero(np.isin(self.image, images))
        local_id = np.zeros(len(self.xyz), np.int64)
        local_id[selected] = np.arange(1, len(selected) + 1)
        point, image, pixel, _ = self.observations()
        keep = local_id[point] > 0
        point, image, pixel = point[keep], image[keep], pixel[keep]
        wanted = np.asarray(images, np.int64)
        bounds = np.searchsorted(image, np.stack([wanted, wanted + 1]))
        keypoints = [pixel[start:end] for start, end in zip(*bounds)]
        point_ids = [local_id[point[start:end]] for start, end in zip(*bounds)]
        return keypoints, point_ids, self.xyz[selected], self.rgb[selected]


def pixel_grid(size: int, count: int) -> np.ndarray:
    """(k, 2) integer (row, col) of a regular grid of about ``count`` pixels."""
    side = max(1, int(np.ceil(np.sqrt(count))))
    coords = np.minimum(((np.arange(side) + 0.5) * size / side).astype(np.int64), size - 1)
    rows, cols = np.meshgrid(coords, coords, indexing="ij")
    return np.column_stack([rows.ravel(), cols.ravel()])


def database_points(scene: Scene, preset: SynthPreset,
                    grid_colours: dict[tuple[int, str], np.ndarray]) -> DatabasePoints:
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

"""3D structure seen by database images: what turns 2D matches into 2D-3D correspondences.

Two sources, tried in this order by ``load_scene``:
- **observations** of a COLMAP model (a user's map, or RobotCar Seasons' per-location models
  ``colmap_reconstructions/NNN_aligned``) or of an NVM model: per database image, the pixel
  positions of its keypoints that have a 3D point. A matched database keypoint is lifted to the 3D
  point of the nearest observation within ``radius`` pixels.
- a **point cloud** (the NVM's or the model's points, no observations): projected into the database
  camera with its pose and intrinsics; a coarse z-buffer (``cell`` pixel cells keep their nearest
  point) removes most occluded points — a sparse depth map. Lifting then works as above.
Pixel coordinates follow COLMAP (the top-left pixel's centre is at (0.5, 0.5)), as SIFT keypoints do.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy.spatial import cKDTree

from mduit_loc.datasets.types import Intrinsics
from mduit_loc.poses import Pose

log = logging.getLogger(__name__)


@dataclass
class ImageStructure:
    """Pixels (M, 2) of one database image with the 3D points (M, 3) they see."""

    pixels: np.ndarray
    points: np.ndarray
    point_ids: np.ndarray | None = None   # rows of the source cloud (projected structures)
    _tree: cKDTree | None = field(default=None, repr=False)

    def lift(self, keypoints: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
        """(index into keypoints, 3D points) of keypoints within ``radius`` px of a structure pixel."""
        if len(self.pixels) == 0 or len(keypoints) == 0:
            return np.zeros(0, np.int64), np.zeros((0, 3))
        if self._tree is None:
            self._tree = cKDTree(self.pixels)
        distance, nearest = self._tree.query(keypoints, k=1, distance_upper_bound=radius)
        found = np.isfinite(distance)
        return np.flatnonzero(found), self.points[nearest[found]]


class Scene:
    """Structure per database image; ``None`` when an image has none."""

    def structure(self, name: str, pose: Pose, intrinsics: Intrinsics | None) -> ImageStructure | None:
        raise NotImplementedError


class ObservationScene(Scene):
    def __init__(self, observations: dict[str, ImageStructure]):
        self.observations = observations

    def structure(self, name, pose, intrinsics):
        from mduit_loc.datasets.layout import canonical_name

        # RobotCar models say .png where the database says .jpg; user maps keep their names.
        found = self.observations.get(name)
        return found if found is not None else self.observations.get(canonical_name(name))


class PointCloudScene(Scene):
    def __init__(self, points: np.ndarray, cell: float = 2.0, min_depth: float = 1e-3):
        self.points = np.asarray(points, np.float64).reshape(-1, 3)
        self.cell = cell
        self.min_depth = min_depth
        self._cache: dict[str, ImageStructure] = {}

    def structure(self, name, pose, intrinsics):
        if intrinsics is None or len(self.points) == 0:
            return None
        if name not in self._cache:
            self._cache[name] = project_points(self.points, pose, intrinsics, self.cell, self.min_depth)
        return self._cache[name]


def project_points(points: np.ndarray, pose: Pose, intrinsics: Intrinsics, cell: float = 2.0,
                   min_depth: float = 1e-3) -> ImageStructure:
    """Visible points of a cloud in one camera: the nearest point per ``cell`` x ``cell`` pixel cell."""
    camera_points = pose.transform(points)
    depth = camera_points[:, 2]
    in_front = depth > min_depth
    ids = np.flatnonzero(in_front)
    camera_points, depth = camera_points[in_front], depth[in_front]
    u = intrinsics.fx * camera_points[:, 0] / depth + intrinsics.cx
    v = intrinsics.fy * camera_points[:, 1] / depth + intrinsics.cy
    inside = (u >= 0) & (u < intrinsics.width) & (v >= 0) & (v < intrinsics.height)
    u, v, depth, ids = u[inside], v[inside], depth[inside], ids[inside]
    columns = int(np.ceil(intrinsics.width / cell))
    cells = (v // cell).astype(np.int64) * columns + (u // cell).astype(np.int64)
    order = np.lexsort((depth, cells))             # by cell, nearest first
    first = np.ones(len(order), bool)
    first[1:] = cells[order][1:] != cells[order][:-1]
    keep = order[first]
    return ImageStructure(np.stack([u[keep], v[keep]], axis=1), points[ids[keep]], ids[keep])


def observations_from_colmap(folder: Path) -> dict[str, ImageStructure]:
    """Observed keypoints with 3D points, per image name, of one COLMAP model."""
    import pycolmap

    from mduit_loc.datasets.layout import canonical_name

    reconstruction = pycolmap.Reconstruction(str(folder))
    result = {}
    for image in reconstruction.images.values():
        observed = image.get_observation_points2D()
        if len(observed) == 0:
            continue
        pixels = np.array([p.xy for p in observed], np.float64)
        points = np.array([reconstruction.points3D[p.point3D_id].xyz for p in observed], np.float64)
        result[image.name] = ImageStructure(pixels, points)
        result.setdefault(canonical_name(image.name), result[image.name])
    return result


def _colmap_folders(dataset_root: Path, kind: str) -> list[Path]:
    from mduit_loc.datasets.colmap_text import find_model_folder
    from mduit_loc.datasets.robotcar_files import LOCATION_MODELS_DIR

    if kind == "colmap":
        folder = find_model_folder(dataset_root)
        return [folder] if folder is not None else []
    return sorted((dataset_root / LOCATION_MODELS_DIR).glob("*_aligned"))


def _nvm_scene(nvm_path: Path, intrinsics: dict[str, Intrinsics]) -> Scene | None:
    from mduit_loc.datasets.layout import ImageName, canonical_name
    from mduit_loc.datasets.nvm import read_nvm

    model = read_nvm(nvm_path, with_points=True)
    if model.points is None or len(model.points.xyz) == 0:
        return None
    if not model.points.observations or not any(len(o) for o in model.points.observations):
        return PointCloudScene(model.points.xyz)
    pixels: dict[int, list] = {}
    points: dict[int, list] = {}
    for xyz, observations in zip(model.points.xyz, model.points.observations):
        for image_index, _, u, v in observations:
            pixels.setdefault(int(image_index), []).append((u, v))
            points.setdefault(int(image_index), []).append(xyz)
    result = {}
    for image_index, uv in pixels.items():
        name = canonical_name(model.cameras[image_index].name)
        camera = intrinsics.get(ImageName.parse(name).camera) if "/" in name else None
        if camera is None:
            continue
        centre = np.array([camera.width / 2.0, camera.height / 2.0])  # NVM: relative to the image centre
        result[name] = ImageStructure(np.asarray(uv, np.float64) + centre, np.asarray(points[image_index]))
    return ObservationScene(result)


def load_scene(dataset_root: Path, kind: str, intrinsics: dict[str, Intrinsics],
               nvm_path: Path | None = None) -> Scene | None:
    """The best available structure for a dataset; None (with a warning) when there is none."""
    observations: dict[str, ImageStructure] = {}
    for folder in _colmap_folders(Path(dataset_root), kind):
        observations.update(observations_from_colmap(folder))
    if observations:
        return ObservationScene(observations)
    if nvm_path is not None and Path(nvm_path).is_file():
        scene = _nvm_scene(Path(nvm_path), intrinsics)
        if scene is not None:
            return scene
    log.warning("%s: no 3D structure (COLMAP observations or NVM points); pnp falls back to retrieval poses",
                dataset_root)
    return None

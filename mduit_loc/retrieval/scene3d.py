"""3D structure seen by database images: what turns 2D matches into 2D-3D correspondences.

Two sources, tried in this order by ``load_scene``:
- **observations** of a COLMAP model (a user's map, or RobotCar Seasons' per-location models
  ``colmap_reconstructions/NNN_aligned``) or of an NVM model: per database image, the pixel
  positions of its keypoints that have a 3D point, with the model's own pose and camera.
- a **point cloud** (the NVM's or the model's points, no observations): projected into the database
  camera with its pose and intrinsics; a coarse z-buffer (``cell`` pixel cells keep their nearest
  point) removes most occluded points — a sparse depth map.
Lifting a matched database keypoint: its ``k`` nearest structure pixels within ``radius`` give a depth
(a weighted plane fit of inverse depth, exact on planar surfaces; refused when their depths disagree:
a depth edge), and the keypoint's own ray is back-projected to that depth. Snapping the keypoint to the nearest structure point instead
would be wrong by the keypoint-to-point distance — several pixels with sparse structure (the
synthetic benchmark's grid of points), i.e. degrees of error in the pose. Without the camera
geometry of an image, lifting falls back to that snapping. The default radius adapts to the
structure: 1.5 x the median spacing of its pixels, at least 2 px.
Pixel coordinates follow COLMAP (the top-left pixel's centre is at (0.5, 0.5)), as SIFT keypoints do.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from scipy.spatial import cKDTree

from mduit_loc.datasets.types import Intrinsics
from mduit_loc.poses import Pose

log = logging.getLogger(__name__)


@dataclass
class ViewGeometry:
    """Pose and projection of one database image, for back-projecting its keypoints."""

    cam_from_world: Pose
    unproject: Callable[[np.ndarray], np.ndarray]   # pixels (N, 2) -> normalised coordinates (N, 2)

    @classmethod
    def pinhole(cls, cam_from_world: Pose, intrinsics: Intrinsics) -> "ViewGeometry":
        focal, centre = np.array([intrinsics.fx, intrinsics.fy]), np.array([intrinsics.cx, intrinsics.cy])
        return cls(cam_from_world, lambda pixels: (np.asarray(pixels, np.float64) - centre) / focal)

    def depths(self, points: np.ndarray) -> np.ndarray:
        return self.cam_from_world.transform(points)[:, 2]

    def backproject(self, pixels: np.ndarray, depths: np.ndarray) -> np.ndarray:
        normalised = np.asarray(self.unproject(pixels), np.float64).reshape(-1, 2)
        camera_points = np.concatenate([normalised, np.ones((len(normalised), 1))], axis=1) * depths[:, None]
        return self.cam_from_world.inverse().transform(camera_points)


@dataclass
class ImageStructure:
    """Pixels (M, 2) of one database image with the 3D points (M, 3) they see."""

    pixels: np.ndarray
    points: np.ndarray
    point_ids: np.ndarray | None = None   # rows of the source cloud (projected structures)
    geometry: ViewGeometry | None = None  # None: lifting snaps to the nearest point
    _tree: cKDTree | None = field(default=None, repr=False)
    _depths: np.ndarray | None = field(default=None, repr=False)

    @property
    def tree(self) -> cKDTree:
        if self._tree is None:
            self._tree = cKDTree(self.pixels)
        return self._tree

    def default_radius(self) -> float:
        """1.5 x the median distance between neighbouring structure pixels, at least 2 px."""
        if len(self.pixels) < 2:
            return 2.0
        distance, _ = self.tree.query(self.pixels, k=2)
        return max(2.0, 1.5 * float(np.median(distance[:, 1])))

    def lift(self, keypoints: np.ndarray, radius: float | None = None, neighbours: int = 4,
             depth_tolerance: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
        """(index into keypoints, 3D points) of the keypoints that can be lifted (see the module doc)."""
        keypoints = np.asarray(keypoints, np.float64).reshape(-1, 2)
        if len(self.pixels) == 0 or len(keypoints) == 0:
            return np.zeros(0, np.int64), np.zeros((0, 3))
        radius = self.default_radius() if radius is None else radius
        if self.geometry is None:
            distance, nearest = self.tree.query(keypoints, k=1, distance_upper_bound=radius)
            found = np.isfinite(distance)
            return np.flatnonzero(found), self.points[nearest[found]]
        if self._depths is None:
            self._depths = self.geometry.depths(self.points)
        k = min(neighbours, len(self.pixels))
        distance, nearest = self.tree.query(keypoints, k=k, distance_upper_bound=radius)
        distance, nearest = distance.reshape(len(keypoints), k), nearest.reshape(len(keypoints), k)
        valid = np.isfinite(distance)
        depth = self._depths[np.minimum(nearest, len(self.pixels) - 1)]
        nearest_depth = np.where(valid, depth, np.inf).min(axis=1)
        farthest_depth = np.where(valid, depth, -np.inf).max(axis=1)
        # Neighbours whose depths disagree straddle a depth edge: the keypoint's depth is unknown.
        found = valid.any(axis=1) & (nearest_depth > 0) & (farthest_depth <= (1 + depth_tolerance) * nearest_depth)
        neighbour_pixels = self.pixels[np.minimum(nearest[found], len(self.pixels) - 1)]
        depth_found = _interpolate_depth(keypoints[found], neighbour_pixels, depth[found], distance[found],
                                         valid[found])
        return np.flatnonzero(found), self.geometry.backproject(keypoints[found], depth_found)


def _interpolate_depth(keypoints: np.ndarray, pixels: np.ndarray, depths: np.ndarray, distance: np.ndarray,
                       valid: np.ndarray) -> np.ndarray:
    """Depth at each keypoint from its (N, k) neighbours: inverse depth is affine in the pixel
    coordinates on a plane, so a weighted plane fit of 1/depth is exact there; rows with fewer than 3
    neighbours or nearly collinear ones take the inverse-distance weighted mean. Results stay within
    the neighbours' depth range (a fit must not extrapolate wildly)."""
    weights = np.where(valid, 1.0 / (distance + 0.5), 0.0)
    inverse = np.where(valid, 1.0 / np.where(valid, depths, 1.0), 0.0)
    fallback = (weights * inverse).sum(axis=1) / weights.sum(axis=1)
    design = np.concatenate([pixels - keypoints[:, None, :], np.ones((*pixels.shape[:2], 1))], axis=2)
    normal = np.einsum("nk,nki,nkj->nij", weights, design, design)
    rhs = np.einsum("nk,nki,nk->ni", weights, design, inverse)
    # Collinear or too few neighbours make the normal matrix singular: keep the fallback there.
    solvable = (valid.sum(axis=1) >= 3) & (np.linalg.cond(normal) < 1e6)
    fitted = fallback.copy()
    if solvable.any():
        fitted[solvable] = np.linalg.solve(normal[solvable], rhs[solvable][..., None])[:, 2, 0]
    low = np.where(valid, inverse, np.inf).min(axis=1)
    high = np.where(valid, inverse, -np.inf).max(axis=1)
    return 1.0 / np.clip(fitted, low, high)


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
        found = found if found is not None else self.observations.get(canonical_name(name))
        if found is not None and found.geometry is None and intrinsics is not None:
            found.geometry = ViewGeometry.pinhole(pose, intrinsics)
        return found


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
            structure = project_points(self.points, pose, intrinsics, self.cell, self.min_depth)
            structure.geometry = ViewGeometry.pinhole(pose, intrinsics)
            self._cache[name] = structure
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
        # The model's own pose and (possibly distorted) camera, as its points. A copy: the
        # reconstruction's cameras die with it.
        camera = pycolmap.Camera(model=image.camera.model, width=image.camera.width,
                                 height=image.camera.height, params=image.camera.params)
        geometry = ViewGeometry(Pose.from_rigid3d(image.cam_from_world()),
                                lambda xy, camera=camera: camera.cam_from_img(np.asarray(xy, np.float64)))
        result[image.name] = ImageStructure(pixels, points, geometry=geometry)
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

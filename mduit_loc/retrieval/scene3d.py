"""3D structure seen by database images: what turns 2D matches into 2D-3D correspondences.

The map's files are read by ``mduit_loc.datasets.structure`` (``load_scene`` turns what it finds
into a scene); the geometry is here. Two kinds of scene:
- **observations** (a COLMAP model's, or an NVM model's): per database image, the pixel positions
  of its keypoints that have a 3D point, with the model's own pose and camera where it has them.
- a **point cloud** (no observations): projected into the database camera with its pose and
  intrinsics; a coarse z-buffer (``cell`` pixel cells keep their nearest point) removes most
  occluded points — a sparse depth map.
Lifting a matched database keypoint: its ``k`` nearest structure pixels within ``radius`` give a depth
(a weighted plane fit of inverse depth, exact on planar surfaces; refused when their depths disagree:
a depth edge), and the keypoint's own ray is back-projected to that depth. Snapping the keypoint to
the nearest structure point instead would be wrong by the keypoint-to-point distance — several
pixels with sparse structure (the synthetic benchmark's grid of points), i.e. degrees of error in
the pose. Without the camera geometry of an image, lifting falls back to that snapping. The default radius adapts to the
structure: 1.5 x the spacing of its pixels (``ImageStructure.default_radius``), at least 2 px.
Pixel coordinates follow COLMAP (the top-left pixel's centre is at (0.5, 0.5)), as SIFT keypoints do.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
from scipy.spatial import cKDTree

from mduit_loc.datasets.layout import canonical_name
from mduit_loc.datasets.map_files import MapFiles
from mduit_loc.datasets.structure import MapStructure, Unproject, read_structure
from mduit_loc.datasets.types import Intrinsics
from mduit_loc.poses import Pose

log = logging.getLogger(__name__)


@dataclass
class ViewGeometry:
    """Pose and projection of one database image, for back-projecting its keypoints."""

    cam_from_world: Pose
    unproject: Unproject                 # pixels (N, 2) -> normalised coordinates (N, 2)

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
        """1.5 x the spacing of the structure pixels, at least 2 px: the larger of the median distance
        between neighbouring pixels and the mean spacing over their extent. (Multi-view tracks put
        nearly coincident pixels where neighbouring images see the same points: that shrinks the median
        distance to a pixel or two, and lifting would find no structure near most keypoints.)"""
        if len(self.pixels) < 2:
            return 2.0
        distance, _ = self.tree.query(self.pixels, k=2)
        width, height = self.pixels.max(axis=0) - self.pixels.min(axis=0)
        mean_spacing = float(np.sqrt(width * height / len(self.pixels)))
        return max(2.0, 1.5 * max(float(np.median(distance[:, 1])), mean_spacing))

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

    def structure(self, name: str, pose: Pose, intrinsics: Intrinsics | None) -> ImageStructure | None:
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

    def structure(self, name: str, pose: Pose, intrinsics: Intrinsics | None) -> ImageStructure | None:
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


def scene_from_structure(structure: MapStructure) -> Scene:
    """The scene of a map's structure (``datasets.structure``): observations, else a point cloud."""
    if not structure.observations:
        return PointCloudScene(structure.points if structure.points is not None else np.zeros((0, 3)))
    converted: dict[int, ImageStructure] = {}  # an image listed under two names keeps one structure
    observations = {}
    for name, observed in structure.observations.items():
        if id(observed) not in converted:
            geometry = (ViewGeometry(observed.cam_from_world, observed.unproject)
                        if observed.cam_from_world is not None and observed.unproject is not None else None)
            converted[id(observed)] = ImageStructure(observed.pixels, observed.points, geometry=geometry)
        observations[name] = converted[id(observed)]
    return ObservationScene(observations)


def load_scene(files: MapFiles, intrinsics: dict[str, Intrinsics]) -> Scene | None:
    """The best available structure of a map as a scene; None (with a warning) when there is none."""
    structure = read_structure(files, intrinsics)
    if structure is None:
        log.warning("%s: no 3D structure (COLMAP observations or NVM points); pnp falls back to retrieval poses",
                    files.root)
        return None
    return scene_from_structure(structure)

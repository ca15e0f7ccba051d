"""Optional 6-DoF refinement of retrieval poses with pycolmap (``--pose pnp``).

For each query: SIFT on the query and on its top database images (database features are cached),
mutual-check + ratio-test matching, matched database keypoints lifted to 3D through the map's
structure (``scene3d``: back-projected at the depth of the nearby structure), then
``pycolmap.estimate_and_refine_absolute_pose`` (LO-RANSAC P3P +
non-linear refinement) on all 2D-3D correspondences at once. When anything fails — no structure,
no intrinsics, too few correspondences or inliers — the retrieval pose is kept and the reason is
reported in ``RefineResult.status``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
from PIL import Image

from mduit_loc.datasets.images import image_size, load_image
from mduit_loc.datasets.types import Intrinsics
from mduit_loc.errors import FormatError
from mduit_loc.poses import Pose
from mduit_loc.retrieval.scene3d import Scene

if TYPE_CHECKING:  # imported where it runs: heavy, and only PnP needs it
    import pycolmap


@dataclass(kw_only=True)
class RefineOptions:
    num_db_images: int = 5          # top retrieved database images to match against
    max_image_size: int = 1024      # SIFT runs on images down-scaled to this longest side
    max_features: int = 4096
    match_ratio: float = 0.8
    lift_radius_px: float | None = None      # keypoint-to-structure distance; None: adapts to the structure
    ransac_max_error_px: float | None = None  # None: 1 % of the query's longest side (10 px at 1024), >= 1 px
    min_inliers: int = 20            # with fewer, wide-angle low-res images (synthetic) gave wrong poses

    def ransac_threshold(self, intrinsics: Intrinsics) -> float:
        """A fixed pixel threshold would be 10x looser on 112-px images than on 1024-px ones."""
        if self.ransac_max_error_px is not None:
            return self.ransac_max_error_px
        return max(1.0, 0.01 * max(intrinsics.width, intrinsics.height))


@dataclass
class RefineResult:
    pose: Pose
    refined: bool
    num_correspondences: int = 0
    num_inliers: int = 0
    status: str = "ok"


@dataclass
class Features:
    keypoints: pycolmap.FeatureKeypoints      # for the matcher
    descriptors: pycolmap.FeatureDescriptors
    xy: np.ndarray           # (N, 2) in full-resolution pixels (COLMAP convention)


class SiftMatcher:
    """pycolmap SIFT extraction and brute-force matching on CPU."""

    def __init__(self, options: RefineOptions):
        import pycolmap

        self.options = options
        # COLMAP logs an INFO line per extractor/matcher; keep the terminal for our own messages.
        pycolmap.logging.minloglevel = max(int(pycolmap.logging.minloglevel), int(pycolmap.logging.WARNING))
        extraction = pycolmap.FeatureExtractionOptions()
        extraction.sift.max_num_features = options.max_features
        extraction.num_threads = 1
        self._extractor = pycolmap.FeatureExtractor.create(extraction, pycolmap.Device.cpu)
        matching = pycolmap.FeatureMatchingOptions()
        matching.sift.max_ratio = options.match_ratio
        matching.sift.cross_check = True
        matching.num_threads = 1
        self._matcher = pycolmap.FeatureMatcher.create(matching, pycolmap.Device.cpu)

    def extract(self, path: Path) -> Features:
        image = load_image(path)
        height, width = image.shape[:2]
        scale = min(1.0, self.options.max_image_size / max(height, width))
        if scale < 1.0:
            image = load_image(path, (max(1, round(height * scale)), max(1, round(width * scale))))
        gray = np.ascontiguousarray(
            (image.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).round().astype(np.uint8))
        keypoints, descriptors = self._extractor.extract_from_uint8_array(gray)
        xy = np.array([(k.x, k.y) for k in keypoints], np.float64).reshape(-1, 2)
        # Back to full resolution: COLMAP pixel centres are at +0.5, so scale about the corner.
        xy = xy * np.array([width / gray.shape[1], height / gray.shape[0]])
        return Features(keypoints, descriptors, xy)

    def match(self, query: Features, database: Features) -> np.ndarray:
        """(M, 2) index pairs (query keypoint, database keypoint)."""
        if len(query.xy) == 0 or len(database.xy) == 0:
            return np.zeros((0, 2), np.int64)
        return np.asarray(self._matcher.match(query.keypoints, query.descriptors,
                                              database.keypoints, database.descriptors), np.int64).reshape(-1, 2)


def pinhole_camera(intrinsics: Intrinsics):
    import pycolmap

    return pycolmap.Camera(model="PINHOLE", width=int(intrinsics.width), height=int(intrinsics.height),
                           params=[intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy])


def estimate_pose(points2d: np.ndarray, points3d: np.ndarray, intrinsics: Intrinsics,
                  options: RefineOptions) -> tuple[Pose | None, int]:
    """LO-RANSAC + refinement; (cam_from_world or None, inliers)."""
    import pycolmap

    if len(points2d) < 4:
        return None, 0
    estimation = pycolmap.AbsolutePoseEstimationOptions()
    estimation.ransac.max_error = options.ransac_threshold(intrinsics)
    estimation.ransac.random_seed = 0
    result = pycolmap.estimate_and_refine_absolute_pose(
        np.asarray(points2d, np.float64), np.asarray(points3d, np.float64), pinhole_camera(intrinsics),
        estimation, pycolmap.AbsolutePoseRefinementOptions())
    if result is None:
        return None, 0
    return Pose.from_rigid3d(result["cam_from_world"]), int(result["num_inliers"])


@dataclass
class RetrievedImage:
    name: str
    path: Path
    pose: Pose
    intrinsics: Intrinsics | None


class PoseRefiner:
    def __init__(self, scene: Scene | None, options: RefineOptions | None = None,
                 matcher_factory: Callable[[RefineOptions], SiftMatcher] = SiftMatcher):
        self.scene = scene
        self.options = options or RefineOptions()
        self.matcher = matcher_factory(self.options)
        self._database_features: dict[str, Features] = {}

    def _features(self, image: RetrievedImage) -> Features:
        if image.name not in self._database_features:
            self._database_features[image.name] = self.matcher.extract(image.path)
        return self._database_features[image.name]

    def correspondences(self, query: Features, retrieved: Sequence[RetrievedImage]) -> tuple[np.ndarray, np.ndarray]:
        points2d: list[np.ndarray] = []
        points3d: list[np.ndarray] = []
        if self.scene is None:
            return np.zeros((0, 2)), np.zeros((0, 3))
        for image in retrieved[: self.options.num_db_images]:
            structure = self.scene.structure(image.name, image.pose, image.intrinsics)
            if structure is None:
                continue
            database = self._features(image)
            matches = self.matcher.match(query, database)
            if len(matches) == 0:
                continue
            lifted, xyz = structure.lift(database.xy[matches[:, 1]], self.options.lift_radius_px)
            points2d.append(query.xy[matches[lifted, 0]])
            points3d.append(xyz)
        if not points2d:
            return np.zeros((0, 2)), np.zeros((0, 3))
        return np.concatenate(points2d), np.concatenate(points3d)

    def refine(self, query_path: Path, query_intrinsics: Intrinsics | None, retrieved: Sequence[RetrievedImage],
               fallback: Pose) -> RefineResult:
        if self.scene is None:
            return RefineResult(fallback, False, status="no 3D structure in the map")
        if query_intrinsics is None:
            return RefineResult(fallback, False, status="no intrinsics for the query camera")
        query = self.matcher.extract(query_path)
        height, width = load_image_size(query_path)
        if (width, height) != (query_intrinsics.width, query_intrinsics.height):
            query_intrinsics = query_intrinsics.scaled(width, height)
        points2d, points3d = self.correspondences(query, retrieved)
        if len(points2d) < self.options.min_inliers:
            return RefineResult(fallback, False, len(points2d), status="too few 2D-3D correspondences")
        pose, inliers = estimate_pose(points2d, points3d, query_intrinsics, self.options)
        if pose is None or inliers < self.options.min_inliers:
            return RefineResult(fallback, False, len(points2d), inliers, status="too few PnP inliers")
        return RefineResult(pose, True, len(points2d), inliers)


def load_image_size(path: Path) -> tuple[int, int]:
    """(height, width) without decoding the pixels; a file that is no readable image (or above PIL's
    decompression-bomb limit) is the one-line ``FormatError`` of ``load_image``."""
    size, limit = image_size(path), Image.MAX_IMAGE_PIXELS
    if size is None or (limit is not None and size[0] * size[1] > limit):
        load_image(path)   # raises the precise error
        raise FormatError(path, None, "a readable image")   # pragma: no cover - load_image raised
    return size[1], size[0]

"""Writes a dataset in the RobotCar Seasons layout (used by the synthetic benchmark).

Each file is written atomically; ``read_robotcar_seasons`` reads the result without special cases.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np

from mduit_loc.datasets import robotcar_files as files
from mduit_loc.datasets.colmap_text import ColmapImage, write_colmap_text
from mduit_loc.datasets.images import save_image
from mduit_loc.datasets.layout import CAMERAS, ImageName, canonical_name, png_name
from mduit_loc.datasets.nvm import NvmCamera, NvmPoints, write_nvm
from mduit_loc.datasets.types import Intrinsics
from mduit_loc.errors import MduitError
from mduit_loc.poses import Pose

CameraEntry = tuple[str, Pose, Intrinsics]  # canonical name, cam_from_world, intrinsics


def _check_unique(names: Iterable[str], what: str) -> None:
    seen = set()
    for name in names:
        key = canonical_name(name)
        if key in seen:
            raise MduitError(f"{what}: image {name!r} appears twice")
        seen.add(key)


class RobotCarSeasonsWriter:
    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    # --- calibration ----------------------------------------------------------------------
    def write_intrinsics(self, camera: str, intrinsics: Intrinsics) -> Path:
        path = self.root / "intrinsics" / f"{camera}_intrinsics.txt"
        files.write_intrinsics_file(path, intrinsics.fx, intrinsics.fy, intrinsics.cx, intrinsics.cy)
        return path

    def write_extrinsics(self, camera: str, car_from_cam: np.ndarray) -> Path:
        path = self.root / "extrinsics" / f"{camera}_extrinsics.txt"
        files.write_extrinsics_file(path, car_from_cam)
        return path

    # --- images ---------------------------------------------------------------------------
    def image_path(self, name: str) -> Path:
        return self.root / "images" / canonical_name(name)

    def write_image(self, name: str, image: np.ndarray, quality: int = 92) -> Path:
        ImageName.parse(name)  # validates condition/camera/timestamp
        path = self.image_path(name)
        save_image(path, image, quality=quality)
        return path

    # --- models ---------------------------------------------------------------------------
    def write_nvm(self, database: Sequence[CameraEntry], points_xyz: np.ndarray | None = None,
                  points_rgb: np.ndarray | None = None,
                  observations: list[np.ndarray] | None = None) -> Path:
        """``observations[i]``: (n, 4) rows ``image index, feature index, u, v`` (u, v from the image centre)."""
        _check_unique((name for name, _, _ in database), "NVM model")
        cameras = [NvmCamera("./" + png_name(name), k.fx, pose) for name, pose, k in database]
        points = None
        if points_xyz is not None:
            rgb = points_rgb if points_rgb is not None else np.full((len(points_xyz), 3), 128, np.uint8)
            points = NvmPoints(np.asarray(points_xyz), np.asarray(rgb), observations or [])
        path = self.root / files.NVM_FILE
        write_nvm(path, cameras, points)
        return path

    def write_location_model(self, location: int, images: Sequence[CameraEntry],
                             keypoints: Sequence[np.ndarray] | None = None,
                             point_ids: Sequence[np.ndarray] | None = None,
                             points_xyz: np.ndarray | None = None,
                             points_rgb: np.ndarray | None = None) -> Path:
        """One COLMAP model per location, images named ``condition/camera/timestamp.png`` as in the real
        dataset; ``point_ids`` index ``points_xyz`` from 1 (COLMAP ids)."""
        _check_unique((name for name, _, _ in images), f"location {location} model")
        cameras: dict[int, Intrinsics] = {}
        colmap_images = []
        for index, (name, pose, intrinsics) in enumerate(images):
            # camera ids 1, 2, 3 are left, rear, right, as in the real models (kapture's importer relies on it)
            camera_id = CAMERAS.index(ImageName.parse(name).camera) + 1
            if cameras.setdefault(camera_id, intrinsics) != intrinsics:
                raise MduitError(f"location {location} model: image {name!r} has other intrinsics than the "
                                 f"earlier images of its camera")
            kps = keypoints[index] if keypoints is not None else np.zeros((0, 2))
            ids = point_ids[index] if point_ids is not None else np.zeros((0,), np.int64)
            # ``.png`` as in the real dataset (kapture's importer matches ``.*/(\d+)\.png`` there); the
            # files are ``.jpg``, which every reader maps back with ``canonical_name``
            colmap_images.append(ColmapImage(png_name(name), pose, camera_id, kps, ids))
        folder = files.location_model_dir(self.root, location)
        write_colmap_text(folder, cameras, colmap_images, points_xyz, points_rgb)
        return folder

    # --- query lists and splits -----------------------------------------------------------
    def write_query_lists(self, lists: Mapping[int, Sequence[str]]) -> list[Path]:
        _check_unique((n for names in lists.values() for n in names), "per-location query lists")
        paths = []
        for location, names in sorted(lists.items()):
            path = files.query_list_path(self.root, location)
            files.write_name_list(path, (canonical_name(n) for n in names))
            paths.append(path)
        return paths

    def write_train(self, entries: Sequence[tuple[str, Pose]]) -> Path:
        """``robotcar_v2_train.txt``: ``condition/camera/ts.png`` + camera->world 4x4."""
        _check_unique((n for n, _ in entries), files.TRAIN_FILE)
        path = self.root / files.TRAIN_FILE
        files.write_pose_matrix_file(path, ((png_name(n), pose) for n, pose in entries))
        return path

    def write_test(self, names: Sequence[str]) -> Path:
        """``robotcar_v2_test.txt``: ``camera/ts.png`` (no condition, as the real v2 file)."""
        _check_unique(names, files.TEST_FILE)
        lines = []
        for name in names:
            parsed = ImageName.parse(name)
            lines.append(f"{parsed.camera}/{parsed.timestamp}.png")
        path = self.root / files.TEST_FILE
        files.write_name_list(path, lines)
        return path

    def write_test_ground_truth(self, entries: Sequence[tuple[str, Pose]]) -> Path:
        """Separate file read only by the local evaluator (synthetic benchmark)."""
        _check_unique((n for n, _ in entries), files.TEST_GROUND_TRUTH_FILE)
        path = self.root / files.TEST_GROUND_TRUTH_FILE
        files.write_pose_matrix_file(path, ((canonical_name(n), pose) for n, pose in entries))
        return path

"""COLMAP models: a small text writer (cameras.txt, images.txt, points3D.txt) and a pycolmap reader.

Written in the classic text format (no rigs.txt/frames.txt) which every COLMAP and pycolmap
version reads; pycolmap >= 3.12 creates trivial rigs and frames for it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mduit_loc.datasets.types import Intrinsics
from mduit_loc.errors import DataNotFoundError, FormatError
from mduit_loc.io_utils import atomic_open
from mduit_loc.poses import Pose


@dataclass(frozen=True)
class ColmapImage:
    name: str
    pose: Pose                 # cam_from_world
    camera_id: int
    # 2D observations: (M, 2) pixel coordinates (COLMAP: pixel centre at +0.5) and their 3D point ids
    keypoints: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    point3d_ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), dtype=np.int64))


def write_colmap_text(folder: str | Path, cameras: dict[int, Intrinsics], images: list[ColmapImage],
                      points_xyz: np.ndarray | None = None, points_rgb: np.ndarray | None = None) -> None:
    """Write a PINHOLE model. Point tracks are derived from the images' ``point3d_ids``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_open(folder / "cameras.txt", "w", encoding="utf-8") as handle:
        handle.write("# Camera list with one line of data per camera:\n")
        handle.write("#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]\n")
        for camera_id, k in sorted(cameras.items()):
            handle.write(f"{camera_id} PINHOLE {k.width} {k.height} {k.fx:.10g} {k.fy:.10g} {k.cx:.10g} {k.cy:.10g}\n")
    tracks: dict[int, list[tuple[int, int]]] = {}
    with atomic_open(folder / "images.txt", "w", encoding="utf-8") as handle:
        handle.write("# Image list with two lines of data per image:\n")
        handle.write("#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME\n")
        handle.write("#   POINTS2D[] as (X, Y, POINT3D_ID)\n")
        for image_id, image in enumerate(images, start=1):
            q = " ".join(f"{v:.10g}" for v in image.pose.qvec)
            t = " ".join(f"{v + 0.0:.10g}" for v in image.pose.t)  # + 0.0: no "-0"
            handle.write(f"{image_id} {q} {t} {image.camera_id} {image.name}\n")
            observations = []
            for index, ((u, v), point_id) in enumerate(zip(image.keypoints, image.point3d_ids)):
                observations.append(f"{u:.6g} {v:.6g} {int(point_id)}")
                if point_id >= 0:
                    tracks.setdefault(int(point_id), []).append((image_id, index))
            handle.write(" ".join(observations) + "\n")
    n_points = 0 if points_xyz is None else len(points_xyz)
    with atomic_open(folder / "points3D.txt", "w", encoding="utf-8") as handle:
        handle.write("# 3D point list with one line of data per point:\n")
        handle.write("#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)\n")
        for point_id in range(n_points):
            track = tracks.get(point_id + 1, [])
            if not track:
                continue  # COLMAP drops points without observations; so do we
            x, y, z = points_xyz[point_id]
            r, g, b = (int(v) for v in (points_rgb[point_id] if points_rgb is not None else (128, 128, 128)))
            obs = " ".join(f"{i} {j}" for i, j in track)
            handle.write(f"{point_id + 1} {x:.10g} {y:.10g} {z:.10g} {r} {g} {b} 0 {obs}\n")


@dataclass
class ColmapModel:
    images: dict[str, Pose]            # name -> cam_from_world
    image_cameras: dict[str, int]      # name -> camera id
    cameras: dict[int, Intrinsics]
    points_xyz: np.ndarray             # (N, 3)


def _intrinsics_from_pycolmap(camera) -> Intrinsics:
    model = str(camera.model).split(".")[-1]
    params = np.asarray(camera.params, dtype=np.float64)
    if model in ("SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL", "SIMPLE_RADIAL_FISHEYE", "RADIAL_FISHEYE"):
        fx = fy = params[0]
        cx, cy = params[1], params[2]
    else:  # PINHOLE, OPENCV, FULL_OPENCV, ... start with fx fy cx cy
        fx, fy, cx, cy = params[:4]
    return Intrinsics(float(fx), float(fy), float(cx), float(cy), int(camera.width), int(camera.height))


def find_model_folder(path: str | Path) -> Path | None:
    """``path`` itself, ``path/sparse/0``, ``path/sparse`` or ``path/model`` if it holds a COLMAP model."""
    path = Path(path)
    for candidate in (path, path / "sparse" / "0", path / "sparse", path / "model"):
        if any((candidate / f"cameras.{ext}").is_file() for ext in ("bin", "txt")):
            return candidate
    return None


def read_colmap_model(folder: str | Path, with_points: bool = True) -> ColmapModel:
    import pycolmap

    folder = Path(folder)
    if find_model_folder(folder) != folder:
        raise DataNotFoundError(folder, "COLMAP model", "expected cameras/images/points3D .bin or .txt")
    try:
        reconstruction = pycolmap.Reconstruction(str(folder))
    except Exception as err:  # pycolmap raises its own exception types
        raise FormatError(folder, None, "a COLMAP model readable by pycolmap", got=str(err)) from err
    images, image_cameras = {}, {}
    for image in reconstruction.images.values():
        if image.has_pose:
            images[image.name] = Pose.from_rigid3d(image.cam_from_world())
            image_cameras[image.name] = int(image.camera_id)
    cameras = {int(cid): _intrinsics_from_pycolmap(cam) for cid, cam in reconstruction.cameras.items()}
    xyz = (np.array([p.xyz for p in reconstruction.points3D.values()]).reshape(-1, 3)
           if with_points else np.zeros((0, 3)))
    return ColmapModel(images, image_cameras, cameras, xyz)

"""The 3D structure a map's images see, read from its files: what PnP refinement lifts keypoints with.

``read_structure(files, intrinsics)`` tries, in this order:
- **observations** of the map's COLMAP models (a user's map, or RobotCar Seasons' per-location
  models ``colmap_reconstructions/NNN_aligned``): per image, the pixels of its keypoints that have a
  3D point, with the model's own pose and camera;
- the NVM model's points: with observations, per image (pixels relative to the top-left corner;
  the NVM file measures them from the image centre), else as a bare point cloud.
The geometry that uses it (projection, lifting, scenes) is ``mduit_loc.retrieval.scene3d``.
Pixel coordinates follow COLMAP (the top-left pixel's centre is at (0.5, 0.5)).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from mduit_loc.datasets.colmap_text import find_model_folder
from mduit_loc.datasets.layout import ImageName, canonical_name
from mduit_loc.datasets.map_files import MapFiles
from mduit_loc.datasets.nvm import read_nvm
from mduit_loc.datasets.robotcar_files import LOCATION_MODELS_DIR
from mduit_loc.datasets.types import Intrinsics
from mduit_loc.poses import Pose

Unproject = Callable[[np.ndarray], np.ndarray]   # pixels (N, 2) -> normalised camera coordinates (N, 2)


@dataclass(kw_only=True)
class ObservedImage:
    """Pixels (M, 2) of one image's keypoints with the 3D points (M, 3) they see."""

    pixels: np.ndarray
    points: np.ndarray
    cam_from_world: Pose | None = None     # the model's own pose of the image, when it has one
    unproject: Unproject | None = None     # the model's own camera of the image (distortion included)


@dataclass(kw_only=True)
class MapStructure:
    """Observed keypoints per image name (also under its canonical name), or a bare point cloud."""

    observations: dict[str, ObservedImage] = field(default_factory=dict)
    points: np.ndarray | None = None       # (N, 3) without observations
    source: str = ""                       # what it was read from, for messages


def colmap_model_folders(files: MapFiles) -> list[Path]:
    """The COLMAP models of a map: the model of a COLMAP map, RobotCar Seasons' per-location models."""
    if files.kind == "colmap":
        folder = find_model_folder(files.root)
        return [folder] if folder is not None else []
    return sorted((files.root / LOCATION_MODELS_DIR).glob("*_aligned"))


def read_colmap_observations(folder: Path) -> dict[str, ObservedImage]:
    """Observed keypoints with 3D points, per image name, of one COLMAP model (text or binary)."""
    import pycolmap  # heavy and only needed here

    reconstruction = pycolmap.Reconstruction(str(folder))
    result: dict[str, ObservedImage] = {}
    for image in reconstruction.images.values():
        observed = image.get_observation_points2D()
        if len(observed) == 0:
            continue
        pixels = np.array([p.xy for p in observed], np.float64)
        points = np.array([reconstruction.points3D[p.point3D_id].xyz for p in observed], np.float64)
        # The model's own (possibly distorted) camera, as its points. A copy: the reconstruction's
        # cameras die with it.
        camera = pycolmap.Camera(model=image.camera.model, width=image.camera.width,
                                 height=image.camera.height, params=image.camera.params)

        def unproject(xy: np.ndarray, camera: pycolmap.Camera = camera) -> np.ndarray:
            return np.asarray(camera.cam_from_img(np.asarray(xy, np.float64)))

        result[image.name] = ObservedImage(pixels=pixels, points=points,
                                           cam_from_world=Pose.from_rigid3d(image.cam_from_world()),
                                           unproject=unproject)
        result.setdefault(canonical_name(image.name), result[image.name])
    return result


def read_nvm_structure(nvm_path: Path, intrinsics: dict[str, Intrinsics]) -> MapStructure | None:
    """The NVM model's points, per observing image where it lists observations; None without points."""
    model = read_nvm(nvm_path, with_points=True)
    if model.points is None or len(model.points.xyz) == 0:
        return None
    if not model.points.observations or not any(len(o) for o in model.points.observations):
        return MapStructure(points=model.points.xyz, source=str(nvm_path))
    pixels: dict[int, list[tuple[float, float]]] = {}
    points: dict[int, list[np.ndarray]] = {}
    for xyz, observations in zip(model.points.xyz, model.points.observations):
        for image_index, _, u, v in observations:
            pixels.setdefault(int(image_index), []).append((u, v))
            points.setdefault(int(image_index), []).append(xyz)
    result: dict[str, ObservedImage] = {}
    for image_index, uv in pixels.items():
        name = canonical_name(model.cameras[image_index].name)
        camera = intrinsics.get(ImageName.parse(name).camera) if "/" in name else None
        if camera is None:
            continue
        centre = np.array([camera.width / 2.0, camera.height / 2.0])  # NVM: relative to the image centre
        result[name] = ObservedImage(pixels=np.asarray(uv, np.float64) + centre, points=np.asarray(points[image_index]))
    return MapStructure(observations=result, source=str(nvm_path))


def read_structure(files: MapFiles, intrinsics: dict[str, Intrinsics]) -> MapStructure | None:
    """The best available structure of a map (see the module doc); None when it has none."""
    observations: dict[str, ObservedImage] = {}
    folders = colmap_model_folders(files)
    for folder in folders:
        observations.update(read_colmap_observations(folder))
    if observations:
        return MapStructure(observations=observations, source=", ".join(str(f) for f in folders))
    if files.nvm_path is not None and files.nvm_path.is_file():
        return read_nvm_structure(files.nvm_path, intrinsics)
    return None

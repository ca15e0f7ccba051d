"""COLMAP models: a small text writer (cameras.txt, images.txt, points3D.txt) and a reader.

Written in the classic text format (no rigs.txt/frames.txt) which every COLMAP and pycolmap
version reads; pycolmap >= 3.12 creates trivial rigs and frames for it. The reader parses that
text format itself, so that every problem names the file and the line; binary models (and text
models with rigs.txt/frames.txt) are read with pycolmap.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mduit_loc.datasets.types import Intrinsics
from mduit_loc.errors import DataNotFoundError, FormatError
from mduit_loc.io_utils import MAX_ABS_VALUE, atomic_open, parse_floats, parse_int, read_text_lines
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
    if points_xyz is None:
        points_xyz = np.zeros((0, 3))
    with atomic_open(folder / "points3D.txt", "w", encoding="utf-8") as handle:
        handle.write("# 3D point list with one line of data per point:\n")
        handle.write("#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)\n")
        for point_id in range(len(points_xyz)):
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


# Parameter count of every COLMAP camera model (params start fx fy cx cy, or f cx cy for _ONE_FOCAL).
_CAMERA_MODELS = {
    "SIMPLE_PINHOLE": 3, "PINHOLE": 4, "SIMPLE_RADIAL": 4, "RADIAL": 5, "OPENCV": 8, "OPENCV_FISHEYE": 8,
    "FULL_OPENCV": 12, "FOV": 5, "SIMPLE_RADIAL_FISHEYE": 4, "RADIAL_FISHEYE": 5, "THIN_PRISM_FISHEYE": 12,
    "RAD_TAN_THIN_PRISM_FISHEYE": 16, "SIMPLE_DIVISION": 4, "DIVISION": 5, "SIMPLE_FISHEYE": 3, "FISHEYE": 4,
    "EUCM": 6,
}
_ONE_FOCAL = frozenset({"SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL", "SIMPLE_RADIAL_FISHEYE", "RADIAL_FISHEYE",
                        "SIMPLE_DIVISION", "SIMPLE_FISHEYE"})
_MAX_ID = 2**32 - 2  # COLMAP's image and camera ids are uint32, the largest one meaning "invalid"


def _intrinsics_of(model: str, params, width: int, height: int) -> Intrinsics:
    params = np.asarray(params, dtype=np.float64)
    if model in _ONE_FOCAL:
        fx = fy = params[0]
        cx, cy = params[1], params[2]
    else:  # PINHOLE, OPENCV, FULL_OPENCV, ... start with fx fy cx cy
        fx, fy, cx, cy = params[:4]
    return Intrinsics(float(fx), float(fy), float(cx), float(cy), int(width), int(height))


def _intrinsics_from_pycolmap(camera) -> Intrinsics:
    model = str(camera.model).split(".")[-1]
    return _intrinsics_of(model, camera.params, camera.width, camera.height)


def find_model_folder(path: str | Path) -> Path | None:
    """``path`` itself, ``path/sparse/0``, ``path/sparse`` or ``path/model`` if it holds a COLMAP model."""
    path = Path(path)
    for candidate in (path, path / "sparse" / "0", path / "sparse", path / "model"):
        if any((candidate / f"cameras.{ext}").is_file() for ext in ("bin", "txt")):
            return candidate
    return None


def _read_cameras_text(path: Path) -> dict[int, Intrinsics]:
    cameras: dict[int, Intrinsics] = {}
    lines: dict[int, int] = {}
    for number, line in read_text_lines(path, "COLMAP cameras file"):
        tokens = line.split()
        if len(tokens) < 4:
            raise FormatError(path, number, "'CAMERA_ID MODEL WIDTH HEIGHT PARAMS[]'", got=line)
        camera_id = parse_int(tokens[0], path, number, "a camera id (integer) first", got=line,
                              minimum=0, maximum=_MAX_ID)
        if camera_id in lines:
            raise FormatError(path, number, f"each camera id once, but {camera_id} already appears on line "
                              f"{lines[camera_id]}", got=line)
        model = tokens[1]
        if model not in _CAMERA_MODELS:
            raise FormatError(path, number, f"a COLMAP camera model ({', '.join(_CAMERA_MODELS)})", got=model)
        width, height = (parse_int(v, path, number, "a positive integer image width and height", got=line,
                                   minimum=1) for v in tokens[2:4])
        if len(tokens) != 4 + _CAMERA_MODELS[model]:
            raise FormatError(path, number, f"{_CAMERA_MODELS[model]} parameters for a {model} camera", got=line)
        params = parse_floats(tokens[4:], path, number, "numeric camera parameters", got=line)
        intrinsics = _intrinsics_of(model, params, width, height)
        if intrinsics.fx <= 0 or intrinsics.fy <= 0:
            raise FormatError(path, number, "positive focal lengths", got=line)
        cameras[camera_id] = intrinsics
        lines[camera_id] = number
    return cameras


@dataclass
class _TextImage:
    name: str
    pose: Pose
    camera_id: int
    line: int                       # of the POINTS2D line
    point3d_ids: np.ndarray         # (M,) int64, -1 for none


def _parse_points2d(line: str, path: Path, number: int) -> np.ndarray:
    tokens = line.split()
    if len(tokens) % 3:
        raise FormatError(path, number, "a POINTS2D line '(X Y POINT3D_ID)*' (a multiple of 3 tokens)", got=line)
    try:
        values = np.array(tokens, dtype=np.float64).reshape(-1, 3)
    except ValueError:
        raise FormatError(path, number, "numbers in the POINTS2D line '(X Y POINT3D_ID)*'", got=line) from None
    if not np.all(np.abs(values) <= MAX_ABS_VALUE):  # NaN fails too
        raise FormatError(path, number, f"finite POINTS2D numbers of magnitude at most {MAX_ABS_VALUE:g}", got=line)
    ids = values[:, 2]
    if np.any(ids != np.floor(ids)) or np.any(ids < -1):
        raise FormatError(path, number, "POINT3D_IDs that are integers (-1 for none)", got=line)
    return ids.astype(np.int64)


def _read_images_text(path: Path, cameras: dict[int, Intrinsics]) -> dict[int, _TextImage]:
    """Two lines per image: ``IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME``, then its POINTS2D (maybe empty)."""
    images: dict[int, _TextImage] = {}
    names: dict[str, int] = {}
    pending: tuple[int, str, Pose, int] | None = None
    lines = read_text_lines(path, "COLMAP images file", comments=False, keep_empty=True)
    for number, line in lines:
        if pending is None:
            if not line or line.startswith("#"):
                continue
            tokens = line.split()
            if len(tokens) != 10:
                raise FormatError(path, number, "'IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME' (10 tokens; "
                                  "names without spaces)", got=line)
            image_id = parse_int(tokens[0], path, number, "an image id (integer) first", got=line,
                                 minimum=0, maximum=_MAX_ID)
            if image_id in images:
                raise FormatError(path, number, f"each image id once, but {image_id} appears again", got=line)
            values = parse_floats(tokens[1:8], path, number, "7 numbers QW QX QY QZ TX TY TZ", got=line)
            camera_id = parse_int(tokens[8], path, number, "a camera id (integer) before the name", got=line,
                                  minimum=0, maximum=_MAX_ID)
            if camera_id not in cameras:
                raise FormatError(path, number, "a CAMERA_ID listed in cameras.txt", got=line)
            name = tokens[9]
            if name in names:
                raise FormatError(path, number, f"each image name once, but {name!r} already appears on line "
                                  f"{names[name]}", got=line)
            names[name] = number
            try:
                pose = Pose.from_qvec(values[:4], values[4:])
            except ValueError as err:
                raise FormatError(path, number, "a valid quaternion and translation", got=str(err)) from None
            pending = (image_id, name, pose, camera_id)
        else:
            image_id, name, pose, camera_id = pending
            images[image_id] = _TextImage(name, pose, camera_id, number, _parse_points2d(line, path, number))
            pending = None
    if pending is not None:  # the file ends without the last POINTS2D line: no observations
        image_id, name, pose, camera_id = pending
        images[image_id] = _TextImage(name, pose, camera_id, 0, np.zeros((0,), np.int64))
    return images


def _read_points_text(path: Path, images: dict[int, _TextImage], images_path: Path) -> np.ndarray:
    xyz: list[list[float]] = []
    lines: dict[int, int] = {}
    for number, line in read_text_lines(path, "COLMAP points3D file"):
        tokens = line.split()
        if len(tokens) < 8 or len(tokens) % 2:
            raise FormatError(path, number, "'POINT3D_ID X Y Z R G B ERROR (IMAGE_ID POINT2D_IDX)*' (an even "
                              "number of at least 8 tokens)", got=line)
        point_id = parse_int(tokens[0], path, number, "a point id (integer) first", got=line, minimum=0)
        if point_id in lines:
            raise FormatError(path, number, f"each point id once, but {point_id} already appears on line "
                              f"{lines[point_id]}", got=line)
        lines[point_id] = number
        values = parse_floats(tokens[1:4] + tokens[7:8], path, number, "numbers X Y Z and ERROR", got=line)
        for v in tokens[4:7]:
            parse_int(v, path, number, "R G B integers in [0, 255]", got=line, minimum=0, maximum=255)
        for image_token, index_token in zip(tokens[8::2], tokens[9::2]):
            image_id = parse_int(image_token, path, number, "integer IMAGE_IDs in the track", got=line, minimum=0)
            index = parse_int(index_token, path, number, "integer POINT2D_IDXs in the track", got=line, minimum=0)
            image = images.get(image_id)
            if image is None:
                raise FormatError(path, number, f"track IMAGE_IDs listed in images.txt, but {image_id} is not",
                                  got=line)
            if index >= len(image.point3d_ids) or image.point3d_ids[index] != point_id:
                raise FormatError(path, number, f"a track that matches images.txt, but observation {index} of image "
                                  f"{image_id} does not see point {point_id}", got=line)
        xyz.append(values[:3])
    for image in images.values():
        missing = sorted(set(image.point3d_ids[image.point3d_ids >= 0].tolist()) - set(lines))
        if missing:
            raise FormatError(images_path, image.line, f"POINT3D_IDs listed in points3D.txt, but {missing[0]} is not")
    return np.array(xyz, dtype=np.float64).reshape(-1, 3)


def _is_text_model(folder: Path) -> bool:
    """Classic text models; binary ones, or text with rigs.txt/frames.txt (COLMAP >= 3.12), go to pycolmap."""
    if all((folder / f"{name}.bin").is_file() for name in ("cameras", "images", "points3D")):
        return False
    if (folder / "rigs.txt").exists() or (folder / "frames.txt").exists():
        return False
    return (folder / "cameras.txt").is_file() and (folder / "images.txt").is_file()


def _read_text_model(folder: Path, with_points: bool) -> ColmapModel:
    cameras = _read_cameras_text(folder / "cameras.txt")
    text_images = _read_images_text(folder / "images.txt", cameras)
    xyz = (_read_points_text(folder / "points3D.txt", text_images, folder / "images.txt")
           if with_points else np.zeros((0, 3)))
    images = {image.name: image.pose for image in text_images.values()}
    image_cameras = {image.name: image.camera_id for image in text_images.values()}
    return ColmapModel(images, image_cameras, cameras, xyz)


def read_colmap_model(folder: str | Path, with_points: bool = True) -> ColmapModel:
    """A COLMAP model: text files parsed here (errors name file and line), binary ones by pycolmap.

    Without ``with_points`` the 3D points (points3D.txt) are not read.
    """
    folder = Path(folder)
    if find_model_folder(folder) != folder:
        raise DataNotFoundError(folder, "COLMAP model", "expected cameras/images/points3D .bin or .txt")
    if _is_text_model(folder):
        return _read_text_model(folder, with_points)
    return _read_pycolmap_model(folder, with_points)


def _read_pycolmap_model(folder: Path, with_points: bool) -> ColmapModel:
    import pycolmap

    try:
        reconstruction = pycolmap.Reconstruction(str(folder))
        images, image_cameras = {}, {}
        for image in reconstruction.images.values():
            if image.has_pose:
                images[image.name] = Pose.from_rigid3d(image.cam_from_world())
                image_cameras[image.name] = int(image.camera_id)
        cameras = {int(cid): _intrinsics_from_pycolmap(cam) for cid, cam in reconstruction.cameras.items()}
        xyz = (np.array([p.xyz for p in reconstruction.points3D.values()], dtype=np.float64).reshape(-1, 3)
               if with_points else np.zeros((0, 3)))
    except Exception as err:  # pycolmap raises its own exception types; names may not be UTF-8
        message = " ".join(str(err).split())
        raise FormatError(folder, None, "a COLMAP model readable by pycolmap", got=message) from err
    if not np.all(np.abs(xyz) <= MAX_ABS_VALUE):
        raise FormatError(folder, None, f"3D points with finite coordinates of magnitude at most {MAX_ABS_VALUE:g}")
    return ColmapModel(images, image_cameras, cameras, xyz)

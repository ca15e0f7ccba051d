"""Users' own data: a COLMAP model plus an image folder (a map), or a folder per appearance domain."""
from __future__ import annotations

from collections import Counter
from pathlib import Path, PurePosixPath

from mduit_loc.datasets.colmap_text import ColmapModel, find_model_folder, read_colmap_model
from mduit_loc.datasets.images import IMAGE_SUFFIXES
from mduit_loc.datasets.layout import CAMERAS
from mduit_loc.datasets.types import DatabaseImage, Intrinsics, LocalizationDataset, QueryImage
from mduit_loc.errors import DataNotFoundError, MduitError

MAP_CONDITION = "map"


def _folder(name: str) -> str | None:
    parent = PurePosixPath(name).parent.name
    return parent or None


def colmap_camera_names(model: ColmapModel) -> dict[str, str]:
    """Image name -> the name of its camera, for per-camera masks (queries carry camera names, not ids).

    - the image's folder when it is a known rig camera (``left``/``rear``/``right``): hloc's RobotCar
      maps name images ``overcast-reference/<camera>/<ts>.jpg``, whatever their COLMAP camera ids;
    - else the image's folder when folder and COLMAP camera correspond one to one: a rig's images,
      one folder per sensor (the layout COLMAP's rig configuration and ``rigs.txt`` models use);
    - else ``camera<COLMAP camera id>``.
    """
    ids_of_folder: dict[str | None, set[int]] = {}
    folders_of_id: dict[int, set[str | None]] = {}
    for name, camera_id in model.image_cameras.items():
        if name not in model.images:
            continue
        ids_of_folder.setdefault(_folder(name), set()).add(camera_id)
        folders_of_id.setdefault(camera_id, set()).add(_folder(name))
    names: dict[str, str] = {}
    for name in model.images:
        camera_id, folder = model.image_cameras[name], _folder(name)
        if folder in CAMERAS:
            names[name] = folder
        elif folder is not None and ids_of_folder[folder] == {camera_id} and folders_of_id[camera_id] == {folder}:
            names[name] = folder
        else:
            names[name] = f"camera{camera_id}"
    return names


def _camera_intrinsics(model: ColmapModel, cameras: dict[str, str]) -> tuple[dict[str, Intrinsics],
                                                                              dict[str, Intrinsics]]:
    """(per camera name: its COLMAP cameras' most common intrinsics, per image where its own differ).

    Several COLMAP cameras may share a camera name (one camera per image, as COLMAP makes by
    default); PnP must still use each image's own calibration.
    """
    counts: dict[str, Counter[Intrinsics]] = {}
    for name, camera in sorted(cameras.items()):
        counts.setdefault(camera, Counter())[model.cameras[model.image_cameras[name]]] += 1
    per_camera = {camera: counter.most_common(1)[0][0] for camera, counter in counts.items()}
    per_image = {name: own for name, camera in sorted(cameras.items())
                 if (own := model.cameras[model.image_cameras[name]]) != per_camera[camera]}
    return per_camera, per_image


def read_colmap_map(model_path: str | Path, image_root: str | Path | None = None) -> LocalizationDataset:
    """Database = the registered images of a COLMAP model; each image's camera and intrinsics from its
    COLMAP camera (named as ``colmap_camera_names`` says)."""
    model_path = Path(model_path)
    folder = find_model_folder(model_path)
    if folder is None:
        raise DataNotFoundError(model_path, "COLMAP model", "expected cameras/images/points3D .bin or .txt")
    if image_root is None:
        candidates = [model_path / "images", model_path.parent / "images", folder.parent.parent / "images"]
        image_root = next((c for c in candidates if c.is_dir()), None)
        if image_root is None:
            raise DataNotFoundError(model_path / "images", "image folder of the COLMAP map",
                                    "pass --image-root")
    model = read_colmap_model(folder, with_points=False)
    if not model.images:
        raise MduitError(f"{folder}: the COLMAP model has no registered images")
    cameras = colmap_camera_names(model)
    intrinsics, image_intrinsics = _camera_intrinsics(model, cameras)
    database = [DatabaseImage(name, cameras[name], pose, condition=MAP_CONDITION)
                for name, pose in sorted(model.images.items())]
    return LocalizationDataset(Path(model_path), Path(image_root), database, [], intrinsics, {}, kind="colmap",
                               image_intrinsics=image_intrinsics)


def read_domain_folders(root: str | Path) -> LocalizationDataset:
    """``root/<domain>/**/*.jpg``: images grouped by appearance domain, no poses (training only)."""
    root = Path(root)
    if not root.is_dir():
        raise DataNotFoundError(root, "dataset folder")
    queries = []
    for domain_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(domain_dir.rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
                name = path.relative_to(root).as_posix()
                queries.append(QueryImage(name, domain_dir.name, camera="default"))
    domains = {q.condition for q in queries}
    if len(domains) < 2:
        raise MduitError(f"{root}: expected a folder per appearance domain with images (found {len(domains)} "
                         "domain folder(s) with images); or a RobotCar Seasons layout, or a COLMAP model")
    return LocalizationDataset(root, root, [], queries, {}, {}, kind="domain-folders")

"""Users' own data: a COLMAP model plus an image folder (a map), or a folder per appearance domain."""
from __future__ import annotations

from pathlib import Path

from mduit_loc.datasets.colmap_text import find_model_folder, read_colmap_model
from mduit_loc.datasets.images import IMAGE_SUFFIXES
from mduit_loc.datasets.types import DatabaseImage, Intrinsics, LocalizationDataset, QueryImage
from mduit_loc.errors import DataNotFoundError, MduitError

MAP_CONDITION = "map"


def read_colmap_map(model_path: str | Path, image_root: str | Path | None = None) -> LocalizationDataset:
    """Database = the registered images of a COLMAP model; camera = first folder of the name, or camera id."""
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
    database: list[DatabaseImage] = []
    intrinsics: dict[str, Intrinsics] = {}
    for name, pose in sorted(model.images.items()):
        camera = name.split("/")[0] if "/" in name else f"camera{model.image_cameras[name]}"
        intrinsics.setdefault(camera, model.cameras[model.image_cameras[name]])
        database.append(DatabaseImage(name, camera, pose, condition=MAP_CONDITION))
    return LocalizationDataset(Path(model_path), Path(image_root), database, [], intrinsics, {}, kind="colmap")


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

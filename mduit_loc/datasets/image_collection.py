"""Plain images as a map without poses: any folder (searched recursively) or an image list file.

Retrieval without poses is the first thing an hloc user does: index the images, get ranked pairs
for matching. Such a map has database images whose ``pose`` is None; queries against it get pairs
and scores, and no pose. ``open_map`` picks the reader: a RobotCar Seasons folder or a COLMAP model
(maps with poses) as ``open_dataset`` reads them, else every image of the folder or list.

Names are paths relative to the folder (a list file: to ``image_root``, by default the list's own
folder), as hloc names images relative to its image root. An image's camera is its folder when that
is a known camera (``left``/``rear``/``right``), else ``default``.
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath

from mduit_loc.datasets import open_dataset
from mduit_loc.datasets.colmap_text import find_model_folder
from mduit_loc.datasets.images import IMAGE_SUFFIXES, list_images
from mduit_loc.datasets.layout import CAMERAS
from mduit_loc.datasets.robotcar import is_robotcar_layout
from mduit_loc.datasets.types import DatabaseImage, LocalizationDataset
from mduit_loc.errors import DataNotFoundError, FormatError, MduitError
from mduit_loc.io_utils import leaves_folder, read_text_lines

IMAGES_KIND = "images"
IMAGES_CONDITION = "images"
DEFAULT_CAMERA = "default"


def _camera(name: str) -> str:
    folder = PurePosixPath(name).parent.name
    return folder if folder in CAMERAS else DEFAULT_CAMERA


def _collection(root: Path, image_root: Path, names: list[str]) -> LocalizationDataset:
    database = [DatabaseImage(name, _camera(name), None, condition=IMAGES_CONDITION) for name in names]
    return LocalizationDataset(root, image_root, database, [], {}, {}, kind=IMAGES_KIND)


def read_image_folder(root: str | Path) -> LocalizationDataset:
    """Every image below ``root`` (hidden files and folders left out), without poses."""
    root = Path(root)
    names = [path.relative_to(root).as_posix() for path in list_images(root)]
    names = [name for name in names if not any(part.startswith(".") for part in name.split("/"))]
    if not names:
        raise MduitError(f"{root}: no images found (searched recursively for {', '.join(IMAGE_SUFFIXES)})")
    return _collection(root, root, names)


def read_image_list(path: str | Path, image_root: str | Path | None = None) -> LocalizationDataset:
    """The images named in ``path``, one per line (more tokens after the name, such as the
    intrinsics of hloc's query lists, are ignored; ``#`` comments), relative to ``image_root``."""
    path = Path(path)
    root = Path(image_root) if image_root is not None else path.parent
    if not root.is_dir():
        raise DataNotFoundError(root, "image root of the list", "pass --image-root")
    names: list[str] = []
    lines: dict[str, int] = {}
    for number, line in read_text_lines(path, "image list"):
        name = line.split()[0].replace("\\", "/")
        while name.startswith("./"):
            name = name[2:]
        if Path(name).is_absolute():
            try:
                name = Path(name).resolve().relative_to(root.resolve()).as_posix()
            except ValueError:
                raise FormatError(path, number, f"images under the image root {root} (--image-root)",
                                  got=line) from None
        if leaves_folder(name):
            raise FormatError(path, number, "an image name relative to the image root (no '..')", got=line)
        if name in lines:
            raise FormatError(path, number, f"each image once, but {name!r} already appears on line {lines[name]}")
        lines[name] = number
        names.append(name)
    if not names:
        raise MduitError(f"{path}: the image list is empty")
    missing = [name for name in names if not (root / name).is_file()]
    if missing:
        raise DataNotFoundError(root / missing[0], "listed image",
                                f"{len(missing)} of the {len(names)} images of {path} are not under {root}; "
                                "pass --image-root")
    return _collection(path.parent, root, names)


def open_map(path: str | Path, image_root: str | Path | None = None) -> LocalizationDataset:
    """A map to index: a RobotCar Seasons folder or a COLMAP model (with poses), else any folder of
    images or an image list file (without poses)."""
    path = Path(path)
    if path.is_file():
        return read_image_list(path, image_root)
    if path.is_dir() and not is_robotcar_layout(path) and find_model_folder(path) is None:
        return read_image_folder(path)
    return open_dataset(path, image_root)

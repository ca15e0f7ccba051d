"""Turn ``--images`` arguments into query images with canonical names, camera and location.

Each argument is one of:
- an image name relative to ``image_root`` (when no such path exists from the working directory);
- a dataset folder (RobotCar Seasons layout): all its queries (``split`` test / train / all);
- an image file;
- a folder of images (searched recursively);
- a text file listing image names, one per line, relative to ``image_root`` (or absolute paths).
Names in the outputs are relative to the image root when the image lies under it (so evaluators
match ground truth), else relative to the folder given (or the path as given, for single files).
The camera comes from the dataset, else from a ``<condition>/<camera>/<file>`` or
``<camera>/<file>`` name, else from the parent folder when it is a database camera; the location
from the dataset's per-location query lists. Unknown values are None (no mask on them).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from mduit_loc.datasets import open_dataset
from mduit_loc.datasets.images import IMAGE_SUFFIXES, list_images
from mduit_loc.datasets.layout import canonical_name
from mduit_loc.datasets.robotcar import is_robotcar_layout
from mduit_loc.datasets.robotcar_files import read_query_lists
from mduit_loc.errors import DataNotFoundError, FormatError, MduitError
from mduit_loc.io_utils import read_text_lines

SPLITS = ("test", "train", "all")


@dataclass(frozen=True)
class QueryItem:
    name: str
    path: Path
    camera: str | None = None
    location: int | None = None


def _relative_name(path: Path, image_root: Path | None, folder: Path | None) -> str:
    for base in (image_root, folder):
        if base is not None:
            try:
                return path.resolve().relative_to(base.resolve()).as_posix()
            except ValueError:
                continue
    return path.as_posix()


def _existing_image(image_root: Path, name: str) -> Path:
    """``name`` under ``image_root``; also tries the .jpg/.png twin (RobotCar lists say .png)."""
    candidates = [image_root / name, image_root / canonical_name(name)]
    if name.lower().endswith(".jpg"):
        candidates.append(image_root / (name[:-4] + ".png"))
    return next((c for c in candidates if c.is_file()), candidates[0])


def _read_list(path: Path, image_root: Path | None) -> list[tuple[str, Path]]:
    entries = []
    for number, text in read_text_lines(path, "query list"):
        name = text.split()[0]  # hloc query lists carry intrinsics after the name; we only need the name
        if Path(name).is_absolute():
            entries.append((Path(name).as_posix(), Path(name)))
            continue
        if image_root is None:
            raise FormatError(path, number, "absolute image paths, or names with --image-root given "
                              "(or an index built on a dataset)", got=text)
        entries.append((canonical_name(name), _existing_image(image_root, name)))
    return entries


def _dataset_queries(root: Path, split: str) -> list[QueryItem]:
    dataset = open_dataset(root)
    queries = [q for q in dataset.queries if split == "all" or q.split == split]
    if not queries:
        raise MduitError(f"{root}: the dataset has no queries of split {split!r} "
                         f"({len(dataset.queries)} queries in all; use --split all)")
    return [QueryItem(q.name, dataset.image_path(q.name), q.camera, q.location) for q in queries]


def _is_dataset(path: Path) -> bool:
    return path.is_dir() and is_robotcar_layout(path)


def query_locations(dataset_root: Path | None) -> dict[str, int]:
    """Canonical query name -> location, from ``queries_per_location`` (empty if none)."""
    if dataset_root is None or not Path(dataset_root).is_dir():
        return {}
    return {name: location for location, names in read_query_lists(dataset_root).items() for name in names}


def _camera_of(name: str, path: Path, known_cameras: Sequence[str]) -> str | None:
    parts = canonical_name(name).split("/")
    for part in (parts[-2] if len(parts) >= 2 else None, path.parent.name):
        if part is not None and part in known_cameras:
            return part
    return None


def resolve_queries(inputs: Sequence[str | Path], image_root: Path | None = None, split: str = "all",
                    dataset_root: Path | None = None, known_cameras: Sequence[str] = ()) -> list[QueryItem]:
    """All query images named by ``inputs``; duplicates (same name) are an error."""
    if split not in SPLITS:
        raise MduitError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    if not inputs:
        raise MduitError("no query images given (--images)")
    locations = query_locations(dataset_root)
    items: list[QueryItem] = []
    for given in inputs:
        path = Path(given)
        if not path.exists() and image_root is not None and not path.is_absolute():
            # A name relative to the image root (e.g. from a list given programmatically).
            image_path = _existing_image(image_root, str(given))
            if image_path.is_file():
                name = canonical_name(str(given))
                items.append(QueryItem(name, image_path, _camera_of(name, image_path, known_cameras),
                                       locations.get(name)))
                continue
        if _is_dataset(path):
            items += _dataset_queries(path, split)
            continue
        if path.is_dir():
            found = [(_relative_name(p, image_root, path), p) for p in list_images(path)]
        elif path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
            found = [(_relative_name(path, image_root, None), path)]
        elif path.is_file():
            found = _read_list(path, image_root)
        else:
            raise DataNotFoundError(path, "query images", "give image files, folders, a list file or a dataset")
        for name, image_path in found:
            key = canonical_name(name)
            camera = _camera_of(name, image_path, known_cameras)
            items.append(QueryItem(name, image_path, camera, locations.get(key)))
    if not items:
        raise MduitError(f"no query images found in {', '.join(map(str, inputs))}")
    seen: dict[str, Path] = {}
    for item in items:
        if item.name in seen:
            raise MduitError(f"query {item.name!r} is given twice ({seen[item.name]} and {item.path})")
        seen[item.name] = item.path
    return items

"""Reader for the RobotCar Seasons layout (the real dataset and the synthetic benchmark alike).

Sources of truth, in order:
- database images and poses: ``3D-models/all-merged/all.nvm`` (overcast-reference);
- database locations: ``3D-models/individual/colmap_reconstructions/NNN_aligned`` image names;
- queries and their locations: ``queries_per_location/queries_location_NNN.txt``; without them,
  the ``images/<condition>/<camera>/`` folders of the query conditions;
- query ground truth: ``robotcar_v2_train.txt`` (the ``train`` split); ``robotcar_v2_test.txt``
  marks the ``test`` split. v2 names may lack the condition; it is found by timestamp.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mduit_loc.datasets import robotcar_files as files
from mduit_loc.datasets.colmap_text import read_colmap_model
from mduit_loc.datasets.images import image_size
from mduit_loc.datasets.layout import (
    CAMERAS,
    IMAGE_SIZE,
    QUERY_CONDITIONS,
    REFERENCE_CONDITION,
    ImageName,
    canonical_name,
)
from mduit_loc.datasets.nvm import read_nvm
from mduit_loc.datasets.types import DatabaseImage, Intrinsics, LocalizationDataset, QueryImage
from mduit_loc.errors import DataNotFoundError, FormatError
from mduit_loc.poses import Pose


def is_robotcar_layout(root: str | Path) -> bool:
    root = Path(root)
    return (root / "images").is_dir() and ((root / files.NVM_FILE).is_file() or (root / "intrinsics").is_dir())


def _image_size(image_root: Path, camera: str) -> tuple[int, int]:
    """(width, height) of the first readable image of ``camera``; the real dataset's 1024x1024 if none.

    An unreadable image is skipped here (it is reported where it is decoded, or by ``mduit-loc check``)
    so that one bad file does not make the whole dataset unreadable.
    """
    for condition_dir in sorted(image_root.iterdir()) if image_root.is_dir() else []:
        folder = condition_dir / camera
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.suffix.lower() in (".jpg", ".jpeg", ".png"):
                    size = image_size(path)
                    if size is not None:
                        return size
    return IMAGE_SIZE


def read_intrinsics(root: Path) -> dict[str, Intrinsics]:
    intrinsics = {}
    for camera in CAMERAS:
        path = root / "intrinsics" / f"{camera}_intrinsics.txt"
        if path.is_file():
            values = files.read_intrinsics_file(path)
            width, height = _image_size(root / "images", camera)
            intrinsics[camera] = Intrinsics(values["fx"], values["fy"], values["cx"], values["cy"], width, height)
    return intrinsics


def read_rig(root: Path) -> dict[str, np.ndarray]:
    rig = {}
    for camera in CAMERAS:
        path = root / "extrinsics" / f"{camera}_extrinsics.txt"
        if path.is_file():
            rig[camera] = files.read_extrinsics_file(path)
    return rig


def _database_locations(root: Path) -> dict[str, int]:
    """Database image name -> location, from the per-location COLMAP models' image lists."""
    folder = root / files.LOCATION_MODELS_DIR
    locations: dict[str, int] = {}
    if not folder.is_dir():
        return locations
    for model_dir in sorted(folder.glob("*_aligned")):
        prefix = model_dir.name.split("_")[0]
        if not prefix.isdigit():
            continue
        for name in read_colmap_model(model_dir, with_points=False).images:
            locations[canonical_name(name)] = int(prefix)
    return locations


def read_database(root: Path) -> list[DatabaseImage]:
    nvm_path = root / files.NVM_FILE
    if not nvm_path.is_file():
        raise DataNotFoundError(nvm_path, "reference model (database poses)",
                                "a RobotCar Seasons folder has 3D-models/all-merged/all.nvm")
    locations = _database_locations(root)
    database = []
    written: dict[str, str] = {}
    for camera in read_nvm(nvm_path, with_points=False).cameras:
        name = canonical_name(camera.name)
        try:
            parsed = ImageName.parse(name)
        except ValueError as err:
            raise FormatError(nvm_path, None, "camera names 'condition/camera/timestamp.png'", got=str(err)) from None
        if name in written:
            raise FormatError(nvm_path, None, f"each image once, but {written[name]!r} and {camera.name!r} "
                              "are the same image")
        written[name] = camera.name
        database.append(DatabaseImage(name, parsed.camera, camera.pose, parsed.condition or REFERENCE_CONDITION,
                                      locations.get(name)))
    return database


def _scan_query_images(image_root: Path) -> list[str]:
    names = []
    for condition in QUERY_CONDITIONS:
        for camera in CAMERAS:
            folder = image_root / condition / camera
            if folder.is_dir():
                names += [f"{condition}/{camera}/{p.stem}.jpg" for p in sorted(folder.iterdir())
                          if p.suffix.lower() in (".jpg", ".jpeg", ".png")]
    return names


class _TimestampIndex:
    """Resolves v2 names ``rear/<ts>.png`` (no condition) to canonical names."""

    def __init__(self, names: list[str]):
        self._by_key = {}
        for name in names:
            parsed = ImageName.parse(name)
            self._by_key[(parsed.camera, parsed.timestamp)] = name

    def resolve(self, written: str, path: Path, number: int) -> str:
        try:
            parsed = ImageName.parse(written)
        except ValueError as err:
            raise FormatError(path, number, "an image name '[condition/]camera/timestamp.png'", got=str(err)) from None
        name = self._by_key.get((parsed.camera, parsed.timestamp))
        if name is None:
            raise FormatError(path, number, "an image that is one of the dataset's queries", got=written)
        if parsed.condition is not None and parsed.condition != ImageName.parse(name).condition:
            raise FormatError(path, number, f"condition {ImageName.parse(name).condition!r} for this timestamp",
                              got=written)
        return name


def read_queries(root: Path) -> list[QueryImage]:
    query_lists = files.read_query_lists(root)
    location_of = {name: loc for loc, names in query_lists.items() for name in names}
    names = sorted(location_of) if location_of else _scan_query_images(root / "images")
    index = _TimestampIndex(names)
    ground_truth: dict[str, Pose] = {}
    split: dict[str, str] = {}
    train_path = root / files.TRAIN_FILE
    if train_path.is_file():
        for number, written, pose in files.read_pose_matrix_file(train_path, "training ground truth"):
            name = index.resolve(written, train_path, number)
            ground_truth[name] = pose
            split[name] = "train"
    test_path = root / files.TEST_FILE
    if test_path.is_file():
        for number, written in files.read_name_list(test_path, "test list", require_condition=False):
            name = index.resolve(written, test_path, number)
            if split.get(name) == "train":
                raise FormatError(test_path, number, "test images that are not in the training list", got=written)
            split[name] = "test"
    _propagate_split_to_other_cameras(names, split)
    queries = []
    for name in names:
        parsed = ImageName.parse(name)
        if parsed.condition is None:  # the query lists name every image with its condition
            raise FormatError(root / files.QUERY_LISTS_DIR, None, "query names '<condition>/<camera>/<timestamp>.jpg'",
                              got=name)
        queries.append(QueryImage(name, parsed.condition, parsed.camera, location_of.get(name),
                                  ground_truth.get(name), split.get(name)))
    return queries


def _propagate_split_to_other_cameras(names: list[str], split: dict[str, str]) -> None:
    """The v2 lists name rear images; left/right images of the same frame share their split."""
    by_frame: dict[tuple[str | None, str], str] = {}
    for name, value in split.items():
        parsed = ImageName.parse(name)
        by_frame[(parsed.condition, parsed.timestamp)] = value
    for name in names:
        if name not in split:
            parsed = ImageName.parse(name)
            shared = by_frame.get((parsed.condition, parsed.timestamp))
            if shared is not None:
                split[name] = shared


def read_robotcar_seasons(root: str | Path) -> LocalizationDataset:
    root = Path(root)
    if not root.is_dir():
        raise DataNotFoundError(root, "dataset folder")
    if not (root / "images").is_dir():
        raise DataNotFoundError(root / "images", "image folder",
                                "a RobotCar Seasons folder has images/<condition>/<camera>/")
    return LocalizationDataset(
        root=root,
        image_root=root / "images",
        database=read_database(root),
        queries=read_queries(root),
        intrinsics=read_intrinsics(root),
        rig=read_rig(root),
        kind="robotcar-seasons",
        nvm_path=root / files.NVM_FILE,
    )

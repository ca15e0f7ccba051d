"""The vector -> (database image, appearance) map of an index, stored as ``database.tsv``.

One row per index vector, in vector-id order (tab-separated, with a header)::

    vector_id  image  appearance  camera  location  qw  qx  qy  qz  tx  ty  tz

``appearance`` is ``original`` for the untranslated image, otherwise the name of the target
appearance it was translated into; ``location`` is ``-`` when unknown; the pose is the database
image's cam_from_world, ``-`` in all seven columns for an image without one (a plain image folder
indexed for pairs). In memory the table is normalised into per-image and per-vector arrays so
that masks and the collapse of translated variants are vectorised.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from mduit_loc.errors import FormatError, MduitError
from mduit_loc.io_utils import atomic_open, leaves_folder, parse_floats, read_text_lines
from mduit_loc.poses import Pose

ORIGINAL = "original"
NO_LOCATION = -1
NO_POSE = "-"          # each pose column of an image without a pose
COLUMNS = ("vector_id", "image", "appearance", "camera", "location", "qw", "qx", "qy", "qz", "tx", "ty", "tz")


@dataclass
class DatabaseTable:
    image_names: list[str]          # (M,) distinct database images
    image_cameras: np.ndarray       # (M,) int codes into ``cameras``
    image_locations: np.ndarray     # (M,) int, NO_LOCATION when unknown
    image_poses: np.ndarray         # (M, 7) qw qx qy qz tx ty tz (cam_from_world); NaN rows: no pose
    cameras: list[str]              # camera code -> name
    appearances: list[str]          # appearance code -> name (``original`` first)
    vector_images: np.ndarray       # (V,) int image index of each vector
    vector_appearances: np.ndarray  # (V,) int appearance code of each vector

    def __post_init__(self):
        if len(self.vector_images) != len(self.vector_appearances):
            raise ValueError("vector_images and vector_appearances differ in length")

    @property
    def num_images(self) -> int:
        return len(self.image_names)

    @property
    def num_vectors(self) -> int:
        return len(self.vector_images)

    def pose(self, image_index: int) -> Pose:
        values = self.image_poses[image_index]
        if not self.has_pose(image_index):
            raise MduitError(f"database image {self.image_names[image_index]!r} has no pose")
        return Pose.from_qvec(values[:4], values[4:])

    def has_pose(self, image_index: int) -> bool:
        return bool(np.isfinite(self.image_poses[image_index, 0]))

    @property
    def num_posed(self) -> int:
        """Database images with a pose (0 for a plain image folder)."""
        return int(np.isfinite(self.image_poses[:, 0]).sum())

    def camera_code(self, camera: str | None) -> int:
        """Code of ``camera``; -1 if the database has no image of that camera (or None)."""
        return self.cameras.index(camera) if camera in self.cameras else -1

    def vector_cameras(self) -> np.ndarray:
        return self.image_cameras[self.vector_images]

    def vector_locations(self) -> np.ndarray:
        return self.image_locations[self.vector_images]

    @property
    def max_variants(self) -> int:
        """Most vectors of one image (1 + translated appearances); cached, it is O(V) to compute."""
        cached = self.__dict__.get("_max_variants")
        if cached is None or cached[0] is not self.vector_images:
            count = int(np.bincount(self.vector_images).max()) if len(self.vector_images) else 1
            cached = self.__dict__["_max_variants"] = (self.vector_images, count)
        return cached[1]

    @classmethod
    def build(cls, names: Sequence[str], cameras: Sequence[str], locations: Sequence[int | None],
              poses: Sequence[Pose | None], appearances: Sequence[str], image_major: bool = True) -> "DatabaseTable":
        """Every image with every appearance, vectors ordered image-major (image 0's variants first)."""
        camera_names = sorted(set(cameras))
        num_images, num_appearances = len(names), len(appearances)
        image_ids = np.repeat(np.arange(num_images), num_appearances)
        appearance_ids = np.tile(np.arange(num_appearances), num_images)
        if not image_major:
            image_ids = np.tile(np.arange(num_images), num_appearances)
            appearance_ids = np.repeat(np.arange(num_appearances), num_images)
        return cls(
            image_names=list(names),
            image_cameras=np.array([camera_names.index(c) for c in cameras], dtype=np.int64),
            image_locations=np.array([NO_LOCATION if loc is None else int(loc) for loc in locations], np.int64),
            image_poses=np.array([[*p.qvec, *p.t] if p is not None else [np.nan] * 7 for p in poses],
                                 np.float64).reshape(-1, 7),
            cameras=camera_names,
            appearances=list(appearances),
            vector_images=image_ids.astype(np.int64),
            vector_appearances=appearance_ids.astype(np.int64),
        )


def write_table(path: str | Path, table: DatabaseTable) -> None:
    for name in [*table.image_names, *table.appearances, *table.cameras]:
        if any(c in name for c in "\t\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"):
            raise MduitError(f"names with tabs or line breaks cannot be stored in {Path(path).name}: {name!r}")
    for name in table.image_names:
        if leaves_folder(name):
            raise MduitError(f"image names must be relative to the image folder (not absolute, no '..'): {name!r}")
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.write("\t".join(COLUMNS) + "\n")
        for vector_id, (image, appearance) in enumerate(zip(table.vector_images, table.vector_appearances)):
            location = table.image_locations[image]
            pose = "\t".join(f"{v:.12g}" if table.has_pose(image) else NO_POSE for v in table.image_poses[image])
            handle.write(f"{vector_id}\t{table.image_names[image]}\t{table.appearances[appearance]}\t"
                         f"{table.cameras[table.image_cameras[image]]}\t"
                         f"{'-' if location == NO_LOCATION else location}\t{pose}\n")


def _parse_row(line: str, path: Path, number: int, expected_id: int):
    tokens = line.split("\t")
    if len(tokens) != len(COLUMNS):
        raise FormatError(path, number, f"{len(COLUMNS)} tab-separated columns ({' '.join(COLUMNS)})", got=line)
    try:
        vector_id = int(tokens[0])
        location = NO_LOCATION if tokens[4] == "-" else int(tokens[4])
    except ValueError:
        raise FormatError(path, number, "an integer id and a location (integer or -)", got=line) from None
    if vector_id != expected_id:
        raise FormatError(path, number, f"vector ids in order, {expected_id} here", got=tokens[0])
    if location < 0 and location != NO_LOCATION:
        raise FormatError(path, number, "a location >= 0 (or -)", got=tokens[4])
    name, appearance, camera = tokens[1:4]
    if leaves_folder(name):
        raise FormatError(path, number, "an image name relative to the image folder (not absolute, no '..')",
                          got=name)
    if not appearance:
        raise FormatError(path, number, "an appearance name (original, or the target appearance)", got=line)
    if tokens[5:] == [NO_POSE] * 7:  # an image without a pose (a plain image folder)
        return name, appearance, camera, location, None
    pose = parse_floats(tokens[5:], path, number, "7 pose numbers qw qx qy qz tx ty tz (or 7 times -)", got=line)
    if math.hypot(*pose[:4]) < 1e-12:
        raise FormatError(path, number, "a quaternion of non-zero norm", got=" ".join(tokens[5:9]))
    return name, appearance, camera, location, pose


def read_table(path: str | Path) -> DatabaseTable:
    """The table written by ``write_table``; every row checked (a bad pose, id or name is a
    ``FormatError`` naming the file and line, not an error at query time)."""
    path = Path(path)
    image_index: dict[str, int] = {}
    names: list[str] = []
    cams: list[str] = []
    locs: list[int | None] = []
    poses: list[list[float] | None] = []
    appearances = [ORIGINAL]
    vector_images: list[int] = []
    vector_appearances: list[int] = []
    # Each line is stripped by the reader; the first and last columns are numbers, so no column is lost.
    lines = read_text_lines(path, "index database table", comments=False)
    number, header = next(lines, (1, ""))
    if number != 1 or tuple(header.split("\t")) != COLUMNS:
        raise FormatError(path, 1, "the header " + " ".join(COLUMNS), got=header if number == 1 else "")
    for number, line in lines:
        name, appearance, camera, location, pose = _parse_row(line, path, number, len(vector_images))
        if name not in image_index:
            image_index[name] = len(names)
            names.append(name)
            cams.append(camera)
            locs.append(location)
            poses.append(pose)
        elif (camera, location, pose) != (cams[image_index[name]], locs[image_index[name]], poses[image_index[name]]):
            raise FormatError(path, number, f"the camera, location and pose of {name!r} as on its first row")
        if appearance not in appearances:
            appearances.append(appearance)
        vector_images.append(image_index[name])
        vector_appearances.append(appearances.index(appearance))
    camera_names = sorted(set(cams))
    return DatabaseTable(
        image_names=names,
        image_cameras=np.array([camera_names.index(c) for c in cams], np.int64),
        image_locations=np.array(locs, np.int64),
        image_poses=np.array([[math.nan] * 7 if p is None else p for p in poses], np.float64).reshape(-1, 7),
        cameras=camera_names,
        appearances=appearances,
        vector_images=np.array(vector_images, np.int64),
        vector_appearances=np.array(vector_appearances, np.int64),
    )

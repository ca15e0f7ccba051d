"""What every dataset exposes, whatever its on-disk layout.

Readers (RobotCar Seasons, COLMAP map + images, folder-per-domain) all return a
``LocalizationDataset``; training, indexing and evaluation only use this interface.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mduit_loc.datasets.layout import day_or_night
from mduit_loc.errors import MduitError
from mduit_loc.io_utils import leaves_folder
from mduit_loc.poses import Pose


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels for images of ``width`` x ``height``."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    def scaled(self, width: int, height: int) -> "Intrinsics":
        sx, sy = width / self.width, height / self.height
        return Intrinsics(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, width, height)


@dataclass(frozen=True)
class DatabaseImage:
    """A map image, with its pose (cam_from_world) where the map has one."""

    name: str                 # canonical, relative to the image root
    camera: str
    pose: Pose | None         # None: a plain image folder indexed for retrieval only (pairs, no poses)
    condition: str = "overcast-reference"
    location: int | None = None


@dataclass(frozen=True)
class QueryImage:
    """A query image; ``pose`` is the ground truth where the dataset publishes it."""

    name: str                 # canonical, relative to the image root
    condition: str
    camera: str
    location: int | None = None
    pose: Pose | None = None
    split: str | None = None  # "train" (ground truth public), "test", or None

    @property
    def timestamp(self) -> str:
        return Path(self.name).stem

    @property
    def day_night(self) -> str:
        return day_or_night(self.condition)


@dataclass(frozen=True)
class TrainingImage:
    """An image for translation/descriptor training: its appearance domain, and where known its pose
    or a place label (images with the same label show the same place, e.g. one file name in every
    domain folder of Nordland)."""

    name: str
    path: Path
    domain: str
    pose: Pose | None = None
    camera: str | None = None
    place: str | None = None


@dataclass
class LocalizationDataset:
    """A map (database with poses) plus queries, intrinsics and the camera rig."""

    root: Path
    image_root: Path
    database: list[DatabaseImage]
    queries: list[QueryImage]
    intrinsics: dict[str, Intrinsics] = field(default_factory=dict)
    rig: dict[str, np.ndarray] = field(default_factory=dict)  # camera -> car_from_cam 4x4
    kind: str = "robotcar-seasons"
    nvm_path: Path | None = None
    # Images whose own calibration differs from their camera's entry in ``intrinsics`` (a COLMAP map
    # with a camera per image): PnP takes these first.
    image_intrinsics: dict[str, Intrinsics] = field(default_factory=dict)

    def image_path(self, name: str) -> Path:
        """``image_root / name``; a name that would lead out of the image folder (absolute, or with ``..``:
        a crafted map file) is refused, whatever reader produced it."""
        if leaves_folder(name):
            raise MduitError(f"{self.root}: image name {name!r} leads out of the image folder {self.image_root} "
                             "(names are relative to it, without '..')")
        return self.image_root / name

    def intrinsics_of(self, name: str, camera: str | None) -> Intrinsics | None:
        """The calibration of image ``name`` (of ``camera``), None when the dataset has none."""
        return self.image_intrinsics.get(name) or (self.intrinsics.get(camera) if camera else None)

    @property
    def conditions(self) -> list[str]:
        seen = {img.condition for img in self.database} | {q.condition for q in self.queries}
        return sorted(seen)

    def database_by_name(self) -> dict[str, DatabaseImage]:
        return {img.name: img for img in self.database}

    def queries_by_name(self) -> dict[str, QueryImage]:
        return {q.name: q for q in self.queries}

    def training_images(self, include_test_queries: bool = True) -> list[TrainingImage]:
        """Database images (with poses) and query images (poses only for the train split).

        Test queries are unlabelled images of their condition; they are usable for
        unsupervised translation training, never their ground truth.
        """
        images = [TrainingImage(d.name, self.image_path(d.name), d.condition, d.pose, d.camera)
                  for d in self.database]
        rig_poses = self._training_poses_through_rig()
        places = self._shared_name_places()
        for query in self.queries:
            if query.split == "test" and not include_test_queries:
                continue
            pose = (query.pose or rig_poses.get(query.name)) if query.split != "test" else None
            images.append(TrainingImage(query.name, self.image_path(query.name), query.condition,
                                        pose, query.camera, places.get(query.name)))
        return images

    def _training_poses_through_rig(self) -> dict[str, Pose]:
        """Poses of the training queries that the ground truth omits, from another camera of the same
        frame and the rig (RobotCar Seasons' v2 training list gives the rear camera only)."""
        if not self.rig:
            return {}
        known = {(q.condition, q.timestamp): q for q in self.queries
                 if q.split == "train" and q.pose is not None and q.camera in self.rig}
        derived = {}
        for query in self.queries:
            frame = known.get((query.condition, query.timestamp))
            if query.split != "train" or query.pose is not None or frame is None or query.camera not in self.rig:
                continue
            assert frame.pose is not None
            world_from_car = frame.pose.world_from_cam_matrix() @ np.linalg.inv(self.rig[frame.camera])
            derived[query.name] = Pose.from_world_from_cam_matrix(world_from_car @ self.rig[query.camera])
        return derived

    def _shared_name_places(self) -> dict[str, str]:
        """Place labels of a folder-per-domain dataset whose files share names across domains (the same
        name is the same place, as in Nordland): the path inside the domain folder, for images whose
        name occurs in another domain too, when most images have such a counterpart."""
        if self.kind != "domain-folders":
            return {}
        inside = {q.name: q.name.split("/", 1)[-1] for q in self.queries}
        domains_of: dict[str, set[str]] = {}
        for query in self.queries:
            domains_of.setdefault(inside[query.name], set()).add(query.condition)
        shared = {name for name, found in domains_of.items() if len(found) > 1}
        labelled = [q.name for q in self.queries if inside[q.name] in shared]
        return {name: inside[name] for name in labelled} if 2 * len(labelled) > len(self.queries) else {}

"""The aligned set of a synthetic benchmark: database poses rendered under every condition.

``aligned/aligned.txt`` lists the images, one ``<condition>/<camera>/<timestamp>.jpg`` per line,
relative to ``aligned/``. All images of one pose (camera and timestamp) are rendered at exactly the
pose of the database image ``overcast-reference/<camera>/<timestamp>.jpg``, with the same scene (the
town and the reference traversal's parked cars and pedestrians) under each condition's light,
weather and season: pixel-aligned ground truth for image translation, which real datasets lack.
Only what a condition changes differs (snow on the ground, foliage of the season's trees, rain
streaks, lit windows). The ``overcast-reference`` image is the database image itself. Every pose
has the same conditions.

    aligned = read_aligned_set("data/synth")
    for night, day in aligned.pairs("night", "overcast-reference"):
        ...  # paths of a night image and the day image at the same pose
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from mduit_loc.datasets.layout import ALL_CONDITIONS, REFERENCE_CONDITION, ImageName
from mduit_loc.errors import DataNotFoundError, FormatError, MduitError
from mduit_loc.io_utils import atomic_open, read_text_lines

ALIGNED_DIR = "aligned"
ALIGNED_LIST = "aligned.txt"
_LINE = "'<condition>/<camera>/<timestamp>.jpg' (relative to the aligned/ folder)"


@dataclass(frozen=True)
class AlignedPose:
    """One database pose and its image under each condition."""

    camera: str
    timestamp: str
    images: dict[str, Path]     # condition -> image file

    @property
    def database_name(self) -> str:
        """The database image rendered at this pose (canonical name, relative to ``images/``)."""
        return f"{REFERENCE_CONDITION}/{self.camera}/{self.timestamp}.jpg"


@dataclass(frozen=True)
class AlignedSet:
    folder: Path                    # the aligned/ folder
    conditions: tuple[str, ...]     # of every pose, in the order of ``ALL_CONDITIONS``
    poses: list[AlignedPose]        # in the order of the list file

    def pairs(self, source: str, target: str) -> list[tuple[Path, Path]]:
        """(source image, target image) of every pose: the same pose under two conditions."""
        for condition in (source, target):
            if condition not in self.conditions:
                raise MduitError(f"the aligned set in {self.folder} has no condition {condition!r}; it has "
                                 f"{', '.join(self.conditions)}")
        return [(pose.images[source], pose.images[target]) for pose in self.poses]


def aligned_folder(root: str | Path) -> Path:
    """The aligned/ folder of a dataset root (or ``root`` itself when it holds the list)."""
    root = Path(root)
    return root if (root / ALIGNED_LIST).is_file() else root / ALIGNED_DIR


def has_aligned_set(root: str | Path) -> bool:
    return (aligned_folder(root) / ALIGNED_LIST).is_file()


def write_aligned_list(root: str | Path, names: Iterable[str]) -> Path:
    """``root/aligned/aligned.txt`` (atomic); ``names`` are ``<condition>/<camera>/<timestamp>.jpg``."""
    path = Path(root) / ALIGNED_DIR / ALIGNED_LIST
    lines = []
    for name in names:
        parsed = ImageName.parse(name)
        if parsed.condition is None:
            raise ValueError(f"aligned image names need a condition, got {name!r}")
        lines.append(f"{parsed.name()}\n")
    with atomic_open(path, "w", encoding="utf-8") as handle:
        handle.writelines(lines)
    return path


def read_aligned_set(root: str | Path) -> AlignedSet:
    """The aligned set of a dataset folder (or of an aligned/ folder); errors name the file and line."""
    folder = aligned_folder(root)
    path = folder / ALIGNED_LIST
    if not path.is_file():
        raise DataNotFoundError(path, "aligned set", "'mduit-loc synth' writes one with each synthetic benchmark "
                                "(synth.json format_version >= 2); re-render with --overwrite to get one")
    seen: dict[tuple[str, str, str], int] = {}
    first_line: dict[tuple[str, str], int] = {}
    images: dict[tuple[str, str], dict[str, Path]] = {}
    for number, line in read_text_lines(path, "aligned set list"):
        try:
            parsed = ImageName.parse(line)
        except ValueError as err:
            raise FormatError(path, number, _LINE, got=str(err)) from None
        if parsed.condition is None or len(line.split()) != 1:
            raise FormatError(path, number, _LINE, got=line)
        key = (parsed.condition, parsed.camera, parsed.timestamp)
        if key in seen:
            raise FormatError(path, number, f"each image once, but it already appears on line {seen[key]}", got=line)
        seen[key] = number
        image = folder / line
        if not image.is_file():
            raise DataNotFoundError(image, "aligned image", f"listed on line {number} of {path}")
        pose = (parsed.camera, parsed.timestamp)
        first_line.setdefault(pose, number)
        images.setdefault(pose, {})[parsed.condition] = image
    if not images:
        raise FormatError(path, None, f"at least one line {_LINE}")
    conditions = tuple(c for c in ALL_CONDITIONS if c in next(iter(images.values())))
    for (camera, timestamp), by_condition in images.items():
        if set(by_condition) != set(conditions):
            differ = sorted(set(conditions) ^ set(by_condition))
            raise FormatError(path, first_line[(camera, timestamp)], "every pose under the same conditions as the "
                              f"first ({', '.join(conditions)})", got=f"{camera}/{timestamp} differs in "
                              f"{', '.join(differ)}")
    poses = [AlignedPose(camera, timestamp, {c: by_condition[c] for c in conditions})
             for (camera, timestamp), by_condition in images.items()]
    return AlignedSet(folder, conditions, poses)

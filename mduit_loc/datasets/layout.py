"""RobotCar Seasons naming: conditions, cameras, day/night, and image-name normalisation.

All image names inside mduit-loc are *canonical*: ``<condition>/<camera>/<timestamp>.jpg``,
relative to the ``images/`` folder. The dataset ships ``.png`` names in the NVM model and the v2
train/test lists but ``.jpg`` files on disk; ``canonical_name`` is the one place that maps them.
"""
from __future__ import annotations

from dataclasses import dataclass

REFERENCE_CONDITION = "overcast-reference"
QUERY_CONDITIONS = (
    "dawn", "dusk", "night", "night-rain", "overcast-summer",
    "overcast-winter", "rain", "snow", "sun",
)
ALL_CONDITIONS = (REFERENCE_CONDITION, *QUERY_CONDITIONS)
NIGHT_CONDITIONS = frozenset({"night", "night-rain"})
DAY_CONDITIONS = frozenset(c for c in QUERY_CONDITIONS if c not in NIGHT_CONDITIONS)
CAMERAS = ("left", "rear", "right")
IMAGE_SIZE = (1024, 1024)  # width, height of the real dataset's undistorted images


def day_or_night(condition: str) -> str:
    if condition in NIGHT_CONDITIONS:
        return "night"
    if condition in DAY_CONDITIONS or condition == REFERENCE_CONDITION:
        return "day"
    raise ValueError(f"unknown condition {condition!r}; expected one of {', '.join(ALL_CONDITIONS)}")


def canonical_name(name: str) -> str:
    """Strip ``./``, use forward slashes, and map a ``.png`` suffix to ``.jpg``."""
    name = name.strip().replace("\\", "/")
    while name.startswith("./"):
        name = name[2:]
    if name.lower().endswith(".png"):
        name = name[:-4] + ".jpg"
    return name


def png_name(name: str) -> str:
    """The ``.png`` spelling used by the NVM model and the v2 lists."""
    name = canonical_name(name)
    return name[:-4] + ".png" if name.endswith(".jpg") else name


@dataclass(frozen=True)
class ImageName:
    """Parts of ``<condition>/<camera>/<timestamp>.<ext>`` (condition may be absent in v2 lists)."""

    condition: str | None
    camera: str
    timestamp: str

    @classmethod
    def parse(cls, name: str) -> "ImageName":
        parts = canonical_name(name).split("/")
        if len(parts) == 3:
            condition, camera, filename = parts
        elif len(parts) == 2:
            condition, (camera, filename) = None, parts
        else:
            raise ValueError("expected '<condition>/<camera>/<timestamp>.jpg' or '<camera>/<timestamp>.jpg', "
                             f"got {name!r}")
        if condition is not None and condition not in ALL_CONDITIONS:
            raise ValueError(f"unknown condition {condition!r} in {name!r}; "
                             f"expected one of {', '.join(ALL_CONDITIONS)}")
        if camera not in CAMERAS:
            raise ValueError(f"unknown camera {camera!r} in {name!r}; expected one of {', '.join(CAMERAS)}")
        stem, dot, _ = filename.rpartition(".")
        if not dot or not stem:
            raise ValueError(f"expected a file name '<timestamp>.jpg' in {name!r}")
        return cls(condition, camera, stem)

    def name(self, condition: str | None = None) -> str:
        condition = condition or self.condition
        if condition is None:
            raise ValueError(f"no condition known for {self.camera}/{self.timestamp}")
        return f"{condition}/{self.camera}/{self.timestamp}.jpg"

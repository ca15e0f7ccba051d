"""Where a map's files are: what an index records about its dataset and what PnP reads back.

``MapFiles.of(dataset)`` describes a ``LocalizationDataset``; ``to_record`` / ``from_record`` are the
``dataset`` entry of an index manifest (``{root, image_root, kind, nvm_path}``).
``default_image_root(data)``: ``DATA/images`` of a RobotCar Seasons folder given with ``--data``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mduit_loc.datasets.types import LocalizationDataset

IMAGES_DIR = "images"       # the image folder of a RobotCar Seasons layout


@dataclass(frozen=True, kw_only=True)
class MapFiles:
    root: Path
    image_root: Path
    kind: str                          # LocalizationDataset.kind: robotcar-seasons, colmap, ...
    nvm_path: Path | None = None       # the map's NVM model, if it has one

    @classmethod
    def of(cls, dataset: LocalizationDataset) -> MapFiles:
        return cls(root=Path(dataset.root).resolve(), image_root=Path(dataset.image_root).resolve(),
                   kind=dataset.kind, nvm_path=Path(dataset.nvm_path).resolve() if dataset.nvm_path else None)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> MapFiles:
        """From an index manifest's ``dataset`` entry; missing entries: the current folder, no NVM."""
        root = Path(record.get("root") or ".")
        return cls(root=root, image_root=Path(record.get("image_root") or root), kind=str(record.get("kind", "")),
                   nvm_path=Path(record["nvm_path"]) if record.get("nvm_path") else None)

    def to_record(self) -> dict[str, Any]:
        return {"root": str(self.root), "image_root": str(self.image_root), "kind": self.kind,
                "nvm_path": str(self.nvm_path) if self.nvm_path else None}


def default_image_root(data: str | Path | None) -> Path | None:
    """``DATA/images`` of a RobotCar Seasons folder given with ``--data``; None otherwise."""
    if data is not None and (Path(data) / IMAGES_DIR).is_dir():
        return Path(data) / IMAGES_DIR
    return None

"""Where a map's files are: what an index records about its dataset and what PnP reads back.

``MapFiles.of(dataset)`` describes a ``LocalizationDataset``; ``to_record`` / ``from_record`` are the
``dataset`` entry of an index manifest (``{root, image_root, kind, nvm_path}``).
``default_image_root(data)``: ``DATA/images`` of a RobotCar Seasons folder given with ``--data``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

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
        """From an index manifest's ``dataset`` entry; missing entries: the current folder, no NVM.

        Relative ``image_root`` and ``nvm_path`` are relative to ``root``. Whether a recorded path may
        be followed at all is the reader's decision (``retrieval.localize``: only inside folders named
        on the command line).
        """
        root = Path(record.get("root") or ".")
        image_root = root / record["image_root"] if record.get("image_root") else root
        return cls(root=root, image_root=image_root, kind=str(record.get("kind", "")),
                   nvm_path=root / record["nvm_path"] if record.get("nvm_path") else None)

    def to_record(self) -> dict[str, Any]:
        """The manifest entry: ``image_root`` and ``nvm_path`` relative to ``root`` when inside it."""
        return {"root": str(self.root), "image_root": _relative_to(self.image_root, self.root), "kind": self.kind,
                "nvm_path": _relative_to(self.nvm_path, self.root) if self.nvm_path else None}

    def outside(self, allowed: Sequence[Path]) -> list[Path]:
        """The paths of this map (root, image root, NVM) that are not inside one of the ``allowed`` folders."""
        paths = [self.root, self.image_root, *([self.nvm_path] if self.nvm_path else [])]
        return [path for path in paths if not is_inside(path, allowed)]


def _relative_to(path: Path, root: Path) -> str:
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return str(path)


def is_inside(path: str | Path, folders: Sequence[str | Path]) -> bool:
    """Whether ``path``, links resolved, is one of ``folders`` or lies below one of them."""
    resolved = Path(path).resolve()
    for folder in folders:
        base = Path(folder).resolve()
        if resolved == base or base in resolved.parents:
            return True
    return False


def default_image_root(data: str | Path | None) -> Path | None:
    """``DATA/images`` of a RobotCar Seasons folder given with ``--data``; None otherwise."""
    if data is not None and (Path(data) / IMAGES_DIR).is_dir():
        return Path(data) / IMAGES_DIR
    return None

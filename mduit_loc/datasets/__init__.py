"""Datasets: the RobotCar Seasons layout (real and synthetic), COLMAP maps, folder-per-domain.

``open_dataset(path)`` recognises the layout and returns a ``LocalizationDataset``.
"""
from __future__ import annotations

from pathlib import Path

from mduit_loc.datasets.colmap_text import find_model_folder
from mduit_loc.datasets.robotcar import is_robotcar_layout, read_robotcar_seasons
from mduit_loc.datasets.types import DatabaseImage, Intrinsics, LocalizationDataset, QueryImage, TrainingImage
from mduit_loc.datasets.user_data import read_colmap_map, read_domain_folders
from mduit_loc.errors import DataNotFoundError, MduitError


def open_dataset(path: str | Path, image_root: str | Path | None = None) -> LocalizationDataset:
    """RobotCar Seasons layout, else a COLMAP model (+ ``image_root``), else folders per domain."""
    path = Path(path)
    if not path.exists():
        raise DataNotFoundError(path, "dataset")
    if not path.is_dir():
        raise MduitError(f"{path}: expected a dataset folder (RobotCar Seasons layout, COLMAP model + images, "
                         "or a folder per appearance domain), got a file")
    if is_robotcar_layout(path):
        return read_robotcar_seasons(path)
    if find_model_folder(path) is not None:
        return read_colmap_map(path, image_root)
    return read_domain_folders(path)


__all__ = ["open_dataset", "LocalizationDataset", "DatabaseImage", "QueryImage", "TrainingImage", "Intrinsics"]

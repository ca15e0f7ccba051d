"""A PNG grid of one location under every condition (rows) and camera (columns)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mduit_loc.datasets import robotcar_files as files
from mduit_loc.datasets.images import load_image, save_image
from mduit_loc.datasets.layout import ALL_CONDITIONS, CAMERAS
from mduit_loc.datasets.robotcar import read_robotcar_seasons
from mduit_loc.errors import MduitError

_LABEL_WIDTH = 120


def _first_frame_names(root: Path, condition: str, location: int) -> list[str] | None:
    """Image names of the first frame of ``condition`` at ``location`` (from the written lists)."""
    if condition == "overcast-reference":
        dataset = read_robotcar_seasons(root)
        names = sorted(d.name for d in dataset.database if d.location == location)
    else:
        names = sorted(n for n in files.read_query_lists(root).get(location, []) if n.startswith(condition + "/"))
    if not names:
        return None
    timestamp = min(Path(n).stem for n in names)
    return [f"{condition}/{camera}/{timestamp}.jpg" for camera in CAMERAS]


def write_preview(root: str | Path, location: int = 1, path: str | Path | None = None) -> Path:
    root = Path(root)
    path = Path(path) if path is not None else root / "preview.png"
    rows = []
    for condition in ALL_CONDITIONS:
        names = _first_frame_names(root, condition, location)
        if names is None:
            raise MduitError(f"preview: no {condition} images at location {location} in {root}")
        tiles = [load_image(root / "images" / name) for name in names]
        row = np.concatenate(tiles, axis=1)
        label = Image.new("RGB", (_LABEL_WIDTH, row.shape[0]), (255, 255, 255))
        ImageDraw.Draw(label).text((4, row.shape[0] // 2 - 6), condition, fill=(0, 0, 0))
        rows.append(np.concatenate([np.asarray(label), row], axis=1))
    header = Image.new("RGB", (rows[0].shape[1], 16), (255, 255, 255))
    width = (rows[0].shape[1] - _LABEL_WIDTH) // len(CAMERAS)
    draw = ImageDraw.Draw(header)
    for k, camera in enumerate(CAMERAS):
        draw.text((_LABEL_WIDTH + k * width + 4, 2), camera, fill=(0, 0, 0))
    grid = np.concatenate([np.asarray(header)] + rows, axis=0)
    save_image(path, grid)
    return path

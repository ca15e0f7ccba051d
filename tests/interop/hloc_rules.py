"""hloc's file rules, restated here from its documented behaviour (FORMATS.md), not its code.

hloc is not on PyPI and its code is not ours to copy; these readers are as strict as its own where
a file of ours could break it:
- poses: every line is split on whitespace into a name and seven floats (``qw qx qy qz tx ty tz``);
  there is no comment or header line;
- pairs: every line is ``query_name db_name``, ranked best first;
- global features: one HDF5 group per image, named by its path relative to the image root (slashes
  are nested groups), holding the dataset ``global_descriptor`` of shape ``(D,)``.
"""
from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np


def read_poses_like_hloc(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    poses = {}
    for line in Path(path).read_text(encoding="utf-8").rstrip("\n").split("\n"):
        name, *data = line.strip().split()
        values = np.array(data, float)  # ValueError on a header word such as 'cam_from_world'
        assert values.shape == (7,), f"{path}: {line!r} is not a name and 7 numbers"
        poses[name] = (values[:4], values[4:])
    return poses


def read_pairs_like_hloc(path: Path) -> list[tuple[str, str]]:
    pairs = []
    for line in Path(path).read_text(encoding="utf-8").rstrip("\n").split("\n"):
        query, db = line.split()  # exactly two tokens
        pairs.append((query, db))
    return pairs


def read_global_features_like_hloc(path: Path) -> dict[str, np.ndarray]:
    """Image name -> descriptor, found the way hloc lists names: every ``global_descriptor`` dataset."""
    found: dict[str, np.ndarray] = {}

    def visit(_, obj):
        if isinstance(obj, h5py.Dataset) and obj.name.endswith("/global_descriptor"):
            found[obj.parent.name.strip("/")] = obj[()]

    with h5py.File(str(path), "r", libver="latest") as handle:
        handle.visititems(visit)
    return found

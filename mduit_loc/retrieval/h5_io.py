"""Global descriptors in hloc's HDF5 layout, so hloc (and other tools) read our files as theirs.

Layout: one group per image, named by the image path relative to the image root (slashes make
nested groups, e.g. ``night/rear/123.jpg`` is ``/night/rear/123.jpg``), holding the dataset
``global_descriptor`` of shape ``(D,)`` (float32, or float16 with ``fp16=True``). Files are opened
with ``libver="latest"`` as hloc does, which keeps many small groups fast.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import h5py
import numpy as np

from mduit_loc.errors import DataNotFoundError, FormatError

DATASET = "global_descriptor"


def open_h5(path: str | Path, mode: str = "r") -> h5py.File:
    path = Path(path)
    if mode == "r" and not path.is_file():
        raise DataNotFoundError(path, "descriptor file (HDF5)")
    try:
        return h5py.File(str(path), mode, libver="latest")
    except OSError as err:
        raise FormatError(path, None, "an HDF5 file (hloc global-descriptor layout)", got=str(err)) from err


def list_names(handle: h5py.File) -> list[str]:
    """Names of the images that have a ``global_descriptor`` (the hloc ``list_h5_names`` rule)."""
    names: list[str] = []

    def visit(_, obj):
        if isinstance(obj, h5py.Dataset) and obj.name.endswith("/" + DATASET):
            names.append(obj.parent.name.strip("/"))

    handle.visititems(visit)
    return sorted(names)


def has_descriptor(handle: h5py.File, name: str) -> bool:
    return f"{name}/{DATASET}" in handle


def write_descriptors(handle: h5py.File, names: Sequence[str], vectors: np.ndarray, fp16: bool = False,
                      overwrite: bool = False) -> None:
    """Write ``vectors[i]`` as ``names[i]/global_descriptor`` (replacing it only with ``overwrite``)."""
    dtype = np.float16 if fp16 else np.float32
    for name, vector in zip(names, np.asarray(vectors)):
        key = f"{name}/{DATASET}"
        if key in handle:
            if not overwrite:
                continue
            del handle[key]
        group = handle.require_group(name)
        group.create_dataset(DATASET, data=vector.astype(dtype))


def read_descriptors(path: str | Path, names: Iterable[str] | None = None) -> tuple[list[str], np.ndarray]:
    """(names, float32 (N, D)); all images of the file when ``names`` is None."""
    path = Path(path)
    with open_h5(path) as handle:
        names = list_names(handle) if names is None else list(names)
        missing = [n for n in names if not has_descriptor(handle, n)]
        if missing:
            raise FormatError(path, None, f"a global descriptor for each image; {len(missing)} missing",
                              got=", ".join(missing[:3]))
        if not names:
            return [], np.zeros((0, 0), np.float32)
        vectors = [np.asarray(handle[f"{n}/{DATASET}"][()], dtype=np.float32).reshape(-1) for n in names]
    dims = {v.shape[0] for v in vectors}
    if len(dims) != 1:
        raise FormatError(path, None, "descriptors of one dimension", got=f"dimensions {sorted(dims)}")
    return names, np.stack(vectors)

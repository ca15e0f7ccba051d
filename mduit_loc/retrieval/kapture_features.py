"""Global descriptors in kapture's layout, so kapture-localization's tools use MDUIT descriptors.

Layout of a kapture folder (as kapture 1.1's ``kapture.io.features`` / ``kapture.io.csv`` read it)::

    KAPTURE/reconstruction/global_features/<feature name>/global_features.txt
    KAPTURE/reconstruction/global_features/<feature name>/<image name>.gfeat

- ``global_features.txt``: the line ``# kapture format: 1.1``, a ``# name, dtype, dsize,
  metric_type`` comment, then ``<feature name>, float32, <D>, L2``;
- ``<image name>.gfeat``: the raw ``D`` float32 values (``ndarray.tofile``: no header, native byte
  order); ``<image name>`` is the image's path relative to the kapture's ``sensors/records_data``
  (ours: relative to the image root), slashes making sub-folders.

kapture-localization's pipelines may also keep features outside a kapture, in a folder
``<top>/global_features/<feature name>/global_features/`` that they link into a kapture: that folder
holds the same files as ``<feature name>/`` above. The metric is "for information only" in kapture;
our vectors are L2-normalised, so L2 distance and cosine similarity rank alike.

Beside them, ``mduit_descriptor.json`` records the model (kapture lists only ``.gfeat`` files) so
that a re-run appends to features of the same model and refuses to mix in another model's.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from mduit_loc.errors import ConfigMismatchError, FormatError, MduitError
from mduit_loc.io_utils import atomic_open, write_json_atomic

KAPTURE_FORMAT_LINE = "# kapture format: 1.1"
CONFIG_FILE = "global_features.txt"
EXTENSION = ".gfeat"
RECORD_FILE = "mduit_descriptor.json"
DTYPE = np.float32           # kapture's reader knows float32, float64, int32 and uint8 (not float16)
METRIC = "L2"


def feature_folder(kapture_dir: str | Path, feature_name: str) -> Path:
    """``kapture_dir/reconstruction/global_features/<feature_name>``."""
    check_feature_name(feature_name)
    return Path(kapture_dir) / "reconstruction" / "global_features" / feature_name


def check_feature_name(name: str) -> None:
    # kapture splits global_features.txt on commas and uses the name as a folder
    if not name or any(c in name for c in ",/\\") or name.strip() != name or name in (".", ".."):
        raise MduitError(f"a kapture feature name is one folder name without commas or spaces around it, "
                         f"got {name!r}")


def feature_path(folder: Path, image_name: str) -> Path:
    parts = image_name.split("/")
    if not image_name or image_name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise MduitError(f"image name {image_name!r} cannot name a kapture feature file (expected a relative path)")
    return folder.joinpath(*parts[:-1], parts[-1] + EXTENSION)


def _config_text(feature_name: str, dim: int) -> str:
    return f"{KAPTURE_FORMAT_LINE}\n# name, dtype, dsize, metric_type\n{feature_name}, float32, {dim}, {METRIC}\n"


def prepare_folder(folder: Path, feature_name: str, identity: dict, overwrite: bool = False) -> bool:
    """Make ``folder`` ready for descriptors of the model ``identity`` ({name, dim, checksum, spec});
    True when features already there are of this model and may be kept."""
    dim = int(identity["dim"])
    record_path = folder / RECORD_FILE
    keep = False
    if record_path.is_file() and not overwrite:
        try:
            stored = json.loads(record_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise FormatError(record_path, err.lineno, "valid JSON", got=err.msg) from None
        if stored.get("checksum") != identity.get("checksum") or stored.get("dim") != dim:
            raise ConfigMismatchError(f"{folder} holds kapture features of another model ({stored.get('spec')}, "
                                      f"dim {stored.get('dim')}); use --overwrite or another --feature-name")
        keep = True
    elif (folder / CONFIG_FILE).is_file() and not overwrite:
        raise ConfigMismatchError(f"{folder} holds kapture features not written by mduit-loc; "
                                  "use --overwrite or another --feature-name")
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_open(folder / CONFIG_FILE, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(_config_text(feature_name, dim))
    write_json_atomic(record_path, {key: identity.get(key) for key in ("name", "dim", "checksum", "spec")})
    return keep


def has_features(folder: Path, image_name: str) -> bool:
    return feature_path(folder, image_name).is_file()


def write_features(folder: Path, names: Sequence[str], vectors: np.ndarray) -> None:
    """One ``.gfeat`` file per image (each written atomically, so an interrupted run resumes cleanly)."""
    for name, vector in zip(names, np.asarray(vectors)):
        path = feature_path(folder, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path, "wb") as handle:
            np.ascontiguousarray(vector, dtype=DTYPE).reshape(-1).tofile(handle)


def read_features(folder: Path) -> tuple[list[str], np.ndarray]:
    """(image names, (N, D) float32) of a folder written by ``write_features``, names sorted."""
    config = [line for line in (folder / CONFIG_FILE).read_text(encoding="utf-8").splitlines()
              if line.strip() and not line.startswith("#")]
    fields = [f.strip() for f in config[0].split(",")] if config else []
    if len(fields) != 4 or fields[1] != "float32" or not fields[2].isdigit():
        raise FormatError(folder / CONFIG_FILE, None, "'<name>, float32, <dsize>, <metric>'", got=" ".join(config))
    dim = int(fields[2])
    files = sorted(p for p in folder.rglob("*" + EXTENSION) if p.is_file())
    names = [p.relative_to(folder).as_posix()[: -len(EXTENSION)] for p in files]
    vectors = np.zeros((len(files), dim), DTYPE)
    for row, path in enumerate(files):
        values = np.fromfile(path, dtype=DTYPE)
        if values.shape != (dim,):
            raise FormatError(path, None, f"{dim} float32 values", got=f"{values.size}")
        vectors[row] = values
    return names, vectors

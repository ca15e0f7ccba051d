"""The index manifest: field-by-field validation, and its binding to the files it describes.

``manifest.json`` is untrusted input like any other file: every field a query uses is checked for
presence and type, and a bad one is a ``FormatError`` naming the file and the field (never a
KeyError or a FAISS error later).

Binding. The manifest says which model produced the vectors; three checks make that statement
hold for the files actually read:

1. ``files``: size and SHA-256 of every other file of the index (index.faiss, database.tsv,
   descriptors.h5, translations.h5, appearances.json, failed_images.txt), verified on load. A file
   replaced, truncated or left over from another run (a killed build) no longer matches.
2. The vectors carry their own record of the model: ``descriptors.h5`` holds the checksum of the
   model that computed them (attribute ``mduit_descriptor_checksum``, written at extraction, before
   and independently of the manifest), and ``translations.h5`` the translator's and descriptor's
   (its ``fingerprint``). The manifest's ``descriptor.checksum`` must equal them. Editing ``spec`` and
   ``checksum`` to another model's therefore fails: the descriptor file (bound by its hash) still
   names the model that really computed the vectors, and a query with another model is refused.
3. ``seal``: SHA-256 of the canonical JSON of all other fields. A hand edit of any field
   (intrinsics, dataset paths, index parameters) that does not recompute it is detected.

None of this is a signature: there is no secret, so someone who rewrites the files, the hashes and
the seal on purpose produces an index that loads. What it rules out is every accidental or
half-done change, and the silent use of vectors under another model's name. Loading an untrusted
index is made safe separately: nothing in it runs code (FAISS, HDF5, JSON, TSV), and the paths it
records are only followed inside folders named on the command line (``localize``).
"""
from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Any, Iterable

from mduit_loc.errors import ConfigMismatchError, FormatError
from mduit_loc.torch_io import sha256_file

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
INDEX_TYPES = ("flat", "ivf", "ivf-pq")
REQUIRED_FILES = ("index.faiss", "database.tsv", "descriptors.h5")
_INTRINSICS = ("fx", "fy", "cx", "cy", "width", "height")


def _fail(path: Path, field: str, expected: str, value: Any = None, present: bool = True) -> FormatError:
    if not present:
        return FormatError(path, None, f'"{field}": {expected} (the field is missing)')
    return FormatError(path, None, f'"{field}": {expected}', got=repr(value))


def _get(section: dict, key: str, where: str, path: Path, check, expected: str, required: bool = True):
    field = f"{where}.{key}" if where else key
    if key not in section:
        if required:
            raise _fail(path, field, expected, present=False)
        return None
    value = section[key]
    if not check(value):
        raise _fail(path, field, expected, value)
    return value


def _is_int(value, minimum: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_text(value) -> bool:
    return isinstance(value, str) and bool(value)


def _optional_text(value) -> bool:
    return value is None or isinstance(value, str)


def _section(manifest: dict, key: str, path: Path, optional: bool = False) -> dict:
    value = manifest.get(key)
    if optional and value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(path, key, "an object", value, key in manifest)
    return value


def validate_manifest(manifest: dict, path: Path) -> None:
    """Every field a query reads, present and of the right type; else a ``FormatError`` naming it."""
    descriptor = _section(manifest, "descriptor", path)
    _get(descriptor, "name", "descriptor", path, _is_text, "a name")
    _get(descriptor, "dim", "descriptor", path, lambda v: _is_int(v, 1), "a positive integer")
    _get(descriptor, "checksum", "descriptor", path, _is_text, "the model checksum")
    _get(descriptor, "spec", "descriptor", path, _is_text, "the model")
    _get(descriptor, "image_size", "descriptor", path,
         lambda v: isinstance(v, list) and len(v) == 2 and all(_is_int(x, 1) for x in v), "[height, width]")
    index = _section(manifest, "index", path)
    kind = _get(index, "type", "index", path, lambda v: v in INDEX_TYPES, " or ".join(INDEX_TYPES))
    _get(index, "metric", "index", path, lambda v: v == "inner_product", '"inner_product"')
    ivf = kind != "flat"
    _get(index, "nlist", "index", path, lambda v: _is_int(v, 1), "a positive integer", required=ivf)
    _get(index, "nprobe", "index", path, lambda v: _is_int(v, 1), "a positive integer", required=ivf)
    _get(index, "pq_m", "index", path, lambda v: _is_int(v, 1), "a positive integer", required=kind == "ivf-pq")
    _get(index, "pq_nbits", "index", path, lambda v: _is_int(v, 1) and v <= 16, "an integer in 1..16", False)
    counts = _section(manifest, "counts", path)
    for key in ("images", "vectors", "appearances", "failed_images"):
        _get(counts, key, "counts", path, _is_int, "a non-negative integer")
    if counts["vectors"] != counts["images"] * counts["appearances"]:
        raise _fail(path, "counts.vectors", "images x appearances", counts["vectors"])
    dataset = _section(manifest, "dataset", path, optional=True)
    for key in ("root", "image_root", "nvm_path"):
        _get(dataset, key, "dataset", path, _optional_text, "a path or null", required=False)
    _get(dataset, "kind", "dataset", path, _optional_text, "a dataset kind", required=False)
    for section in ("intrinsics", "image_intrinsics"):   # per camera; per image with its own calibration
        for camera, values in _section(manifest, section, path, optional=True).items():
            if not isinstance(values, dict) or sorted(values) != sorted(_INTRINSICS):
                raise _fail(path, f"{section}.{camera}", f"an object with {', '.join(_INTRINSICS)}", values)
            for key in _INTRINSICS:
                size = key in ("width", "height")
                _get(values, key, f"{section}.{camera}", path, (lambda v: _is_int(v, 1)) if size else _is_number,
                     "a positive integer" if size else "a finite number")
    translation = _section(manifest, "translation", path, optional=True)
    if translation:
        _get(translation, "translator_checksum", "translation", path, _optional_text, "a checksum")
        _get(translation, "appearances", "translation", path,
             lambda v: isinstance(v, list) and all(_is_text(a) for a in v), "a list of appearance names")
        _get(translation, "fused_weight", "translation", path, lambda v: _is_number(v) and 0 <= v <= 1,
             "a weight in [0, 1] (the copies were fused into each image's vector)", required=False)
    files = _section(manifest, "files", path)
    for name in REQUIRED_FILES:
        if name not in files:
            raise _fail(path, f"files.{name}", "its size and sha256", present=False)
    for name, record in files.items():
        if not isinstance(record, dict) or "/" in name or name in (".", ".."):
            raise _fail(path, f"files.{name}", "an object with size and sha256", record)
        _get(record, "size", f"files.{name}", path, _is_int, "a size in bytes")
        _get(record, "sha256", f"files.{name}", path, lambda v: isinstance(v, str) and bool(_HEX64.match(v)),
             "a SHA-256 in hex")
    _get(manifest, "seal", "", path, lambda v: isinstance(v, str) and bool(_HEX64.match(v)),
         "the manifest's SHA-256 seal")


# --- binding --------------------------------------------------------------------------------
def seal_of(manifest: dict) -> str:
    """SHA-256 of the canonical JSON of every field but ``seal``."""
    content = {key: value for key, value in manifest.items() if key != "seal"}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def file_records(folder: Path, names: Iterable[str]) -> dict[str, dict]:
    """{name: {size, sha256}} of the files among ``names`` present in ``folder``."""
    return {name: {"size": (folder / name).stat().st_size, "sha256": sha256_file(folder / name)}
            for name in names if (folder / name).is_file()}


def seal(manifest: dict, folder: Path, names: Iterable[str]) -> dict:
    """``manifest`` with the records of the files in ``folder`` and its seal."""
    sealed = {key: value for key, value in manifest.items() if key != "seal"}
    sealed["files"] = file_records(folder, names)
    sealed["seal"] = seal_of(sealed)
    return sealed


def verify_binding(manifest: dict, folder: Path, path: Path) -> None:
    """The manifest is unedited and every file it records is the one it describes."""
    if manifest["seal"] != seal_of(manifest):
        raise ConfigMismatchError(f"{path}: the manifest was changed after the index was built (its seal does not "
                                  "match its content); rebuild the index (to use the map elsewhere, pass --data; "
                                  "another model, --model), rather than editing the manifest")
    for name, record in manifest["files"].items():
        file = folder / name
        if not file.is_file():
            raise ConfigMismatchError(f"{file}: missing; the index is incomplete, rebuild it")
        size = file.stat().st_size
        if size != record["size"] or sha256_file(file) != record["sha256"]:
            what = f"{size} bytes, the manifest records {record['size']}" if size != record["size"] else \
                "its SHA-256 differs from the manifest's"
            raise ConfigMismatchError(f"{file}: not the file this index was built with ({what}); it was replaced, "
                                      "or a build was interrupted; rebuild the index")

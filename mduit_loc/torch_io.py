"""Reading torch files safely and fingerprinting model files.

Every checkpoint, run and weights file in the toolkit goes through these helpers, so they are all
read with ``weights_only=True`` (no pickle code runs) and fail with one message naming the file.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from .errors import DataNotFoundError, FormatError

__all__ = ["sha256_file", "load_torch_file", "load_state_dict_file", "load_checkpoint_file"]


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks (model files can be hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_torch_file(path: str | Path, what: str, hint: str, expected: str):
    """``torch.load`` on CPU with ``weights_only=True``; a missing or damaged file is a clear error."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(path, what, hint)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many exception types for damaged files
        raise FormatError(path, None, expected, got=f"{type(err).__name__}: {err}") from err


def load_state_dict_file(path: str | Path, what: str, hint: str) -> dict[str, torch.Tensor]:
    """A file holding a state dict (a dict of tensors), or ``{"state_dict": ...}`` around one."""
    state = load_torch_file(path, what, hint, "a state dict saved with torch.save")
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise FormatError(Path(path), None, "a dict of tensors (a state dict)", got=type(state).__name__)
    return state


def load_checkpoint_file(path: str | Path, what: str, file_format: str) -> dict:
    """A training checkpoint: a dict whose ``format`` entry equals ``file_format``."""
    state = load_torch_file(path, what, "train first, or drop --resume", f"a {what}")
    if not isinstance(state, dict) or state.get("format") != file_format:
        got = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise FormatError(Path(path), None, f"format {file_format!r}", got=repr(got))
    return state

"""Reading torch files safely and fingerprinting model weights.

Every checkpoint, run and weights file in the toolkit goes through these helpers, so they are all
read with ``weights_only=True`` (no pickle code runs) and fail with one message naming the file.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Mapping

import torch

from .errors import ConfigMismatchError, DataNotFoundError, FormatError

__all__ = ["sha256_file", "state_dict_sha256", "verify_model_checksum", "load_torch_file", "load_state_dict_file",
           "load_checkpoint_file"]


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks (model files can be hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


STATE_CHECKSUM = "state-dict-sha256-v1"   # run.json "checksum_method" of ``state_dict_sha256``


def state_dict_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """Hex SHA-256 of a state dict's tensors: names, dtypes, shapes and bytes, in sorted name order.

    The identity of trained weights. Unlike the hash of a ``torch.save`` file (which embeds the
    name of the file it was written to, a random temporary one here), it is the same for two
    bit-identical trainings, and for the same weights saved twice.
    """
    digest = hashlib.sha256(STATE_CHECKSUM.encode())
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        header = f"{name}\0{str(tensor.dtype).removeprefix('torch.')}\0{tuple(tensor.shape)}\0{tensor.numel()}"
        digest.update(len(header.encode()).to_bytes(8, "little") + header.encode())
        if tensor.numel():
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def verify_model_checksum(meta: dict, state: Mapping[str, torch.Tensor], model_path: Path, run_json: Path) -> str:
    """The checksum of the weights in ``state`` checked against run.json's; returns the model's identity.

    Runs written since ``checksum_method`` exists record ``state_dict_sha256``. Earlier runs recorded the
    SHA-256 of the model.pt bytes: it is checked as such and stays the model's identity, so the indexes
    built with those runs keep accepting them.
    """
    recorded = meta.get("checksum")
    method = meta.get("checksum_method")
    if method == STATE_CHECKSUM:
        actual = state_dict_sha256(state)
        if actual != recorded:
            raise ConfigMismatchError(f"{model_path}: its weights (SHA-256 of the tensors {actual[:12]}...) differ "
                                      f"from the checksum in {run_json} ({str(recorded)[:12]}...); the model file "
                                      "was changed or replaced after training")
        return actual
    if method is not None:
        raise FormatError(run_json, None, f'"checksum_method": "{STATE_CHECKSUM}" (or none, an older run)',
                          got=repr(method))
    actual = sha256_file(model_path)
    if recorded and actual != recorded:
        raise ConfigMismatchError(f"{model_path}: this older run records the SHA-256 of the model.pt bytes "
                                  f"({str(recorded)[:12]}...), the file has {actual[:12]}...; the file was changed or "
                                  "replaced (saving the same weights again also changes it): retrain, or restore it")
    return actual


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


def thread_mismatch(state: dict) -> str | None:
    """Why resuming ``state`` in this process will not continue it bit for bit, or None.

    The torch thread count sets the order of floating-point sums (the same seed and steps give another
    model with another thread count), so a resume under another count stays valid but differs in rounding.
    """
    written_with = state.get("torch_threads")
    if written_with is None or written_with == torch.get_num_threads():
        return None
    return (f"the checkpoint was written with {written_with} torch thread(s), this process uses "
            f"{torch.get_num_threads()}: the rest of the run will differ in rounding from an uninterrupted one "
            "(pass --threads to match)")

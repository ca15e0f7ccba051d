"""Training checkpoints: ``RUN/checkpoints/step_XXXXXXX.pt`` and ``RUN/checkpoints/last.pt``.

Each file is written atomically and holds only tensors and plain containers of numbers and
strings, so ``torch.load(..., weights_only=True)`` reads it: network and optimizer state dicts,
scheduler and loss-scaler state, the step, the epoch's pairing plan, and every rank's RNG state
(as uint8 tensors). Resuming from it continues a run bit-for-bit under the same torch thread
count (``torch_io.thread_mismatch`` says when it will not).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from mduit_loc.io_utils import atomic_path
from mduit_loc.torch_io import load_checkpoint_file

CHECKPOINT_FORMAT = "mduit-train-checkpoint-v1"


def checkpoint_dir(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints"


def step_checkpoint_path(run_dir: str | Path, step: int) -> Path:
    return checkpoint_dir(run_dir) / f"step_{step:07d}.pt"


def last_checkpoint_path(run_dir: str | Path) -> Path:
    return checkpoint_dir(run_dir) / "last.pt"


def save_checkpoint(run_dir: str | Path, state: dict, step: int, keep: int = 3) -> Path:
    """Write ``step_XXXXXXX.pt`` then point ``last.pt`` at the same bytes; keep the newest ``keep`` steps."""
    state = dict(state, format=CHECKPOINT_FORMAT, step=int(step))
    path = step_checkpoint_path(run_dir, step)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    _replace_with_link(path, last_checkpoint_path(run_dir))
    _prune(run_dir, keep)
    return path


def _replace_with_link(source: Path, target: Path) -> None:
    """Atomically make ``target`` a hard link (or copy) of ``source``."""
    with atomic_path(target) as tmp:
        tmp.unlink()
        try:
            os.link(source, tmp)
        except OSError:  # file systems without hard links
            tmp.write_bytes(source.read_bytes())


def _prune(run_dir: str | Path, keep: int) -> None:
    steps = sorted(checkpoint_dir(run_dir).glob("step_*.pt"))
    for old in steps[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)


def load_checkpoint(path: str | Path) -> dict:
    return load_checkpoint_file(path, "MDUIT training checkpoint", CHECKPOINT_FORMAT)


def rng_state() -> dict[str, torch.Tensor | list[torch.Tensor]]:
    """This process's torch RNG states (CPU, and every CUDA device if any)."""
    state: dict = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


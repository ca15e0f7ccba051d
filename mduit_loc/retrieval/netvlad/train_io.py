"""Training checkpoints and the loss CSV of a NetVLAD run.

``RUN/checkpoints/last.pt`` (written atomically) holds only tensors, numbers and strings, so
``torch.load(..., weights_only=True)`` reads it: model and optimizer state, the step, the epoch,
the epoch's triplet plan, the position in it, elapsed time and the RNG state. Resuming replays
the rest of the saved plan, then mines the next epochs as an uninterrupted run would.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import torch

from mduit_loc.errors import ConfigMismatchError
from mduit_loc.io_utils import atomic_open, atomic_path
from mduit_loc.torch_io import load_checkpoint_file

CHECKPOINT_FORMAT = "netvlad-train-checkpoint-v1"
LOSS_COLUMNS = ["step", "epoch", "loss", "active_fraction", "positive_distance", "negative_distance",
                "lr", "images_seen", "seconds"]


def last_checkpoint_path(run_dir: str | Path) -> Path:
    return Path(run_dir) / "checkpoints" / "last.pt"


def save_checkpoint(run_dir: str | Path, state: dict) -> Path:
    path = last_checkpoint_path(run_dir)
    with atomic_path(path) as tmp:
        torch.save(dict(state, format=CHECKPOINT_FORMAT), tmp)
    return path


def load_checkpoint(run_dir: str | Path) -> dict:
    return load_checkpoint_file(last_checkpoint_path(run_dir), "NetVLAD training checkpoint", CHECKPOINT_FORMAT)


def check_resumable(saved_config_json: str, config: dict, fields: tuple[str, ...], path: Path) -> None:
    """The fields that define what is trained must match the checkpoint's."""
    saved = json.loads(saved_config_json)
    changed = [f"{name}: {saved.get(name)!r} -> {config.get(name)!r}" for name in fields
               if json.dumps(saved.get(name)) != json.dumps(config.get(name))]
    if changed:
        raise ConfigMismatchError(f"{path}: cannot resume with a different configuration ({'; '.join(changed)}); "
                                  "use the original options or a new --out")


class LossLog:
    """``RUN/loss.csv``, one row per step; on resume, rows after the checkpoint's step are dropped."""

    def __init__(self, path: str | Path, resume_step: int | None = None):
        self.path = Path(path)
        kept = self._rows_up_to(resume_step) if resume_step is not None else []
        with atomic_open(self.path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=LOSS_COLUMNS)
            writer.writeheader()
            writer.writerows(kept)
        self._handle = open(self.path, "a", newline="", encoding="utf-8")
        self._writer = csv.DictWriter(self._handle, fieldnames=LOSS_COLUMNS)

    def _rows_up_to(self, step: int) -> list[dict]:
        if not self.path.is_file():
            return []
        with open(self.path, newline="", encoding="utf-8") as handle:
            return [row for row in csv.DictReader(handle) if row.get("step", "").isdigit() and int(row["step"]) <= step]

    def write(self, row: dict) -> None:
        self._writer.writerow({key: row.get(key, "") for key in LOSS_COLUMNS})
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()

"""How a training run is run (``TrainOptions``) and what it reports (``TrainSummary``)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mduit_loc.runtime import default_device


@dataclass(kw_only=True)
class TrainOptions:
    """How to run (not what to learn): paths, device, resume, progress."""

    data: Path
    out: Path
    image_root: Path | None = None
    domains: list[str] | None = None
    vgg_weights: Path | None = None
    device: torch.device = field(default_factory=default_device)
    resume: bool = False
    stop_after: int | None = None      # stop after this global step as if killed (checkpoint kept)
    num_workers: int | None = None
    progress: bool = True
    keep_checkpoints: int = 3
    include_test_queries: bool = True  # unlabelled test queries join training (translation is unsupervised)
    exclude_images: frozenset[str] = frozenset()  # image names kept out of training (a validation split)
    threads: int | None = None         # torch intra-op threads (1 is much faster on an oversubscribed CPU)
    explicit_settings: dict[str, Any] = field(default_factory=dict)  # settings the user named: must match on --resume


@dataclass
class TrainSummary:
    run_dir: Path
    steps: int
    total_steps: int
    epochs: float
    seconds: float
    final_losses: dict[str, float] = field(default_factory=dict)
    stopped_early: bool = False        # --stop-after: a checkpoint to resume from, no model yet
    world_size: int = 1
    stopped_by_budget: bool = False    # the time budget ran out before the planned steps (model written)

"""Training the compared methods on the same data and the same budget.

The budget is a number of optimizer steps per method by default: the same steps and the same torch
thread count give the same model on the same kind of machine, however busy (another thread count sums
floats in another order, and the model drifts apart over the steps). A wall-clock budget (``seconds``)
stays available for a quick look: NetVLAD then stops by itself at ``max_seconds`` (its clock includes
k-means initialisation and mining), and MDUIT gets ``time_budget_min`` (it probes its own speed, fits the learning-rate
schedule to the steps that fit and stops when the time is spent). Neither has an epoch limit here
(``epochs=None``): the budget alone ends the run. run.json records the steps and seconds actually
spent, which the tables report. Both trainings resume from their checkpoints when a run was
interrupted; a finished run (run.json) is never redone. Both are called through their typed APIs
(``translation.api.train``, ``retrieval.netvlad.training.train_netvlad``). Raw pixels train nothing.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from mduit_loc.errors import MduitError
from mduit_loc.io_utils import write_json_atomic
from mduit_loc.pipelines.methods import MethodSpec
from mduit_loc.retrieval.netvlad.train_config import NetVLADTrainConfig
from mduit_loc.retrieval.netvlad.train_data import load_training_images
from mduit_loc.retrieval.netvlad.training import describe_result, train_netvlad
from mduit_loc.runtime import default_device
from mduit_loc.translation.api import train as train_mduit


@dataclass(frozen=True, kw_only=True)
class TrainingBudget:
    """What every method gets: ``mduit_steps`` / ``netvlad_steps`` optimizer steps, or where one is None
    ``seconds`` of wall-clock training (which depends on the machine's load)."""

    mduit_steps: int | None = None
    netvlad_steps: int | None = None
    seconds: float | None = None
    mduit_preset: str = "tiny"
    mduit_settings: dict[str, Any] = field(default_factory=dict)  # TranslationConfig settings of every variant
    netvlad_image_size: tuple[int, int] | None = None             # (H, W); None: NetVLAD's own default
    netvlad_backbone: str = "light"
    device: torch.device = field(default_factory=default_device)
    progress: bool = True
    seed: int = 0
    num_workers: int | None = None               # image decoding workers (default: the trainers' own)

    def __post_init__(self) -> None:
        if self.seconds is None and (self.mduit_steps is None or self.netvlad_steps is None):
            raise MduitError("a training budget needs step counts for MDUIT and NetVLAD, or a time budget")
        for name, value in (("mduit_steps", self.mduit_steps), ("netvlad_steps", self.netvlad_steps),
                            ("seconds", self.seconds)):
            if value is not None and value <= 0:
                raise MduitError(f"training budget: {name} must be > 0, got {value}")

    def describe(self, kind: str) -> str:
        """'N steps' or 'M min budget' for a method of ``kind``."""
        steps = {"mduit": self.mduit_steps, "netvlad": self.netvlad_steps}.get(kind)
        if kind == "raw":
            return "no training"
        if steps is not None:
            return f"{steps} steps"
        return f"{(self.seconds or 0.0) / 60:g} min budget"


@dataclass
class TrainingRecord:
    """What a finished run says about itself (from run.json)."""

    run_dir: Path
    seconds: float
    steps: int
    images_seen: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


def run_finished(run_dir: Path) -> bool:
    return (Path(run_dir) / "run.json").is_file() and (Path(run_dir) / "model.pt").is_file()


def _has_checkpoint(run_dir: Path) -> bool:
    return (Path(run_dir) / "checkpoints" / "last.pt").exists()


def read_record(run_dir: Path) -> TrainingRecord:
    info = json.loads((Path(run_dir) / "run.json").read_text(encoding="utf-8"))
    training = info.get("training", {})
    return TrainingRecord(Path(run_dir), float(training.get("seconds", float("nan"))), int(training.get("steps", 0)),
                          training.get("images_seen"), training)


def train_method(data: Path, method: MethodSpec, run_dir: Path, budget: TrainingBudget) -> TrainingRecord:
    """Train ``method`` into ``run_dir`` unless it is finished there; returns its record."""
    if method.kind == "raw":
        return TrainingRecord(Path(run_dir), 0.0, 0)
    if not run_finished(run_dir):
        if method.kind == "netvlad":
            _train_netvlad(data, run_dir, budget)
        elif method.kind == "mduit":
            _train_mduit(data, method, run_dir, budget)
        else:
            raise MduitError(f"unknown method kind {method.kind!r}")
    return read_record(run_dir)


# --- NetVLAD ----------------------------------------------------------------------------------
def netvlad_config(budget: TrainingBudget) -> NetVLADTrainConfig:
    """NetVLAD's settings under ``budget``: its step count, or the wall-clock seconds (no epoch limit)."""
    fixed = budget.netvlad_steps is not None
    return NetVLADTrainConfig(backbone=budget.netvlad_backbone, image_size=budget.netvlad_image_size, epochs=None,
                              max_steps=budget.netvlad_steps,
                              max_seconds=None if fixed else round(budget.seconds or 0.0, 1),
                              num_workers=budget.num_workers, seed=budget.seed)


def _train_netvlad(data: Path, run_dir: Path, budget: TrainingBudget) -> None:
    config = netvlad_config(budget)
    result = train_netvlad(config, run_dir, load_training_images(data), budget.device,
                           resume=_has_checkpoint(run_dir), progress=None if budget.progress else False,
                           data_description=str(Path(data).resolve()))
    print(describe_result(result, config))


# --- MDUIT --------------------------------------------------------------------------------------
def plan_path(run_dir: Path) -> Path:
    """Where the planned length of a run is kept (beside the run, which the trainer owns)."""
    run_dir = Path(run_dir)
    return run_dir.with_name(run_dir.name + ".plan.json")


def mduit_settings(method: MethodSpec, budget: TrainingBudget, plan: dict[str, Any]) -> dict[str, Any]:
    """The TranslationConfig settings of ``method`` under ``budget``: the seed, the variant's own
    settings, the budget's settings for every variant, and the run's length from ``plan``."""
    settings: dict[str, Any] = {"seed": budget.seed, **method.train_settings, **budget.mduit_settings}
    if "minutes" in plan:  # the trainer's own time budget alone ends the run
        settings.update(time_budget_min=float(plan["minutes"]), epochs=None)
    else:
        settings["max_steps"] = int(plan["steps"])
    return settings


def _train_mduit(data: Path, method: MethodSpec, run_dir: Path, budget: TrainingBudget) -> None:
    plan_file = plan_path(run_dir)
    if plan_file.is_file():  # keep the length of an interrupted run: resuming needs the same schedule
        plan = json.loads(plan_file.read_text(encoding="utf-8"))
    else:
        if budget.mduit_steps is not None:
            plan = {"steps": budget.mduit_steps, "source": "fixed"}
        else:
            plan = {"minutes": (budget.seconds or 0.0) / 60.0, "source": "trainer time budget"}
        write_json_atomic(plan_file, plan)
    settings, resume = mduit_settings(method, budget, plan), _has_checkpoint(run_dir)
    if resume:  # the checkpoint keeps its own epoch limit (runs begun by older versions named a large one)
        settings.pop("epochs", None)
    train_mduit(budget.mduit_preset, data, run_dir, overrides=settings, device=budget.device, resume=resume,
                num_workers=budget.num_workers, progress=budget.progress, announce=True)

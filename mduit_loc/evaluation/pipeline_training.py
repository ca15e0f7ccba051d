"""Training the compared methods on the same data and the same wall-clock budget.

NetVLAD stops by itself at ``--max-seconds`` (its clock includes k-means initialisation and mining).
MDUIT gets ``--time-budget-min`` when its trainer has that option (it probes its own speed, fits the
learning-rate schedule to the steps that fit and stops when the time is spent). With a trainer that
lacks it, the step count is *calibrated* instead: a short pilot run (``--stop-after``) measures the
seconds per step and the per-epoch pairing overhead, and the real run gets as many ``--max-steps`` as
fit the budget (on a busy machine the real run may then end somewhat early or late). Either way
run.json records the seconds actually spent, which the tables report. Both trainings
resume from their checkpoints when a run was interrupted; a finished run (run.json) is never redone.
"""
from __future__ import annotations

import contextlib
import json
import shutil
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

from mduit_loc.errors import MduitError
from mduit_loc.evaluation.pipeline import MethodSpec, run_command
from mduit_loc.io_utils import write_json_atomic

PILOT_STEPS = 6
SAFETY = 0.95          # plan a little under the budget: the pilot runs on a shared, noisy CPU
MIN_STEPS = 1


@dataclass(frozen=True)
class TrainingBudget:
    """What every method gets. ``seconds`` is the wall-clock training budget per method; the step
    overrides (tests, quick looks) skip the calibration and the time limit."""

    seconds: float
    mduit_steps: int | None = None
    netvlad_steps: int | None = None
    mduit_preset: str = "tiny"
    mduit_settings: tuple[str, ...] = ()         # extra 'train --set KEY=VALUE'
    netvlad_image_size: str | None = None        # 'train-netvlad --image-size' (default: its own)
    netvlad_backbone: str = "light"
    device: str = "auto"
    progress: bool = True
    seed: int = 0
    num_workers: int | None = None               # image decoding workers (default: the trainers' own)


@dataclass
class TrainingRecord:
    """What a finished run says about itself (from run.json)."""

    run_dir: Path
    seconds: float
    steps: int
    images_seen: int | None = None
    details: dict = field(default_factory=dict)


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
    if not run_finished(run_dir):
        if method.kind == "netvlad":
            _train_netvlad(data, run_dir, budget)
        elif method.kind == "mduit":
            _train_mduit(data, method, run_dir, budget)
        else:
            raise MduitError(f"unknown method kind {method.kind!r}")
    return read_record(run_dir)


# --- NetVLAD ----------------------------------------------------------------------------------
def _train_netvlad(data: Path, run_dir: Path, budget: TrainingBudget) -> None:
    argv = ["--data", data, "--out", run_dir, "--backbone", budget.netvlad_backbone, "--device", budget.device,
            "--seed", budget.seed, "--epochs", 100000]
    if budget.netvlad_steps is not None:
        argv += ["--max-steps", budget.netvlad_steps]
    else:
        argv += ["--max-seconds", f"{budget.seconds:.1f}"]
    if budget.netvlad_image_size:
        argv += ["--image-size", budget.netvlad_image_size]
    if budget.num_workers is not None:
        argv += ["--workers", budget.num_workers]
    if _has_checkpoint(run_dir):
        argv.append("--resume")
    run_command("train-netvlad", argv)


# --- MDUIT --------------------------------------------------------------------------------------
def trainer_supports_time_budget() -> bool:
    """Whether ``mduit-loc train`` has ``--time-budget-min`` (added by the translation package)."""
    import argparse

    from mduit_loc.translation import cli_train

    parser = argparse.ArgumentParser(add_help=False)
    cli_train.add_arguments(parser)
    _, unknown = parser.parse_known_args(["--data", "d", "--out", "o", "--time-budget-min", "1"])
    return not unknown


def _length_argv(plan: dict) -> list:
    if "minutes" in plan:  # the trainer's own budget; epochs high enough never to end the run first
        return ["--time-budget-min", f"{float(plan['minutes']):.6g}", "--epochs", 100000]
    return ["--max-steps", int(plan["steps"])]


def _mduit_argv(data: Path, method: MethodSpec, run_dir: Path, budget: TrainingBudget, plan: dict) -> list:
    argv = ["--data", data, "--out", run_dir, "--preset", budget.mduit_preset, *_length_argv(plan),
            "--device", budget.device, "--seed", budget.seed, *method.train_flags]
    for setting in budget.mduit_settings:
        argv += ["--set", setting]
    if not budget.progress:
        argv.append("--no-progress")
    if budget.num_workers is not None:
        argv += ["--num-workers", budget.num_workers]
    return argv


def plan_path(run_dir: Path) -> Path:
    """Where the planned step count of a run is kept (beside the run, which the trainer owns)."""
    run_dir = Path(run_dir)
    return run_dir.with_name(run_dir.name + ".plan.json")


def _train_mduit(data: Path, method: MethodSpec, run_dir: Path, budget: TrainingBudget) -> None:
    plan_file = plan_path(run_dir)
    if plan_file.is_file():  # keep the length of an interrupted run: resuming needs the same schedule
        plan = json.loads(plan_file.read_text(encoding="utf-8"))
    else:
        if budget.mduit_steps is not None:
            plan = {"steps": budget.mduit_steps, "source": "fixed"}
        elif trainer_supports_time_budget():
            plan = {"minutes": budget.seconds / 60.0, "source": "trainer time budget"}
        else:
            plan = calibrate_mduit(data, method, run_dir, budget)
        write_json_atomic(plan_file, plan)
    argv = _mduit_argv(data, method, run_dir, budget, plan)
    if _has_checkpoint(run_dir):
        argv.append("--resume")
    run_command("train", argv)


def calibrate_mduit(data: Path, method: MethodSpec, run_dir: Path, budget: TrainingBudget) -> dict:
    """Steps of ``method`` that fit ``budget.seconds``, from a pilot run of ``PILOT_STEPS`` steps."""
    pilot = Path(run_dir).with_name(Path(run_dir).name + ".pilot")
    if pilot.exists():
        shutil.rmtree(pilot)
    argv = _mduit_argv(data, method, pilot, budget, {"steps": 10 ** 7}) + ["--stop-after", PILOT_STEPS]
    if "--no-progress" not in argv:
        argv.append("--no-progress")
    log_path = pilot.with_name(pilot.name + ".log")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    print(f"    calibrating: a {PILOT_STEPS}-step pilot run measures the seconds per step (log: {log_path})",
          file=sys.stderr, flush=True)
    with open(log_path, "w", encoding="utf-8") as log, contextlib.redirect_stdout(log):
        run_command("train", argv)
    seconds = _step_seconds(pilot / "losses.csv")
    steps_per_epoch = _steps_per_epoch(data, budget)
    shutil.rmtree(pilot)
    per_step = statistics.median(b - a for a, b in zip(seconds[1:], seconds[2:]))
    epoch_overhead = max(0.0, seconds[0] - per_step)   # the first step also pairs the epoch (describes all)
    steps = plan_steps(budget.seconds * SAFETY, per_step, epoch_overhead, steps_per_epoch)
    return {"steps": steps, "source": "calibrated", "budget_s": budget.seconds, "pilot_steps": PILOT_STEPS,
            "seconds_per_step": round(per_step, 4), "epoch_overhead_s": round(epoch_overhead, 2),
            "steps_per_epoch": steps_per_epoch}


def plan_steps(budget_s: float, per_step_s: float, epoch_overhead_s: float, steps_per_epoch: int) -> int:
    """Largest step count S with ``ceil(S / steps_per_epoch) * overhead + S * per_step <= budget``."""
    if per_step_s <= 0:
        raise MduitError(f"calibration measured {per_step_s} s per step; cannot plan a budget")
    best = MIN_STEPS
    for epochs in range(1, int(budget_s / per_step_s) // steps_per_epoch + 2):
        # Within ``epochs`` epochs: as many steps as the time left after their pairing allows.
        fit = min(epochs * steps_per_epoch, int((budget_s - epochs * epoch_overhead_s) / per_step_s))
        if fit > (epochs - 1) * steps_per_epoch:
            best = max(best, fit)
    return best


def _step_seconds(losses_csv: Path) -> list[float]:
    import csv

    with open(losses_csv, encoding="utf-8", newline="") as handle:
        seconds = [float(row["seconds"]) for row in csv.DictReader(handle)]
    if len(seconds) < 3:
        raise MduitError(f"{losses_csv}: the calibration pilot logged {len(seconds)} steps, 3 are needed")
    return seconds


def _steps_per_epoch(data: Path, budget: TrainingBudget) -> int:
    """Steps of one MDUIT epoch: every training image once (one process), as the trainer counts them."""
    from mduit_loc.datasets import open_dataset
    from mduit_loc.translation.config import apply_overrides, preset

    settings = dict(item.partition("=")[::2] for item in budget.mduit_settings)
    batch_size = apply_overrides(preset(budget.mduit_preset), settings).batch_size
    return max(1, len(open_dataset(data).training_images()) // batch_size)

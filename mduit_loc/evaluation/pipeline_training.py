"""Training the compared methods on the same data and the same wall-clock budget.

NetVLAD stops by itself at ``--max-seconds`` (its clock includes k-means initialisation and mining).
MDUIT gets ``--time-budget-min``: it probes its own speed, fits the learning-rate schedule to the
steps that fit (re-fitting while the rate is constant) and stops when the time is spent. run.json
records the seconds actually spent, which the tables report. Both trainings resume from their
checkpoints when a run was interrupted; a finished run (run.json) is never redone.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from mduit_loc.errors import MduitError
from mduit_loc.evaluation.pipeline import MethodSpec, run_command
from mduit_loc.io_utils import write_json_atomic

@dataclass(frozen=True)
class TrainingBudget:
    """What every method gets. ``seconds`` is the wall-clock training budget per method; the step
    overrides (tests, quick looks) replace the time limit."""

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


def add_training_arguments(group, context: str = "") -> None:
    """The step overrides and worker count that demo, ``eval --table1`` and the benchmarks share."""
    prefix = f"{context}: " if context else ""
    group.add_argument("--mduit-steps", type=int,
                       help=f"{prefix}train MDUIT for exactly this many steps (instead of the time budget)")
    group.add_argument("--netvlad-steps", type=int, help=f"{prefix}train NetVLAD for exactly this many steps")
    group.add_argument("--mduit-set", action="append", default=[], metavar="KEY=VALUE",
                       help=f"{prefix}MDUIT setting for every variant ('mduit-loc train --set', repeatable)")
    group.add_argument("--netvlad-image-size", help=f"{prefix}NetVLAD image size, PX or HxW (default: its own, 128)")
    group.add_argument("--num-workers", type=int, help=f"{prefix}image decoding workers (default: automatic)")


def budget_from_args(args, **fields) -> TrainingBudget:
    """A ``TrainingBudget`` from ``--budget-min`` and the options of ``add_training_arguments``."""
    if args.budget_min <= 0:
        raise MduitError(f"--budget-min must be > 0, got {args.budget_min}")
    settings = {"seconds": 60.0 * args.budget_min, "mduit_steps": args.mduit_steps,
                "netvlad_steps": args.netvlad_steps, "mduit_settings": tuple(args.mduit_set),
                "netvlad_image_size": args.netvlad_image_size, "device": getattr(args, "device", "auto"),
                "progress": not args.no_progress, "num_workers": args.num_workers}
    return TrainingBudget(**{**settings, **fields})


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
        else:
            plan = {"minutes": budget.seconds / 60.0, "source": "trainer time budget"}
        write_json_atomic(plan_file, plan)
    argv = _mduit_argv(data, method, run_dir, budget, plan)
    if _has_checkpoint(run_dir):
        argv.append("--resume")
    run_command("train", argv)

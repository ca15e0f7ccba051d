"""Command-line options shared by ``mduit-loc demo``, ``mduit-loc table1`` and the benchmark scripts."""
from __future__ import annotations

import argparse
from typing import Any

from mduit_loc.errors import MduitError
from mduit_loc.pipelines.training import TrainingBudget
from mduit_loc.retrieval.netvlad.train_config import parse_image_size
from mduit_loc.runtime import resolve_device
from mduit_loc.translation.config import parse_assignments, typed_settings


def add_training_arguments(group: argparse.ArgumentParser | argparse._ArgumentGroup, default_steps: int,
                           context: str = "") -> None:
    """The training budget (steps by default, or wall-clock minutes) and the options that demo, ``table1``
    and the benchmarks share."""
    prefix = f"{context}: " if context else ""
    group.add_argument("--mduit-steps", type=int,
                       help=f"{prefix}MDUIT optimizer steps per variant (default: {default_steps}; the same model "
                            "on any machine with the same --threads)")
    group.add_argument("--netvlad-steps", type=int,
                       help=f"{prefix}NetVLAD optimizer steps (default: the MDUIT step count)")
    group.add_argument("--budget-min", type=float,
                       help=f"{prefix}instead of steps, wall-clock training minutes per method (results then "
                            "depend on the machine's speed and load); explicit step counts still apply")
    group.add_argument("--mduit-set", action="append", default=[], metavar="KEY=VALUE",
                       help=f"{prefix}MDUIT setting for every variant ('mduit-loc train --set', repeatable)")
    group.add_argument("--netvlad-image-size", help=f"{prefix}NetVLAD image size, PX or HxW (default: its own, 128)")
    group.add_argument("--num-workers", type=int, help=f"{prefix}image decoding workers (default: automatic)")


def budget_from_args(args: argparse.Namespace, default_steps: int, **fields: Any) -> TrainingBudget:
    """A ``TrainingBudget`` from the options of ``add_training_arguments``: ``default_steps`` for every
    method unless ``--budget-min`` asks for wall-clock time."""
    if args.budget_min is not None and args.budget_min <= 0:
        raise MduitError(f"--budget-min must be > 0, got {args.budget_min}")
    mduit_steps, netvlad_steps = args.mduit_steps, args.netvlad_steps
    if args.budget_min is None:
        mduit_steps = mduit_steps or default_steps
        netvlad_steps = netvlad_steps or mduit_steps
    settings: dict[str, Any] = {
        "seconds": None if args.budget_min is None else 60.0 * args.budget_min,
        "mduit_steps": mduit_steps, "netvlad_steps": netvlad_steps,
        "mduit_settings": typed_settings(parse_assignments(args.mduit_set, "--mduit-set")),
        "netvlad_image_size": parse_image_size(args.netvlad_image_size) if args.netvlad_image_size else None,
        "device": resolve_device(getattr(args, "device", "auto")), "progress": not args.no_progress,
        "num_workers": args.num_workers}
    return TrainingBudget(**{**settings, **fields})

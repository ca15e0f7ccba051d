"""``mduit-loc train``: train MDUIT (translation + contrastive descriptor) on a dataset.

Data-parallel: ``torchrun --nproc_per_node N -m mduit_loc.cli train ...`` (gloo on CPU, nccl on CUDA).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from mduit_loc.runtime import add_device_argument
from mduit_loc.translation.config import PRESETS, TranslationConfig, apply_overrides, preset

# command-line flag -> config field, for the settings with their own flag
_FLAG_FIELDS = {"epochs": "epochs", "max_steps": "max_steps", "time_budget_min": "time_budget_min",
                "batch_size": "batch_size",
                "image_size": "image_size", "lr": "lr", "n_negatives": "n_negatives", "seed": "seed",
                "checkpoint_every": "checkpoint_every", "gan_mode": "gan_mode"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=Path,
                        help="dataset folder: RobotCar Seasons layout (real or 'mduit-loc synth'), a COLMAP "
                             "model with images, or a folder per appearance domain")
    parser.add_argument("--out", required=True, type=Path, help="run folder to create (or continue with --resume)")
    parser.add_argument("--preset", choices=PRESETS, default="tiny",
                        help="'tiny' (minutes on a CPU) or 'paper' (the published settings); default tiny")
    parser.add_argument("--epochs", type=int, help="epochs (paper 50: 35 constant lr + 15 decaying)")
    parser.add_argument("--max-steps", type=int, help="train this many steps instead of whole epochs")
    parser.add_argument("--time-budget-min", type=float, metavar="MIN",
                        help="stop after MIN minutes of training at the latest (or at --epochs/--max-steps if "
                             "sooner); the lr schedule is fitted to the steps that fit. For step-exact, "
                             "reproducible comparisons use --max-steps")
    parser.add_argument("--batch-size", type=int, help="images per step and process (paper 1)")
    parser.add_argument("--image-size", help="training size HxW, e.g. 256x256 (multiple of 4)")
    parser.add_argument("--lr", type=float, help="Adam learning rate (paper 2e-4)")
    parser.add_argument("--n-negatives", type=int, help="NCE negatives per image (paper 16)")
    parser.add_argument("--gan-mode", choices=("nonsaturating", "lsgan"), help="adversarial loss form")
    parser.add_argument("--seed", type=int, help="random seed (default 0)")
    parser.add_argument("--checkpoint-every", type=int, help="steps between checkpoints")
    parser.add_argument("--no-i2i", action="store_true",
                        help="ablation: no translation module; a colour-jittered copy is the positive")
    parser.add_argument("--no-nce", action="store_true",
                        help="ablation: an L1 consistency between the positive vectors replaces NCE")
    parser.add_argument("--vgg-weights", type=Path,
                        help="torchvision VGG-16 state dict (vgg16-397923af.pth) for the appearance encoder; "
                             "without it the VGG trunk trains from scratch (a warning says so)")
    parser.add_argument("--domains", nargs="+", help="train on these domains (conditions) only")
    parser.add_argument("--image-root", type=Path, help="image folder of a COLMAP-model dataset")
    parser.add_argument("--no-test-queries", action="store_true",
                        help="leave the (unlabelled) test query images out of training")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="any other setting of TranslationConfig, e.g. --set nce_temperature=0.1 (repeatable)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--stop-after", type=int, metavar="STEP",
                        help="stop after this step with a checkpoint, as if killed (the schedule is unchanged)")
    parser.add_argument("--num-workers", type=int, help="image decoding workers (default: cores - 1, max 4)")
    parser.add_argument("--threads", type=int,
                        help="torch CPU threads per process (default: torch's; 1 helps on a busy shared CPU)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--no-amp", action="store_true", help="no mixed precision on CUDA")
    add_device_argument(parser)


def explicit_settings(args: argparse.Namespace) -> dict:
    """The config fields the user set on the command line (strings are parsed by type later)."""
    from mduit_loc.errors import MduitError

    settings = {field: getattr(args, flag) for flag, field in _FLAG_FIELDS.items() if getattr(args, flag) is not None}
    if args.no_i2i:
        settings["use_i2i"] = False
    if args.no_nce:
        settings["use_nce"] = False
    if args.no_amp:
        settings["mixed_precision"] = False
    for item in args.settings:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise MduitError(f"--set {item!r}: expected KEY=VALUE, e.g. --set nce_temperature=0.1")
        settings[key.strip()] = value.strip()
    return settings


def build_config(args: argparse.Namespace) -> tuple[TranslationConfig, dict]:
    settings = explicit_settings(args)
    return apply_overrides(preset(args.preset), settings), settings


def run(args: argparse.Namespace) -> int:
    from mduit_loc.translation.distributed import init_distributed
    from mduit_loc.translation.trainer import TrainOptions, Trainer

    config, settings = build_config(args)
    context = init_distributed(args.device)
    try:
        options = TrainOptions(data=args.data, out=args.out, image_root=args.image_root, domains=args.domains,
                               vgg_weights=args.vgg_weights, device=args.device, resume=args.resume,
                               stop_after=args.stop_after, num_workers=args.num_workers,
                               progress=not args.no_progress, include_test_queries=not args.no_test_queries,
                               threads=args.threads,
                               explicit_settings=settings)
        trainer = Trainer(config, options, context)
        if context.is_main:
            counts = trainer.training_set.domain_counts()
            print(f"MDUIT {trainer.config.preset}: {len(trainer.training_set)} images in {len(counts)} domains "
                  f"({', '.join(f'{d} {n}' for d, n in counts.items())}); {describe_length(trainer)}, "
                  f"batch {trainer.config.batch_size} x {context.world_size} process(es) on {trainer.device}"
                  + (f", resuming at step {trainer.step}" if args.resume else ""))
        summary = trainer.run()
        if context.is_main:
            print_summary(summary)
    finally:
        context.close()
    return 0


def print_summary(summary) -> None:
    per_step = summary.seconds / max(1, summary.steps)
    state = "stopped (resume with --resume)" if summary.stopped_early else "finished"
    if summary.stopped_by_budget:
        state = "finished (time budget spent)"
    print(f"training {state}: {summary.steps}/{summary.total_steps} steps, {summary.epochs:.2f} epochs, "
          f"{summary.seconds:.1f} s ({per_step:.3f} s/step), {summary.world_size} process(es)")
    if summary.final_losses:
        print("final losses: " + ", ".join(f"{k} {v:.4g}" for k, v in sorted(summary.final_losses.items())))
    run = summary.run_dir
    if not summary.stopped_early:
        print(f"model: {run / 'model.pt'}  (describe/translate with --model {run})")
        print(f"run: {run / 'run.json'}; per-domain appearance filters: {run / 'appearances.pt'}")
        print(f"loss curves: {run / 'losses.csv'}, {run / 'losses.png'}")
    print(f"checkpoints: {run / 'checkpoints'}")


def describe_length(trainer) -> str:
    """'N steps', or how a time budget will decide the count (a huge upper bound helps nobody)."""
    budget = trainer.budget
    if budget is None or budget.fixed_total is not None:
        return f"{trainer.total_steps} steps"
    return f"steps fitted to a {trainer.config.time_budget_min:g} min budget after a short probe"

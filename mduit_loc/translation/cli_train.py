"""``mduit-loc train``: train MDUIT (translation + contrastive descriptor) on a dataset.

Data-parallel: ``torchrun --nproc_per_node N -m mduit_loc.cli train ...`` (gloo on CPU, nccl on CUDA).
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from mduit_loc.runtime import add_device_argument, resolve_device
from mduit_loc.translation.api import train
from mduit_loc.translation.config import PRESETS, TranslationConfig, apply_overrides, parse_assignments, preset

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
                        help="'tiny' (minutes on a CPU; its z is the best descriptor measured), "
                             "'tiny-translator' (tiny with a 4x stronger layout loss, a quarter of the "
                             "adversarial weights and a content map twice as fine: translations that keep "
                             "the facades, e.g. for 'query --translate-queries-to'; a weaker z, 1.7x the time "
                             "per step) "
                             "or 'paper' (the published settings, for a GPU); default tiny")
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
                        help="ablation: NCE is replaced by --set nce_ablation_loss (tiny: 'margin', eq. 4's hinge on "
                             "z's cosine distances; paper: 'l1', the paper's L1 pull between positive vectors)")
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


def explicit_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields the user set on the command line (strings are parsed by type later)."""
    settings = {field: getattr(args, flag) for flag, field in _FLAG_FIELDS.items() if getattr(args, flag) is not None}
    if args.no_i2i:
        settings["use_i2i"] = False
    if args.no_nce:
        settings["use_nce"] = False
    if args.no_amp:
        settings["mixed_precision"] = False
    settings.update(parse_assignments(args.settings, "--set"))
    return settings


def build_config(args: argparse.Namespace) -> tuple[TranslationConfig, dict[str, Any]]:
    settings = explicit_settings(args)
    return apply_overrides(preset(args.preset), settings), settings


def run(args: argparse.Namespace) -> int:
    train(args.preset, args.data, args.out, overrides=explicit_settings(args), device=resolve_device(args.device),
          resume=args.resume, vgg_weights=args.vgg_weights, domains=args.domains, image_root=args.image_root,
          include_test_queries=not args.no_test_queries, num_workers=args.num_workers, threads=args.threads,
          progress=not args.no_progress, stop_after=args.stop_after, announce=True)
    return 0

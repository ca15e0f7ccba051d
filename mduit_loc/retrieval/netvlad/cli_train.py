"""``mduit-loc train-netvlad``: train the NetVLAD baseline on a dataset, weakly supervised by pose.

Examples::

    mduit-loc train-netvlad --data data/synthetic --out runs/netvlad-light --backbone light --epochs 5
    mduit-loc train-netvlad --data data/robotcar --out runs/netvlad-vgg --backbone vgg16 \\
        --vgg-weights vgg16-397923af.pth --max-steps 5000 --whiten-dim 4096 --device cuda
"""
from __future__ import annotations

import argparse
from pathlib import Path

from mduit_loc.errors import MduitError
from mduit_loc.retrieval.netvlad.train_config import NetVLADTrainConfig, parse_image_size
from mduit_loc.retrieval.netvlad.train_data import load_training_images
from mduit_loc.retrieval.netvlad.training import describe_result, train_netvlad
from mduit_loc.runtime import add_device_argument, resolve_device


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, type=Path,
                        help="dataset folder with poses (RobotCar Seasons layout or COLMAP map + images)")
    parser.add_argument("--out", required=True, type=Path, help="run directory to write (model.pt, run.json, loss.csv)")
    parser.add_argument("--backbone", choices=("vgg16", "light"), default="light",
                        help="vgg16 (paper, GPU) or light (small CNN for CPU) (default: light)")
    parser.add_argument("--vgg-weights", type=Path, default=None,
                        help="torchvision VGG-16 state dict (.pth) to start vgg16 from (ImageNet weights)")
    parser.add_argument("--clusters", type=int, default=None, help="NetVLAD clusters K (default: 64 vgg16, 32 light)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs (default: 5)")
    parser.add_argument("--max-steps", type=int, default=None, help="stop after this many optimizer steps")
    parser.add_argument("--max-seconds", type=float, default=None, help="stop after this much wall time")
    parser.add_argument("--image-size", default=None,
                        help="training/extraction size, PX or HxW (default: 240x320 vgg16, 128 light)")
    parser.add_argument("--batch-size", type=int, default=4, help="tuples (anchor, positive, negatives) per step")
    parser.add_argument("--negatives", type=int, default=5, help="hard negatives per tuple (paper: 10)")
    parser.add_argument("--negative-pool", type=int, default=1000, help="random images searched for hard negatives")
    parser.add_argument("--anchors-per-epoch", type=int, default=None, help="cap on tuples per epoch (default: all)")
    parser.add_argument("--loss", choices=("triplet", "contrastive"), default="triplet",
                        help="triplet (margin 0.1 on squared distances, paper) or contrastive")
    parser.add_argument("--lr", type=float, default=None, help="Adam learning rate (default: 1e-5 vgg16, 1e-3 light)")
    parser.add_argument("--fine-tune-all", action="store_true", help="vgg16: also train conv1-conv4")
    parser.add_argument("--whiten-dim", type=int, default=None,
                        help="fit PCA whitening to this many dimensions after training (paper: 4096)")
    parser.add_argument("--workers", type=int, default=None, help="DataLoader workers (default: automatic)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="continue from OUT/checkpoints/last.pt")
    add_device_argument(parser)


def config_from_args(args: argparse.Namespace) -> NetVLADTrainConfig:
    return NetVLADTrainConfig(
        backbone=args.backbone, num_clusters=args.clusters,
        image_size=parse_image_size(args.image_size) if args.image_size else None,
        n_negatives=args.negatives, negative_pool=args.negative_pool, anchors_per_epoch=args.anchors_per_epoch,
        loss=args.loss, batch_size=args.batch_size, lr=args.lr, fine_tune_all=args.fine_tune_all,
        epochs=args.epochs, max_steps=args.max_steps, max_seconds=args.max_seconds,
        whiten_dim=args.whiten_dim, num_workers=args.workers, seed=args.seed)


def run(args: argparse.Namespace) -> int:
    if args.vgg_weights is not None and args.backbone != "vgg16":
        raise MduitError("--vgg-weights only applies to --backbone vgg16")
    config = config_from_args(args)
    device = resolve_device(args.device)
    images = load_training_images(args.data)
    result = train_netvlad(config, args.out, images, device, args.vgg_weights, args.resume,
                           data_description=str(args.data.resolve()))
    print(describe_result(result, config))
    return 0

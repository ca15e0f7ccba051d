"""``mduit-loc translate``: translate source images into the appearance of target images.

Writes ``OUT/<i>_<source>__<j>_<appearance>.png`` for every pair, ``OUT/translations.csv`` listing
them, and ``OUT/grid.png`` (rows: sources, labelled with their condition; columns: appearances, named on
top; like the paper's Fig. 3, upscaled to --grid-cell px); see
``mduit_loc.translation.translate``.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from mduit_loc.errors import MduitError
from mduit_loc.runtime import add_device_argument, resolve_device
from mduit_loc.translation.grid import RESAMPLING, GridOptions
from mduit_loc.translation.translate import parse_size, translate_images


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, type=Path, help="MDUIT run folder (from 'mduit-loc train')")
    parser.add_argument("--images", required=True, nargs="+", help="source images: files, folders or list files")
    parser.add_argument("--appearance", required=True, nargs="+",
                        help="target appearances: image files, folders, list files, or domain:NAME")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--size", help="work size HxW (default: the model's training size)")
    parser.add_argument("--batch-size", type=int, default=16, help="images per forward pass (default 16)")
    parser.add_argument("--grid-limit", type=int, default=12,
                        help="at most this many rows and columns in grid.png (default 12)")
    parser.add_argument("--grid-cell", type=int, default=192,
                        help="height of each image in grid.png, upscaled from the work size (default 192 px)")
    parser.add_argument("--grid-resample", choices=tuple(RESAMPLING), default="nearest",
                        help="upscaling of the grid's images: nearest (default; the model's pixels) or bicubic")
    add_device_argument(parser)


def run(args: argparse.Namespace) -> int:
    size = parse_size(args.size) if args.size else None
    if args.grid_cell < 16:
        raise MduitError(f"--grid-cell {args.grid_cell}: expected at least 16 (pixels)")
    result = translate_images(args.model, args.images, args.appearance, args.out, size=size,
                              batch_size=args.batch_size, grid_limit=args.grid_limit,
                              device=resolve_device(args.device),
                              grid=GridOptions(cell=args.grid_cell, resample=args.grid_resample))
    print(f"{result.translations} translations ({result.sources} sources x {result.appearances} appearances) in "
          f"{args.out}; grid ({result.grid_shape[0]} x {result.grid_shape[1]}): {result.grid}")
    return 0

"""Arguments shared by the ``extract``, ``index`` and ``query`` commands."""
from __future__ import annotations

import argparse
import logging

from mduit_loc.retrieval.extract import ON_ERROR_CHOICES, ExtractOptions
from mduit_loc.retrieval.options import DEFAULT_FUSE_WEIGHT
from mduit_loc.runtime import add_device_argument


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def add_fuse_argument(group) -> None:
    """``--fuse-translations [W]`` (``IndexOptions.fuse_translations``), of ``index`` and ``eval``."""
    group.add_argument("--fuse-translations", type=float, nargs="?", const=DEFAULT_FUSE_WEIGHT, metavar="W",
                       help="with --translate-db: store one vector per database image, the normalised blend "
                            f"(1-W) z(original) + W mean z(translated copies) (W default {DEFAULT_FUSE_WEIGHT:g}), "
                            "instead of one vector per copy where an image scores its best copy (the paper's "
                            "rule: a blurred copy of a wrong place then often wins). Measured on Table 1's Full "
                            "model, night recall at (5 m, 10 deg): best copy 29.4 %%, fused 34.0 %%, no copies "
                            "33.3 %%")


def add_loading_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("image loading")
    group.add_argument("--batch-size", type=positive_int, default=16, help="images per batch (default: 16)")
    group.add_argument("--num-workers", type=int, default=None,
                       help="DataLoader workers decoding images (default: CPU cores - 1, at most 4)")
    group.add_argument("--on-error", choices=ON_ERROR_CHOICES, default="fail",
                       help="unreadable or corrupt images: fail the run (default) or skip them (they are "
                            "listed with their path)")
    group.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_device_argument(group)


def extract_options(args: argparse.Namespace, **fields: bool) -> ExtractOptions:
    """The image loading options of ``add_loading_arguments`` (plus ``fp16`` / ``overwrite`` where a
    command has them)."""
    return ExtractOptions(batch_size=args.batch_size, num_workers=args.num_workers, on_error=args.on_error,
                          progress=not args.no_progress, **fields)


def setup_logging() -> None:
    """Warnings of the retrieval modules reach the terminal as one line each."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")

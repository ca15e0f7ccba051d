"""``mduit-loc translation-quality``: how well an MDUIT model translates, on a benchmark's aligned set.

Example::

    mduit-loc translation-quality --model runs/mduit --data data/synth --out quality/
    mduit-loc translation-quality --model runs/mduit --data data/synth --out q/ --pairs 'night:*' '*:night'

Per source -> target condition pair: PSNR / SSIM of the translation against the true rendering at
the same pose, the content kept (gradient SSIM and E_c cosine vs the source), how often two
classifiers put it in the target condition; beside the colour-transfer and identity baselines
and the floor (the target at another pose); pooled day->night, night->day and all. Writes
quality.csv, reconstruction.csv, summary.md and summary.json into --out (see
``mduit_loc.evaluation.translation_quality_outputs``).
"""
from __future__ import annotations

import argparse
from pathlib import Path

from mduit_loc.evaluation.translation_quality_outputs import (
    classifier_table,
    pooled_table,
    reconstruction_table,
    translation_quality,
    verdict_lines,
)
from mduit_loc.evaluation.translation_quality_run import APPEARANCES, QualityOptions
from mduit_loc.runtime import add_device_argument, resolve_device
from mduit_loc.translation.translate import parse_size


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, type=Path, help="MDUIT run folder (from 'mduit-loc train')")
    parser.add_argument("--data", required=True, type=Path,
                        help="benchmark with an aligned set (aligned/aligned.txt, written by 'mduit-loc synth')")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--pairs", nargs="+", default=[], metavar="SOURCE:TARGET",
                        help="condition pairs, '*' for any condition (e.g. 'night:*' '*:night'; default: every "
                             "ordered pair of the aligned set's conditions)")
    parser.add_argument("--size", help="evaluation size HxW: the model runs and every image is read at it "
                                       "(default: the model's training size)")
    parser.add_argument("--appearance", choices=APPEARANCES, default="domain",
                        help="target appearance given to the model: 'domain' (default), the target condition's "
                             "mean filter W; 'exemplar', E_a of the target condition at another, random pose")
    parser.add_argument("--max-poses", type=int, help="evenly spaced subset of the aligned poses (default: all)")
    parser.add_argument("--colour-images", type=int, default=200,
                        help="real images per condition for the colour statistics and classifier (default 200)")
    parser.add_argument("--batch-size", type=int, default=16, help="images per forward pass (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random other poses (default 0)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_device_argument(parser)


def run(args: argparse.Namespace) -> int:
    options = QualityOptions(pairs=tuple(args.pairs), size=parse_size(args.size) if args.size else None,
                             appearance=args.appearance, max_poses=args.max_poses, colour_images=args.colour_images,
                             batch_size=args.batch_size, seed=args.seed, progress=not args.no_progress)
    written = translation_quality(args.model, args.data, args.out, options, resolve_device(args.device))
    result = written.result
    print(pooled_table(result).to_text())
    print("\n".join(verdict_lines(result)))
    print("\n" + reconstruction_table(result).to_text())
    print("\n" + classifier_table(result).to_text())
    print("\nwrote " + ", ".join(str(path) for path in written.files.values()))
    return 0

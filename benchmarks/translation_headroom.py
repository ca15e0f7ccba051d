"""Headroom of translation fidelity on an aligned set: what a perfect global colour map, a perfect coarse
layout, or MDUIT with the right global colours would score.

    .venv/bin/python benchmarks/translation_headroom.py --data DIR [--model RUN] [--every 3]

Oracles look at the true rendering B_p of the target condition (they are upper bounds, not methods):

- ``colour matrix fitted to the truth``: per image, the 3 x 3 + bias RGB map from the source A_p that
  best fits B_p (least squares): no global colour transfer can do better;
- ``truth pooled onto an N x N grid``: B_p average-pooled onto N x N cells and upsampled (bilinear):
  a translation that has the right colour layout at that resolution and no detail;
- ``MDUIT, colours refitted to the truth`` (with ``--model``): MDUIT's output with a per-image,
  per-channel gain and offset fitted to B_p: MDUIT's layout with the right global colours.

- ``truth under another per-frame exposure``: B_p scaled by the mean of the renderer's per-frame
  auto-exposure and white-balance jitter over a random draw of it (in display space, an approximation):
  the error left to a perfect translator that cannot know the frame's exposure.

Three non-oracle rows (with ``--model``): MDUIT's output plus the source's high frequencies (A_p minus
A_p blurred with a Gaussian of ``sigma`` 1 px), MDUIT's output blurred with the same Gaussian (is
sharpness what is missing?), and MDUIT's output colour-transferred (Lab mean / std) to the target
condition's typical statistics, taken from the aligned poses not scored (are its global colours
off by a condition-wide shift?).

Scored as ``mduit-loc translation-quality`` scores (PSNR from scikit-image against B_p, images read at
the model's size or ``--size``), pooled over the day -> night and night -> day pairs, on every
``--every``-th aligned pose. Prints a table; ``--out FILE`` also writes it as Markdown.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from mduit_loc.datasets.aligned import AlignedPose, read_aligned_set
from mduit_loc.datasets.images import load_image
from mduit_loc.datasets.synthetic.effects import EXPOSURE_RANGE, exposure_jitter_gains
from mduit_loc.evaluation.translation_quality import LabStats, colour_transfer, direction, lab_features, lab_stats, psnr
from mduit_loc.io_utils import write_text_atomic
from mduit_loc.pipelines.threads import configure_threads
from mduit_loc.translation.mduit import MDUIT
from mduit_loc.translation.model_io import load_mduit

DIRECTIONS = ("day->night", "night->day")
STATISTICS_IMAGES = 200   # target images (aligned poses not scored) behind each condition's Lab statistics
# E[exposure] of the log-uniform per-frame exposure; the white-balance gains average 1
MEAN_EXPOSURE = (EXPOSURE_RANGE[1] - EXPOSURE_RANGE[0]) / float(np.log(EXPOSURE_RANGE[1] / EXPOSURE_RANGE[0]))


def colour_matrix_fit(source: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Per image, the least-squares affine RGB map (3 x 3 + bias) of ``source`` onto ``truth`` (B, 3, H, W)."""
    batch = source.shape[0]
    design = torch.cat([source.flatten(2), torch.ones(batch, 1, source[0, 0].numel())], 1).transpose(1, 2)
    solution = torch.linalg.lstsq(design, truth.flatten(2).transpose(1, 2)).solution
    return (design @ solution).transpose(1, 2).reshape_as(truth).clamp(0, 1)


def channel_gain_fit(image: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """Per image and channel, the least-squares gain and offset of ``image`` onto ``truth``."""
    image_mean, truth_mean = image.mean((2, 3), keepdim=True), truth.mean((2, 3), keepdim=True)
    centred = image - image_mean
    gain = (centred * (truth - truth_mean)).mean((2, 3), keepdim=True) / centred.pow(2).mean(
        (2, 3), keepdim=True).clamp_min(1e-6)
    return (gain * centred + truth_mean).clamp(0, 1)


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """(B, C, H, W) images blurred over H and W (scipy's Gaussian, mirrored at the borders, 3 sigma each side)."""
    blurred = ndimage.gaussian_filter(images.numpy(), sigma=(0, 0, sigma, sigma), mode="mirror", truncate=3.0)
    return torch.from_numpy(blurred)


def grid_pooled(truth: torch.Tensor, cells: int) -> torch.Tensor:
    return F.interpolate(F.adaptive_avg_pool2d(truth, cells), size=truth.shape[-2:], mode="bilinear",
                         align_corners=False)


def reexposed(truth: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Each image times the mean per-frame jitter over a random draw of it (``effects.exposure_jitter_gains``)."""
    draws = torch.from_numpy(np.stack([exposure_jitter_gains(rng) for _ in range(len(truth))]))
    return (truth * MEAN_EXPOSURE / draws[:, :, None, None]).clamp(0, 1)


def aligned_images(poses: list[AlignedPose], conditions: tuple[str, ...],
                   size: tuple[int, int]) -> dict[str, torch.Tensor]:
    """{condition: (N, 3, H, W) float images in [0, 1]} of ``poses``, in order, read at ``size``."""
    return {c: torch.from_numpy(np.stack([load_image(p.images[c], size) for p in poses])).permute(0, 3, 1, 2)
            .float() / 255.0 for c in conditions}


def print_and_save(lines: list[str], out: Path | None) -> None:
    """Print a Markdown table and, with ``out``, write it there too."""
    print("\n".join(lines))
    if out:
        write_text_atomic(out, "\n".join(lines) + "\n")


def colour_matched(images: torch.Tensor, target: LabStats) -> torch.Tensor:
    """``colour_transfer`` of each (3, H, W) image to the target statistics."""
    moved = [colour_transfer(image, target) for image in images.permute(0, 2, 3, 1).double().numpy()]
    return torch.from_numpy(np.stack(moved)).float().permute(0, 3, 1, 2)


def oracle_outputs(source: torch.Tensor, truth: torch.Tensor, translated: torch.Tensor | None,
                   target: LabStats, rng: np.random.Generator) -> dict[str, torch.Tensor]:
    outputs = {"colour matrix fitted to the truth": colour_matrix_fit(source, truth)}
    for cells in (4, 8, 16):
        outputs[f"truth pooled onto a {cells}x{cells} grid"] = grid_pooled(truth, cells)
    outputs["truth under another per-frame exposure and white balance"] = reexposed(truth, rng)
    if translated is not None:
        outputs["MDUIT (domain-mean W)"] = translated
        outputs["MDUIT, colours refitted to the truth"] = channel_gain_fit(translated, truth)
        details = source - gaussian_blur(source, 1.0)
        outputs["MDUIT + the source's high frequencies (σ 1 px)"] = (translated + details).clamp(0, 1)
        outputs["MDUIT blurred (σ 1 px)"] = gaussian_blur(translated, 1.0)
        outputs["MDUIT colour-transferred to the target's typical Lab statistics"] = colour_matched(translated, target)
    return outputs


def headroom(data: Path, model: MDUIT | None, size: tuple[int, int], every: int) -> dict[str, dict[str, float]]:
    aligned = read_aligned_set(data)
    poses = aligned.poses[::every]
    images = aligned_images(poses, aligned.conditions, size)
    others = [p for i, p in enumerate(aligned.poses) if i % every][:STATISTICS_IMAGES]
    statistics = {c: lab_stats(np.stack([lab_features(load_image(p.images[c], size).astype(np.float64) / 255.0)
                                         for p in others])) for c in aligned.conditions}
    rng = np.random.default_rng(0)
    filters = model.domain_filters() if model is not None else {}
    scores: dict[str, dict[str, list[float]]] = {}
    with torch.inference_mode():
        for source in aligned.conditions:
            content = model.content(images[source]) if model is not None else None
            for target in aligned.conditions:
                group = direction(source, target)
                if group not in DIRECTIONS:
                    continue
                translated = (model.generate(content, filters[target]).clamp(0, 1)
                              if model is not None and content is not None else None)
                truth = images[target]
                reference = truth.permute(0, 2, 3, 1).numpy()
                outputs = oracle_outputs(images[source], truth, translated, statistics[target], rng)
                for name, output in outputs.items():
                    values = [psnr(o, t) for o, t in zip(output.permute(0, 2, 3, 1).numpy(), reference)]
                    scores.setdefault(name, {}).setdefault(group, []).extend(values)
    return {name: {group: float(np.mean(v)) for group, v in groups.items()} for name, groups in scores.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="benchmark with an aligned set")
    parser.add_argument("--model", type=Path, help="MDUIT run (adds its rows; its size is the evaluation size)")
    parser.add_argument("--size", type=int, help="evaluation size (square; default: the model's, else 64)")
    parser.add_argument("--every", type=int, default=3,
                        help="every N-th aligned pose (default: 3; at least 2: the others give the colour statistics)")
    parser.add_argument("--out", type=Path, help="also write the table here (Markdown)")
    parser.add_argument("--threads", type=int)
    args = parser.parse_args(argv)
    if args.every < 2:
        parser.error("--every must be >= 2: the aligned poses not scored give the colour statistics")
    configure_threads(args.threads)
    model = load_mduit(args.model).eval() if args.model else None
    size = (args.size, args.size) if args.size else (model.image_size if model is not None else (64, 64))
    table = headroom(args.data, model, size, args.every)
    lines = [f"PSNR (dB) against the true rendering at {size[0]}x{size[1]} px, one aligned pose in {args.every}, "
             "pooled per direction (oracles look at the truth: upper bounds, not methods).", "",
             "| output | " + " | ".join(DIRECTIONS) + " |", "|---|" + "---:|" * len(DIRECTIONS)]
    lines += [f"| {name} | " + " | ".join(f"{groups[d]:.2f}" for d in DIRECTIONS) + " |"
              for name, groups in table.items()]
    print_and_save(lines, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""How far MDUIT's generator is from what its architecture could reach with pixel-aligned ground truth.

    .venv/bin/python benchmarks/translation_supervised_bound.py --data DIR --model RUN [--steps 1500]

MDUIT learns translation without paired images (adversarial, reconstruction and a weakly-paired layout
loss towards a same-place view a few metres away). The synthetic aligned set has what real data lacks:
every condition rendered at the same pose. This script fine-tunes copies of the trained model on those
pairs with a plain mean squared error (what PSNR scores) and scores them on aligned poses it never saw:

- ``colour transfer``: the global Lab baseline of ``mduit-loc translation-quality``, each condition's
  statistics taken from the fine-tuning poses' images;
- ``MDUIT as trained``: the run's own networks, the target condition's domain-mean filter W;
- ``G fine-tuned on aligned pairs (E_c frozen)``: the same content code, a generator taught the truth;
- ``E_c and G fine-tuned on aligned pairs``: the content code may carry more of what the truth needs.

Poses are split along the route (sorted by timestamp): the first ``--train-fraction`` teach, the rest
are scored, so no scored building was seen during fine-tuning (the renderer lights each window by a hash
of its id, which a split between neighbouring frames would let the networks memorise). The fine-tuned
rows are therefore a bound for this architecture and content code trained on this town, not a method:
if they sit far above MDUIT as trained, its losses (not its size or what a day frame shows) limit it.
Scored as ``mduit-loc translation-quality`` scores (scikit-image PSNR at the model's size), pooled over
the day -> night and night -> day pairs. Prints a table; ``--out FILE`` also writes it as Markdown.
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Mapping, Union

import numpy as np
import torch
import torch.nn.functional as F
from translation_headroom import (  # this folder: the script's own sys.path[0]
    DIRECTIONS,
    aligned_images,
    colour_matched,
    print_and_save,
)

from mduit_loc.datasets.aligned import AlignedPose, read_aligned_set
from mduit_loc.evaluation.translation_quality import LabStats, direction, lab_features, lab_stats, psnr
from mduit_loc.pipelines.threads import configure_threads
from mduit_loc.translation.mduit import MDUIT
from mduit_loc.translation.model_io import load_mduit


def route_split(poses: list[AlignedPose], train_fraction: float) -> tuple[list[AlignedPose], list[AlignedPose]]:
    """The poses of the first ``train_fraction`` of the route (by timestamp) and those of the rest."""
    stamps = sorted({pose.timestamp for pose in poses}, key=int)
    cut = stamps[int(len(stamps) * train_fraction)]
    return ([pose for pose in poses if int(pose.timestamp) < int(cut)],
            [pose for pose in poses if int(pose.timestamp) >= int(cut)])


def day_night_pairs(conditions: tuple[str, ...]) -> list[tuple[str, str]]:
    return [(s, t) for s in conditions for t in conditions if direction(s, t) in DIRECTIONS]


def translate(model: MDUIT, images: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
    return model.generate(model.content(images), filters).clamp(0, 1)


def fine_tune(model: MDUIT, images: dict[str, torch.Tensor], steps: int, train_content: bool,
              batch: int, lr: float, seed: int) -> MDUIT:
    """A copy of ``model`` whose G (and E_c when ``train_content``) learned the aligned pairs by MSE."""
    tuned = copy.deepcopy(model).train()
    networks = [tuned.generator] + ([tuned.content_encoder] if train_content else [])
    for parameter in tuned.parameters():
        parameter.requires_grad_(False)
    trained = [p for network in networks for p in network.parameters()]
    for parameter in trained:
        parameter.requires_grad_(True)
    optimizer = torch.optim.Adam(trained, lr=lr)
    filters = {c: f.detach() for c, f in tuned.domain_filters().items()}
    pairs = day_night_pairs(tuple(images))
    by_direction = [[pair for pair in pairs if direction(*pair) == group] for group in DIRECTIONS]
    generator = torch.Generator().manual_seed(seed)
    count = len(next(iter(images.values())))
    for step in range(steps):
        loss = torch.zeros(())
        for group in by_direction:     # each step: half a batch of one random pair of each direction
            source, target = group[int(torch.randint(len(group), (1,), generator=generator))]
            rows = torch.randint(count, (max(batch // 2, 1),), generator=generator)
            output = tuned.generate(tuned.content(images[source][rows]), filters[target])
            loss = loss + F.mse_loss(output, images[target][rows]) / len(by_direction)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if (step + 1) % max(steps // 5, 1) == 0:
            print(f"  step {step + 1}/{steps}: mse {loss.item():.5f} ({'E_c and G' if train_content else 'G'})",
                  file=sys.stderr, flush=True)
    return tuned.eval()


def condition_statistics(images: dict[str, torch.Tensor]) -> dict[str, LabStats]:
    """Each condition's Lab colour statistics (the colour-transfer baseline's target), from ``images``."""
    return {c: lab_stats(np.stack([lab_features(image) for image in batch.permute(0, 2, 3, 1).double().numpy()]))
            for c, batch in images.items()}


Translator = Union[MDUIT, Mapping[str, LabStats]]


@torch.inference_mode()
def scores(model: Translator, images: dict[str, torch.Tensor]) -> dict[str, float]:
    """Mean PSNR per direction of ``model``'s translations (an MDUIT, or colour statistics to transfer to)."""
    pooled: dict[str, list[float]] = {group: [] for group in DIRECTIONS}
    for source, target in day_night_pairs(tuple(images)):
        translated = (translate(model, images[source], model.domain_filters()[target]) if isinstance(model, MDUIT)
                      else colour_matched(images[source], model[target]))
        output = translated.permute(0, 2, 3, 1).numpy()
        truth = images[target].permute(0, 2, 3, 1).numpy()
        pooled[direction(source, target)].extend(psnr(o, t) for o, t in zip(output, truth))
    return {group: float(np.mean(values)) for group, values in pooled.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True, help="benchmark with an aligned set")
    parser.add_argument("--model", type=Path, required=True, help="MDUIT run (its size is the evaluation size)")
    parser.add_argument("--steps", type=int, default=1500, help="fine-tuning steps per variant (default 1500)")
    parser.add_argument("--batch", type=int, default=32, help="images per step, half of each direction (default 32)")
    parser.add_argument("--lr", type=float, default=3e-4, help="Adam learning rate (default 3e-4)")
    parser.add_argument("--train-fraction", type=float, default=2 / 3,
                        help="the first part of the route (by timestamp) that teaches (default 2/3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="also write the table here (Markdown)")
    parser.add_argument("--threads", type=int)
    args = parser.parse_args(argv)
    configure_threads(args.threads)
    torch.manual_seed(args.seed)
    model = load_mduit(args.model).eval()
    aligned = read_aligned_set(args.data)
    teach, scored = route_split(aligned.poses, args.train_fraction)
    train_images = aligned_images(teach, aligned.conditions, model.image_size)
    test_images = aligned_images(scored, aligned.conditions, model.image_size)
    rows: dict[str, Translator] = {
        "colour transfer (Lab; each condition's statistics from the fine-tuning poses)": condition_statistics(
            train_images),
        "MDUIT as trained (domain-mean W)": model}
    for train_content in (False, True):
        name = ("E_c and G fine-tuned on aligned pairs" if train_content
                else "G fine-tuned on aligned pairs (E_c frozen)")
        rows[name] = fine_tune(model, train_images, args.steps, train_content, args.batch, args.lr, args.seed)
    lines = [f"PSNR (dB) at {model.image_size[0]}x{model.image_size[1]} px on {len(scored)} aligned poses of the "
             f"route's last {1 - args.train_fraction:.0%} (fine-tuning: {len(teach)} poses of the rest, "
             f"{args.steps} steps of batch {args.batch}, MSE), pooled per direction.", "",
             "| output | " + " | ".join(DIRECTIONS) + " | the same on the fine-tuning poses |",
             "|---|" + "---:|" * (len(DIRECTIONS) + 1)]
    for name, network in rows.items():
        held_out, seen = scores(network, test_images), scores(network, train_images)
        lines.append(f"| {name} | " + " | ".join(f"{held_out[d]:.2f}" for d in DIRECTIONS)
                     + " | " + " / ".join(f"{seen[d]:.2f}" for d in DIRECTIONS) + " |")
    print_and_save(lines, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

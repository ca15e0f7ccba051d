"""A miniature synthetic benchmark (2 locations, 32 px, with its aligned set) and a 2-step MDUIT run on
it, for end-to-end tests of what reads a trained model (translation quality, translation grids)."""
from __future__ import annotations

import warnings
from pathlib import Path

from mduit_loc.pipelines.stages import render_synthetic
from mduit_loc.translation.api import train

# Smaller than the tiny preset so that the two steps and every forward pass take milliseconds.
MINI_MODEL = dict(image_size=(32, 32), encoder_base_channels=4, encoder_res_blocks=1, vgg_layer="relu2_2",
                  appearance_input_size=16, appearance_hidden=16, filter_groups=16, generator_res_blocks=1,
                  disc_base_channels=8, disc_layers=2, head_hidden=32, descriptor_dim=32, n_negatives=4,
                  batch_size=4, checkpoint_every=1000, pairing_batch_size=16, appearance_samples_per_domain=4)


def mini_benchmark_and_model(root: Path) -> tuple[Path, Path]:
    """(benchmark folder, MDUIT run folder) under ``root``: 24 database images, all aligned."""
    data = render_synthetic(root / "data", "tiny", seed=0, size=32, locations=2, quiet=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*no pretrained VGG-16 weights.*")
        train("tiny", data, root / "run", overrides=MINI_MODEL, max_steps=2, device="cpu", progress=False,
              num_workers=0, threads=1)
    return data, root / "run"

"""MDUIT translation benchmark: parameter counts, seconds per training step, grouped-conv speed-up.

    python benchmarks/bench_translation.py [--presets tiny paper] [--iterations 5 2] [--threads N]

Per preset: the parameter count of every network, and the wall time of full training steps
(generator-side forward, both objectives, both Adam updates) measured through ``Trainer.train_step``
on a generated folder-per-domain dataset at the preset's image and batch size. Then the appearance
adaptive convolution as one grouped conv2d over the batch versus a per-sample Python loop (the
same arithmetic), timed in the same process: the printed ratio is loop time / grouped time.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from mduit_loc.translation.adaptive_conv import appearance_adaptive_conv
from mduit_loc.translation.config import apply_overrides, preset
from mduit_loc.translation.networks import count_parameters
from mduit_loc.translation.trainer import TrainOptions, Trainer


def write_dataset(root: Path, count: int, size: int) -> Path:
    """``count`` random-block images in each of two domains (day, night)."""
    rng = np.random.default_rng(0)
    for domain, gain in (("day", 1.0), ("night", 0.3)):
        (root / domain).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            pixels = rng.uniform(0, 1, (size // 8, size // 8, 3)).repeat(8, 0).repeat(8, 1) * gain
            Image.fromarray((pixels * 255).astype(np.uint8)).save(root / domain / f"{index:03d}.png")
    return root


def parameter_counts(trainer: Trainer) -> dict[str, int]:
    counts = trainer.model.parameter_counts()
    counts["image_discriminator"] = count_parameters(trainer.discriminators.image)
    counts["appearance_discriminator"] = count_parameters(trainer.discriminators.appearance)
    return counts


def time_steps(name: str, iterations: int, workdir: Path) -> dict:
    config = preset(name)
    config = apply_overrides(config, {"max_steps": 1000})
    images_per_domain = max(config.n_negatives + 2, config.batch_size)
    data = write_dataset(workdir / f"data_{name}", images_per_domain, config.image_size[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = Trainer(config, TrainOptions(data=data, out=workdir / f"run_{name}", device="cpu",
                                               num_workers=0, progress=False))
    rows = torch.arange(config.batch_size * config.rows_per_sample).view(config.batch_size, -1) % len(trainer.store.paths)
    batch = next(trainer.store.iter_steps(rows, config.batch_size))
    trainer.train_step(batch)  # warm-up (allocations, kernel selection)
    started = time.perf_counter()
    for _ in range(iterations):
        trainer.train_step(batch)
    seconds = (time.perf_counter() - started) / iterations
    return {"preset": name, "image_size": list(config.image_size), "batch_size": config.batch_size,
            "n_negatives": config.n_negatives, "seconds_per_step": seconds,
            "seconds_per_image": seconds / config.batch_size, "iterations": iterations,
            "parameters": parameter_counts(trainer)}


def per_sample_loop(features: torch.Tensor, filters: torch.Tensor, groups: int) -> torch.Tensor:
    pad = filters.shape[-1] // 2
    return torch.cat([F.conv2d(F.pad(f[None], (pad,) * 4, mode="reflect"), w, groups=groups)
                      for f, w in zip(features, filters)])


def grouped_vs_loop(batch: int, channels: int, size: int, kernel: int, repeats: int = 20) -> dict:
    features = torch.randn(batch, channels, size, size)
    filters = torch.randn(batch, channels, 1, kernel, kernel)
    grouped = appearance_adaptive_conv(features, filters, channels)
    torch.testing.assert_close(grouped, per_sample_loop(features, filters, channels), rtol=1e-4, atol=1e-4)

    def clock(function) -> float:
        function()
        started = time.perf_counter()
        for _ in range(repeats):
            function()
        return (time.perf_counter() - started) / repeats

    grouped_s = clock(lambda: appearance_adaptive_conv(features, filters, channels))
    loop_s = clock(lambda: per_sample_loop(features, filters, channels))
    return {"batch": batch, "channels": channels, "size": size, "kernel": kernel, "grouped_ms": grouped_s * 1e3,
            "loop_ms": loop_s * 1e3, "loop_over_grouped": loop_s / grouped_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "paper"])
    parser.add_argument("--iterations", nargs="+", type=int, default=[5, 2],
                        help="timed steps per preset (paper steps take tens of seconds on a CPU)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s)")
    results = {"threads": torch.get_num_threads(), "presets": [], "adaptive_conv": []}
    with tempfile.TemporaryDirectory() as workdir:
        for name, iterations in zip(args.presets, args.iterations + args.iterations[-1:] * len(args.presets)):
            row = time_steps(name, iterations, Path(workdir))
            results["presets"].append(row)
            print(f"\n[{name}] {row['image_size'][0]}x{row['image_size'][1]}, batch {row['batch_size']}, "
                  f"{row['n_negatives']} negatives: {row['seconds_per_step']:.3f} s/step "
                  f"({row['seconds_per_image']:.3f} s/image, mean of {iterations})")
            for network, count in row["parameters"].items():
                print(f"  {network:<30} {count:>12,d}")
    print("\nappearance-adaptive conv: one grouped conv2d vs a per-sample loop (forward)")
    for batch, channels, size in ((8, 32, 16), (8, 256, 64), (32, 256, 64)):
        row = grouped_vs_loop(batch, channels, size, 5)
        results["adaptive_conv"].append(row)
        print(f"  B={batch:<3} c={channels:<4} {size}x{size}: grouped {row['grouped_ms']:.2f} ms, "
              f"loop {row['loop_ms']:.2f} ms, ratio loop/grouped {row['loop_over_grouped']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""MDUIT translation benchmark: parameter counts, seconds per training step, grouped-conv speed-up,
and (with ``--grids``) the tiny preset's translation grids on the synthetic benchmark.

    python benchmarks/bench_translation.py [--presets tiny paper] [--iterations 5 2] [--threads N]
        [--grids docs/images --grid-budget-min 5 [--synth DIR]] [--json results.json]

1. Parameter count of every network (E_c, E_a with its VGG-16 trunk and filter head, the
   appearance-adaptive convolution (no weights of its own), G, H, D_i, D_a) per preset.
2. Wall time of full training steps (generator-side forward, both objectives, both Adam updates)
   through ``Trainer.train_step`` on a generated folder-per-domain dataset at the preset's image
   size, batch size and number of negatives; the first step is a warm-up and is not counted.
3. The appearance-adaptive convolution as one grouped conv2d over the batch versus a per-sample
   Python loop (same arithmetic, checked equal), timed in the same process.
4. ``--grids DIR``: render the tiny synthetic benchmark (or use ``--synth DIR``), train the tiny
   preset for ``--grid-budget-min`` minutes, then ``mduit-loc translate`` night -> day and day -> night;
   writes ``DIR/translation_grid_night_to_day.png`` and ``DIR/translation_grid_day_to_night.png``.
Timings depend on the machine and on what else runs on it: quote them with the thread count.
"""
from __future__ import annotations

import os

# Idle OpenMP threads sleep instead of spinning (as ``mduit-loc`` does): must precede the torch import.
# Spinning made a tiny step 10 s instead of 0.9 s with 2 threads on the shared 2-core machine.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

from mduit_loc.translation.adaptive_conv import appearance_adaptive_conv  # noqa: E402
from mduit_loc.translation.config import TranslationConfig, apply_overrides, preset  # noqa: E402
from mduit_loc.translation.mduit import build_mduit  # noqa: E402
from mduit_loc.translation.networks import appearance_discriminator, count_parameters, image_discriminator  # noqa: E402
from mduit_loc.translation.trainer import Trainer, TrainOptions  # noqa: E402

NETWORKS = [("E_c content encoder", "content_encoder"), ("E_a appearance encoder (total)", "appearance_encoder"),
            ("  of which VGG-16 trunk", "appearance_encoder_vgg_trunk"),
            ("  of which filter head (convs + map to W)", "appearance_filter_head"),
            ("f (x) W adaptive conv", "adaptive_conv"), ("G generator", "generator"), ("H projection head", "head"),
            ("D_i image discriminator", "image_discriminator"),
            ("D_a appearance discriminator", "appearance_discriminator")]
GRID_NAMES = {"night_to_day": "translation_grid_night_to_day.png", "day_to_night": "translation_grid_day_to_night.png"}
DAY_TARGETS = ("overcast-reference", "sun", "overcast-winter", "snow")
NIGHT_TARGETS = ("night", "night-rain")


def parameter_counts(config: TranslationConfig) -> dict[str, int]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        counts = build_mduit(config, warn_untrained_vgg=False).parameter_counts()
    counts["adaptive_conv"] = 0  # its weights are W, produced per image by E_a
    counts["image_discriminator"] = count_parameters(image_discriminator(config))
    counts["appearance_discriminator"] = count_parameters(appearance_discriminator(config))
    counts["total_trained"] = sum(counts[k] for k in ("content_encoder", "appearance_encoder", "generator", "head",
                                                      "image_discriminator", "appearance_discriminator"))
    return counts


def write_dataset(root: Path, count: int, size: tuple[int, int]) -> Path:
    """``count`` random-block images in each of two domains (day, night)."""
    rng = np.random.default_rng(0)
    for domain, gain in (("day", 1.0), ("night", 0.3)):
        (root / domain).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            pixels = rng.uniform(0, 1, (size[0] // 8, size[1] // 8, 3)).repeat(8, 0).repeat(8, 1) * gain
            Image.fromarray((pixels * 255).astype(np.uint8)).save(root / domain / f"{index:03d}.png")
    return root


def time_steps(name: str, iterations: int, workdir: Path) -> dict:
    config = apply_overrides(preset(name), {"max_steps": 1000})
    images_per_domain = max(config.n_negatives + 2, config.batch_size)
    data = write_dataset(workdir / f"data_{name}", images_per_domain, config.image_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = Trainer(config, TrainOptions(data=data, out=workdir / f"run_{name}", device=torch.device("cpu"),
                                               num_workers=0, progress=False))
    rows = torch.arange(config.batch_size * config.rows_per_sample).view(config.batch_size, -1)
    rows = rows % len(trainer.store.paths)
    batch = next(trainer.store.iter_steps(rows, config.batch_size))
    labels = trainer.step_labels(rows)
    trainer.train_step(batch, labels)  # warm-up (allocations, kernel selection)
    times = []
    for _ in range(iterations):
        started = time.perf_counter()
        trainer.train_step(batch, labels)
        times.append(time.perf_counter() - started)
    seconds = float(np.mean(times))
    return {"preset": name, "image_size": list(config.image_size), "batch_size": config.batch_size,
            "n_negatives": config.n_negatives, "images_per_step": config.batch_size * config.rows_per_sample,
            "seconds_per_step": seconds, "min_seconds_per_step": float(np.min(times)),
            "seconds_per_sample": seconds / config.batch_size, "iterations": iterations}


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


# --- translation grids on the synthetic benchmark ------------------------------------------------
def pick_images(dataset, conditions: tuple[str, ...], count: int, camera: str = "rear") -> list[Path]:
    """``count`` images, cycling through ``conditions``, each from a new location while there is one."""
    pool = sorted((image.location or 0, image.condition, image.name) for image in [*dataset.database, *dataset.queries]
                  if image.condition in conditions and image.camera == camera)
    chosen: list[tuple] = []
    while len(chosen) < count:
        before = len(chosen)
        for condition in conditions:
            options = [p for p in pool if p[1] == condition and p not in chosen]
            fresh = [p for p in options if p[0] not in {c[0] for c in chosen}]
            if (fresh or options) and len(chosen) < count:
                chosen.append((fresh or options)[0])
        if len(chosen) == before:
            break
    return [dataset.image_path(name) for _, _, name in chosen]


def make_grids(out_dir: Path, workdir: Path, budget_min: float, synth: Path | None, size: int = 4) -> dict:
    from mduit_loc.cli import main as cli_main
    from mduit_loc.datasets import open_dataset
    from mduit_loc.translation.api import train

    if synth is None:
        synth = workdir / "syn"
        started = time.perf_counter()
        assert cli_main(["synth", "--out", str(synth), "--preset", "tiny", "--quiet"]) == 0
        print(f"rendered the tiny synthetic benchmark in {time.perf_counter() - started:.1f} s: {synth}")
    run = workdir / "run_tiny"
    print(f"training the tiny preset for at most {budget_min} min ...")
    summary = train("tiny", synth, run, time_budget_min=budget_min, device="cpu", progress=False)
    print(f"  {summary.steps} steps ({summary.epochs:.2f} epochs) in {summary.seconds:.0f} s "
          f"({summary.seconds / max(1, summary.steps):.2f} s/step); final losses: "
          + ", ".join(f"{k} {v:.3g}" for k, v in sorted(summary.final_losses.items())))
    dataset = open_dataset(synth)
    cases = {"night_to_day": (pick_images(dataset, NIGHT_TARGETS[:1], size), pick_images(dataset, DAY_TARGETS, size)),
             "day_to_night": (pick_images(dataset, DAY_TARGETS[:1], size), pick_images(dataset, NIGHT_TARGETS, size))}
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {}
    for case, (sources, targets) in cases.items():
        folder = workdir / f"translate_{case}"
        assert cli_main(["translate", "--model", str(run), "--images", *map(str, sources), "--appearance",
                         *map(str, targets), "--out", str(folder), "--device", "cpu"]) == 0
        destination = out_dir / GRID_NAMES[case]
        shutil.copyfile(folder / "grid.png", destination)
        written[case] = {"path": str(destination), "bytes": destination.stat().st_size,
                         "sources": [str(p.relative_to(synth / "images")) for p in sources],
                         "appearances": [str(p.relative_to(synth / "images")) for p in targets]}
        print(f"  {case}: {destination} ({destination.stat().st_size / 1024:.0f} KB); rows "
              f"{', '.join(written[case]['sources'])}; columns {', '.join(written[case]['appearances'])}")
    return {"steps": summary.steps, "seconds": summary.seconds, "stopped_by_budget": summary.stopped_by_budget,
            "final_losses": summary.final_losses, "grids": written}


def print_parameter_table(counts: dict[str, dict[str, int]]) -> None:
    names = list(counts)
    print("\nparameters per network")
    print(f"  {'network':<44}" + "".join(f"{name:>14}" for name in names))
    for label, key in NETWORKS + [("total (E_c, E_a incl. VGG, G, H, D_i, D_a)", "total_trained")]:
        print(f"  {label:<44}" + "".join(f"{counts[name][key]:>14,d}" for name in names))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "paper"])
    parser.add_argument("--iterations", nargs="+", type=int, default=[5, 2],
                        help="timed steps per preset (paper steps take tens of seconds on a CPU)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--skip-timing", action="store_true", help="parameter counts (and grids) only")
    parser.add_argument("--grids", type=Path, metavar="DIR", help="also train tiny and write the grids here")
    parser.add_argument("--grid-budget-min", type=float, default=5.0, help="training minutes for the grids")
    parser.add_argument("--synth", type=Path, help="an existing tiny synthetic benchmark (default: render one)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s)")
    results: dict = {"threads": torch.get_num_threads(), "parameters": {}, "presets": [], "adaptive_conv": []}
    for name in args.presets:
        results["parameters"][name] = parameter_counts(preset(name))
    print_parameter_table(results["parameters"])
    with tempfile.TemporaryDirectory() as workdir:
        if not args.skip_timing:
            print("\nseconds per training step (E_c/E_a/G/H forward+backward+Adam, then D_i/D_a)")
            for name, iterations in zip(args.presets, args.iterations + args.iterations[-1:] * len(args.presets)):
                row = time_steps(name, iterations, Path(workdir))
                results["presets"].append(row)
                print(f"  [{name}] {row['image_size'][0]}x{row['image_size'][1]}, batch {row['batch_size']}, "
                      f"{row['n_negatives']} negatives ({row['images_per_step']} images/step): "
                      f"{row['seconds_per_step']:.2f} s/step (min {row['min_seconds_per_step']:.2f}, "
                      f"mean of {iterations}), {row['seconds_per_sample']:.2f} s/sample")
            print("\nappearance-adaptive conv: one grouped conv2d vs a per-sample loop (forward)")
            for batch, channels, size in ((8, 32, 16), (8, 256, 64), (32, 256, 64)):
                row = grouped_vs_loop(batch, channels, size, 5)
                results["adaptive_conv"].append(row)
                print(f"  B={batch:<3} c={channels:<4} {size}x{size}: grouped {row['grouped_ms']:.2f} ms, "
                      f"loop {row['loop_ms']:.2f} ms, ratio loop/grouped {row['loop_over_grouped']:.2f}x")
        if args.grids:
            print("\ntranslation grids (tiny preset, synthetic benchmark)")
            results["grids"] = make_grids(args.grids, Path(workdir), args.grid_budget_min, args.synth)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

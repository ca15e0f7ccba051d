"""Throughput tables of the GPU path: training steps and descriptor extraction per preset, batch size and
speed option, with peak memory (the numbers issue 11 asks for; on a CPU too, for a dry run).

    python benchmarks/throughput.py train   [--presets tiny paper] [--batches 1 8 32] [--variants plain channels_last]
    python benchmarks/throughput.py extract [--sizes 256 64] [--batches 64] [--variants plain channels_last]
    python benchmarks/throughput.py all --dry-run          # tiny sizes on the CPU: checks the script in seconds

train: full ``Trainer.train_step`` calls (generator-side forward of E_c/E_a/G/H over the batch's stacked roles,
eq. 6, Adam; then D_i/D_a and their Adam step) at the preset's image size and number of negatives, random
plan rows of a generated two-domain dataset, bf16 autocast on CUDA (the trainer's ``mixed_precision``).
Variants: ``plain``, ``channels_last`` (--set channels_last=true), ``compile`` (--set compile_model=true;
the first steps compile and are not timed). Per row: s/step (median of the timed steps after two warm-up
steps), samples/s, peak memory (CUDA: ``torch.cuda.max_memory_allocated``; CPU: the rise of the peak
resident set), achieved TFLOP/s (FLOPs of one step counted by ``torch.utils.flop_counter``). Per preset
and variant, the memory per sample is the slope of the peak memory between consecutive batch sizes, and
``fills_card_at`` the batch size at which that slope reaches 90 % of the device's memory. Out of memory
is a row ("OOM"), not an abort.

extract: ``describe`` through the retrieval descriptor (``ModuleDescriptor``: bf16 autocast on CUDA) on
random images already on the device (model time only), batches of the models alternating so that load
changes hit all alike; images/s (median), peak memory, and ``vs_netvlad`` = this / NetVLAD VGG-16 at the
same resolution, batch and variant. Models: MDUIT paper and tiny ``z``, NetVLAD VGG-16 (K = 64, 4096-D
whitening), and two speed what-ifs of the paper's E_c that are *not* model options (no recall measured):
depthwise-separable residual blocks, and half the width (c = 128).
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch: idle OpenMP threads sleep

import argparse  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402

import torch  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_translation import write_dataset  # noqa: E402  (this folder: the script's own sys.path[0])

from mduit_loc.nn.speed import compile_networks, to_channels_last  # noqa: E402
from mduit_loc.retrieval.descriptor_models import ModuleDescriptor  # noqa: E402
from mduit_loc.translation.config import apply_overrides, parse_assignments, preset  # noqa: E402
from mduit_loc.translation.mduit import build_mduit  # noqa: E402
from mduit_loc.translation.networks import ContentEncoder, _norm  # noqa: E402
from mduit_loc.translation.trainer import Trainer, TrainOptions  # noqa: E402

TRAIN_VARIANTS = {"plain": {}, "channels_last": {"channels_last": True}, "compile": {"compile_model": True},
                  "channels_last+compile": {"channels_last": True, "compile_model": True}}


# --- memory -------------------------------------------------------------------------------------
def peak_memory_gb(function, device: torch.device) -> float:
    """Peak memory of one call: on CUDA everything allocated at its peak (weights, optimiser state and the
    step's tensors); on a CPU the peak of what the call itself allocates, from the profiler's memory events
    (the resident set says little: freed memory stays with the process)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        function()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) / 2**30
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        function()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                    if e.name() == "[memory]")
    live = peak = 0
    for _, size in events:
        live += size
        peak = max(peak, live)
    return peak / 2**30


def device_memory_gb(device: torch.device) -> float | None:
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory / 2**30
    return None


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def free(device: torch.device) -> None:
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def is_oom(err: BaseException) -> bool:
    return isinstance(err, torch.cuda.OutOfMemoryError) or "out of memory" in str(err).lower()


# --- training steps -----------------------------------------------------------------------------
def step_flops(trainer: Trainer, batch: torch.Tensor, labels) -> float:
    """FLOPs of one training step (forward and backward of both updates), counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        trainer.train_step(batch, labels)
    return float(counter.get_total_flops())


def time_train(name: str, batch_size: int, variant: str, device: torch.device, seconds: float, workdir: Path,
               overrides: dict) -> dict:
    settings = {"max_steps": 1000, "batch_size": batch_size, "log_every": 1000, "checkpoint_every": 1000,
                **overrides, **TRAIN_VARIANTS[variant]}
    config = apply_overrides(preset(name), settings)
    row = {"table": "train", "preset": name, "variant": variant, "image_size": "x".join(map(str, config.image_size)),
           "batch": batch_size, "n_negatives": config.n_negatives, "device": str(device),
           "amp": bool(config.mixed_precision and device.type == "cuda")}
    per_domain = max(config.n_negatives + 2, batch_size)
    data = workdir / f"data_{name}_{config.image_size[0]}_{per_domain}"
    if not data.is_dir():
        write_dataset(data, per_domain, config.image_size)
    trainer = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trainer = Trainer(config, TrainOptions(data=data, out=workdir / f"run_{time.monotonic_ns()}",
                                                   device=device, num_workers=0, progress=False))
        generator = torch.Generator().manual_seed(0)
        rows = torch.randint(len(trainer.store.paths), (batch_size, config.rows_per_sample), generator=generator)
        labels = trainer.step_labels(rows)
        batch = next(trainer.store.iter_steps(rows, batch_size, device=device))
        started = time.perf_counter()
        for _ in range(2):   # warm-up: allocations, cuDNN choices, compilation
            trainer.train_step(batch, labels)
        sync(device)
        row["warmup_s"] = time.perf_counter() - started
        times: list[float] = []
        begin = time.perf_counter()
        while len(times) < 3 or (time.perf_counter() - begin < seconds and len(times) < 200):
            started = time.perf_counter()
            trainer.train_step(batch, labels)
            sync(device)
            times.append(time.perf_counter() - started)
        step = statistics.median(times)
        row.update({"steps": len(times), "s_per_step": step, "samples_per_s": batch_size / step,
                    "peak_gb": peak_memory_gb(partial(trainer.train_step, batch, labels), device)})
        flops = step_flops(trainer, batch, labels)
        row.update({"gflop_per_step": flops / 1e9, "tflop_per_s": flops / step / 1e12})
        if "compile" in variant:
            network = trainer.model.generator.forward
            row["compiled"] = not getattr(network, "failed", True)
    except Exception as err:  # noqa: BLE001 - a row says what happened, the table goes on
        row["error"] = "OOM" if is_oom(err) else f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
    finally:
        del trainer
        free(device)
    return row


def add_memory_slopes(rows: list[dict], device: torch.device) -> None:
    """Memory per sample (slope between consecutive batch sizes) and the batch that fills the card."""
    total = device_memory_gb(device)
    groups: dict[tuple, list[dict]] = {}
    for row in rows:
        if "peak_gb" in row:
            groups.setdefault((row["preset"], row["variant"]), []).append(row)
    for group in groups.values():
        group.sort(key=lambda r: r["batch"])
        for low, high in zip(group, group[1:]):
            slope = (high["peak_gb"] - low["peak_gb"]) / (high["batch"] - low["batch"])
            high["gb_per_sample"] = slope
            if total and slope > 0:
                high["fills_card_at"] = int(high["batch"] + (0.9 * total - high["peak_gb"]) / slope)


# --- extraction ---------------------------------------------------------------------------------
class SeparableResBlock(nn.Module):
    """What-if: a residual block of depthwise 3x3 + pointwise 1x1 convolutions (about 1/8 of the FLOPs)."""

    def __init__(self, channels: int):
        super().__init__()

        def separable(activation: bool) -> list[nn.Module]:
            layers = [nn.Conv2d(channels, channels, 3, padding=1, padding_mode="reflect", groups=channels),
                      nn.Conv2d(channels, channels, 1), _norm("in", channels)]
            return layers + ([nn.ReLU(inplace=True)] if activation else [])

        self.body = nn.Sequential(*separable(True), *separable(False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class WhatIfEncoder(nn.Module):
    """E_c variants for speed only (untrained, not model options): ``describe`` = grid-free GAP + linear."""

    def __init__(self, base: int, res_blocks: int, separable: bool, image_size: tuple[int, int], dim: int = 1024):
        super().__init__()
        self.encoder = ContentEncoder(base, 2, res_blocks)
        if separable:
            blocks = [SeparableResBlock(self.encoder.out_channels) for _ in range(res_blocks)]
            self.encoder.layers = nn.Sequential(*list(self.encoder.layers)[:3], *blocks)
        self.head = nn.Linear(self.encoder.out_channels, dim)
        self.image_size, self.descriptor_dim, self.checksum = image_size, dim, "what-if"

    def describe(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(images).float().mean(dim=(2, 3)))


def extraction_models(size: int, device: torch.device, what_ifs: bool) -> list[tuple[str, nn.Module, str]]:
    from mduit_loc.retrieval.netvlad.model import NetVLADArchitecture, build_netvlad

    models = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in ("paper", "tiny"):
            config = apply_overrides(preset(name), {"image_size": (size, size)})
            models.append((f"mduit-{name} z", build_mduit(config, warn_untrained_vgg=False), "describe"))
        if what_ifs:
            models.append(("what-if E_c separable res", WhatIfEncoder(64, 4, True, (size, size)), "describe"))
            models.append(("what-if E_c half width", WhatIfEncoder(32, 4, False, (size, size)), "describe"))
        architecture = NetVLADArchitecture(backbone="vgg16", num_clusters=64, whiten_dim=4096, image_size=(size, size))
        models.append(("netvlad-vgg16", build_netvlad(architecture), "forward"))
    return [(label, module.to(device).eval(), method) for label, module, method in models]


def time_extract(size: int, batch: int, variant: str, device: torch.device, seconds: float,
                 what_ifs: bool) -> list[dict]:
    rows = []
    models = extraction_models(size, device, what_ifs)
    images = torch.rand(batch, 3, size, size, device=device)
    if variant.startswith("channels_last"):
        to_channels_last(*(module for _, module, _ in models))
        images = images.contiguous(memory_format=torch.channels_last)
    descriptors = []
    for label, module, method in models:
        if variant.endswith("compile"):
            compile_networks({label: module})
        descriptors.append((label, ModuleDescriptor(module, "mduit", label, method, device)))
    rates: dict[str, float] = {}
    alive = []
    for label, descriptor in descriptors:
        row = {"table": "extract", "model": label, "resolution": f"{size}x{size}", "batch": batch, "variant": variant,
               "device": str(device), "dim": descriptor.dim, "threads": torch.get_num_threads(),
               "bf16": device.type == "cuda"}
        try:
            descriptor(images), descriptor(images)   # warm-up
            row["peak_gb"] = peak_memory_gb(partial(descriptor, images), device)
            alive.append((descriptor, row, []))
        except Exception as err:  # noqa: BLE001
            row["error"] = "OOM" if is_oom(err) else f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
            free(device)
        rows.append(row)
    begin = time.perf_counter()
    while alive and (len(alive[0][2]) < 3 or time.perf_counter() - begin < seconds):
        for descriptor, _, spent in alive:   # alternating: load changes hit every model alike
            started = time.perf_counter()
            descriptor(images)
            sync(device)
            spent.append(time.perf_counter() - started)
    for _, row, spent in alive:
        rates[row["model"]] = batch / statistics.median(spent)
        row.update({"batches": len(spent), "images_per_s": rates[row["model"]]})
    reference = rates.get("netvlad-vgg16")
    for row in rows:
        if reference and "images_per_s" in row:
            row["vs_netvlad"] = row["images_per_s"] / reference
    del models, descriptors, alive, images
    free(device)
    return rows


# --- output ---------------------------------------------------------------------------------------
def print_table(rows: list[dict], columns: list[str], out=sys.stdout) -> None:
    def cell(value) -> str:
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
        return "" if value is None else str(value)

    print("| " + " | ".join(columns) + " |", file=out)
    print("|" + "---|" * len(columns), file=out)
    for row in rows:
        print("| " + " | ".join(cell(row.get(c)) for c in columns) + " |", file=out)
    out.flush()


TRAIN_COLUMNS = ["preset", "variant", "image_size", "batch", "device", "amp", "s_per_step", "samples_per_s", "peak_gb",
                 "gb_per_sample", "fills_card_at", "tflop_per_s", "gflop_per_step", "warmup_s", "steps", "compiled",
                 "error"]
EXTRACT_COLUMNS = ["resolution", "batch", "variant", "model", "device", "bf16", "images_per_s", "vs_netvlad", "peak_gb",
                   "batches", "error"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("train", "extract", "all"))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--presets", nargs="+", default=["tiny", "paper"])
    parser.add_argument("--batches", nargs="+", type=int, help="train: default 1 8 32; extract: default 64")
    parser.add_argument("--preset-batches", nargs="+", default=[], metavar="PRESET=B,B",
                        help="train: other batch sizes for a preset, e.g. tiny=8,64")
    parser.add_argument("--variants", nargs="+", default=["plain", "channels_last"],
                        help=f"train: {', '.join(TRAIN_VARIANTS)}; extract: plain, channels_last, compile")
    parser.add_argument("--sizes", nargs="+", type=int, default=[256, 64], help="extract: square resolutions")
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per row (at least 3 steps)")
    parser.add_argument("--no-what-ifs", action="store_true", help="extract: leave out the E_c what-if rows")
    parser.add_argument("--dry-run", action="store_true",
                        help="tiny sizes (32 px, the paper preset at 32 px, 1-2 timed steps) to check the script")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                        help="train: a TranslationConfig setting for every row (as mduit-loc train --set)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--markdown", type=Path, help="also write the tables here")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    for name in ("recompile_limit", "cache_size_limit"):   # many models and shapes in one process
        if hasattr(torch._dynamo.config, name):
            setattr(torch._dynamo.config, name, 64)
    overrides: dict = {}
    sizes, seconds = args.sizes, args.seconds
    if args.dry_run:
        overrides = {"image_size": (32, 32), "appearance_input_size": 16, "n_negatives": 2}
        sizes, seconds = [32], min(seconds, 0.5)
    overrides.update(parse_assignments(args.settings))
    print(f"torch {torch.__version__}, device {device}"
          + (f" ({torch.cuda.get_device_name(device)}, {device_memory_gb(device):.0f} GiB)" if device.type == "cuda"
             else f", {torch.get_num_threads()} CPU threads, load {os.getloadavg()[0]:.1f}"), flush=True)
    rows: list[dict] = []
    tables: list[tuple[str, list[dict], list[str]]] = []

    def write_outputs() -> None:
        """After every row: a time limit that stops this script keeps the rows measured so far."""
        if args.markdown:
            with open(args.markdown, "w") as handle:
                for title, table_rows, columns in tables:
                    print(f"\n### {title}\n", file=handle)
                    print_table(table_rows, columns, handle)
        if args.json:
            args.json.write_text(json.dumps({"device": str(device), "torch": torch.__version__, "rows": rows},
                                            indent=2, default=str) + "\n")

    with tempfile.TemporaryDirectory() as workdir:
        if args.what in ("train", "all"):
            batches = args.batches or ([1, 2] if args.dry_run else [1, 8, 32])
            train_rows: list[dict] = []
            tables.append(("training steps", train_rows, TRAIN_COLUMNS))
            own = {item.split("=")[0]: [int(b) for b in item.split("=")[1].split(",")] for item in args.preset_batches}
            for name in args.presets:
                for variant in args.variants:
                    for batch in own.get(name, batches):
                        row = time_train(name, batch, variant, device, seconds, Path(workdir), overrides)
                        train_rows.append(row)
                        rows.append(row)
                        add_memory_slopes(train_rows, device)
                        write_outputs()
                        print(f"  train {name} {variant} batch {batch}: "
                              + (row["error"] if "error" in row else
                                 f"{row['s_per_step']:.3f} s/step, {row['samples_per_s']:.1f} samples/s, "
                                 f"peak {row['peak_gb']:.2f} GB"), flush=True)
        if args.what in ("extract", "all"):
            batches = args.batches or ([4] if args.dry_run else [64])
            variants = [v for v in args.variants if v in ("plain", "channels_last", "compile", "channels_last+compile")]
            extract_rows: list[dict] = []
            tables.append(("descriptor extraction", extract_rows, EXTRACT_COLUMNS))
            for size in sizes:
                for batch in batches:
                    for variant in variants:
                        part = time_extract(size, batch, variant, device, seconds, not args.no_what_ifs)
                        extract_rows += part
                        rows.extend(part)
                        write_outputs()
                        print(f"  extract {size}px batch {batch} {variant}: " + ", ".join(
                            f"{r['model']} {r['images_per_s']:.1f}/s" if "images_per_s" in r else
                            f"{r['model']} {r.get('error')}" for r in part), flush=True)
    for title, table_rows, columns in tables:
        print(f"\n{title}")
        print_table(table_rows, columns)
    return 0


if __name__ == "__main__":
    sys.exit(main())

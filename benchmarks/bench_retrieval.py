"""Retrieval benchmarks (CPU or GPU, whatever this machine has).

1. Descriptor throughput: MDUIT ``describe`` vs the NetVLAD baseline (VGG-16 conv5_3 + K = 64 +
   4096-D whitening, the official Pitts30k layout) at the same resolution, in one run (same process,
   same threads, batches of the models alternating so that load changes hit all alike; median batch
   time), untrained weights (speed does not depend on them), random images already in memory (model
   time only; decoding runs in DataLoader workers).
   - paper: MDUIT paper preset (c = 256, K = 1024) at 256 x 256;
   - tiny: MDUIT tiny preset (K = 128) at 64 x 64; also the light NetVLAD backbone (K = 32) that
     ``train-netvlad`` uses by default.
2. Index search over random unit vectors (D = 128, the dimension of MDUIT ``tiny``'s descriptor;
   the paper preset's is 1024), N = 1e5 and 1e6: build time, index size in bytes (serialised, =
   index.faiss), peak RSS increase while building and while searching, batched latency per query
   (1000 queries), single-query latency, recall@1 of IVF-PQ relative to Flat. Queries are noisy
   copies of random database vectors (noise norm 0.5), as a query photo is a noisy view of its place.
   Rows go through ``mduit_loc.retrieval.search.search`` (what ``mduit-loc query`` runs): Flat = the
   blocked exact engine; "+ camera mask" = ``--per-camera`` with 3 cameras (a third of the database
   allowed; bitmap selectors for IVF-PQ); "Flat (faiss, one call)" = ``IndexFlatIP.search`` with all
   queries at once, for reference.

Usage: ``.venv/bin/python benchmarks/bench_retrieval.py [--quick] [--out results.json]``
(--quick: N = 1e4 / 1e5 and the tiny models only; a few seconds).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

# OpenMP threads that spin while waiting (the default) lose most of their time when the CPUs are
# shared: FAISS PQ training took 95 s spinning vs 20 s passive on this 2-core machine at load 8.
# Must be set before the OpenMP runtime starts (numpy / torch / faiss imports). Override to compare.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mduit_loc.poses import Pose  # noqa: E402
from mduit_loc.retrieval.db_table import DatabaseTable  # noqa: E402
from mduit_loc.retrieval.descriptor_models import ModuleDescriptor  # noqa: E402
from mduit_loc.retrieval.faiss_index import IndexParams, LoadedIndex, build_faiss_index, resolve_params  # noqa: E402
from mduit_loc.retrieval.search import QueryAttributes, SearchOptions, search  # noqa: E402


# --- memory -------------------------------------------------------------------------------------
def _status_kb(key: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def peak_rss_increase_mb(function):
    """(result, peak RSS above the starting RSS in MB) — resets the kernel's high-water mark."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass
    start = _status_kb("VmRSS")
    result = function()
    return result, max(0, _status_kb("VmHWM") - start) / 1024


# --- descriptors --------------------------------------------------------------------------------
def _models(which: str, device: torch.device):
    from mduit_loc.retrieval.netvlad.model import NetVLADArchitecture, build_netvlad
    from mduit_loc.translation.config import preset
    from mduit_loc.translation.mduit import build_mduit

    config = preset(which)
    size = tuple(config.image_size)
    models = [ModuleDescriptor(build_mduit(config, warn_untrained_vgg=False).to(device).eval(), "mduit",
                               f"mduit-{which}", "describe", device)]
    architectures = [NetVLADArchitecture(backbone="vgg16", num_clusters=64, whiten_dim=4096, image_size=size)]
    if which == "tiny":
        architectures.append(NetVLADArchitecture(backbone="light", num_clusters=32, image_size=size))
    for architecture in architectures:
        netvlad = build_netvlad(architecture)
        models.append(ModuleDescriptor(netvlad.to(device).eval(), netvlad.name, architecture.name, "forward", device))
    return size, models


def _timed_batch(descriptor, images, device) -> float:
    start = time.perf_counter()
    descriptor(images)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def bench_descriptors(which: str, batch: int, seconds: float, device: torch.device) -> list[dict]:
    """Batches of the models alternate, so a change of machine load hits all of them alike."""
    size, models = _models(which, device)
    images = torch.rand(batch, 3, *size, device=device)
    for descriptor in models:  # warm-up: allocations, oneDNN / cuDNN kernel choice
        descriptor(images), descriptor(images)
    times: list[list[float]] = [[] for _ in models]
    start = time.perf_counter()
    while len(times[0]) < 3 or time.perf_counter() - start < seconds:
        for descriptor, spent in zip(models, times):
            spent.append(_timed_batch(descriptor, images, device))
    rates = [batch / statistics.median(spent) for spent in times]
    return [{"preset": which, "model": descriptor.name, "resolution": "x".join(map(str, size)), "dim": descriptor.dim,
             "batch": batch, "batches": len(spent), "device": str(device), "threads": torch.get_num_threads(),
             "images_per_s": rate, "mduit_over_this": rates[0] / rate}
            for descriptor, spent, rate in zip(models, times, rates)]


# --- index search -------------------------------------------------------------------------------
def random_unit(rng, rows: int, dim: int, chunk: int = 100_000) -> np.ndarray:
    out = np.empty((rows, dim), np.float32)
    for start in range(0, rows, chunk):
        block = rng.standard_normal((min(chunk, rows - start), dim), dtype=np.float32)
        out[start:start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def _table(num: int) -> DatabaseTable:
    identity = Pose.identity()
    table = DatabaseTable.build(["x"], ["rear"], [None], [identity], ["original"])
    table.image_names = [str(i) for i in range(num)]  # names are not used by the search itself
    table.cameras = ["left", "rear", "right"]
    table.image_cameras = np.arange(num, dtype=np.int64) % 3  # for the --per-camera rows
    table.image_locations = np.full(num, -1, np.int64)
    table.image_poses = np.zeros((num, 7))
    table.vector_images = np.arange(num, dtype=np.int64)
    table.vector_appearances = np.zeros(num, np.int64)
    return table


def _loaded(vectors, table, params: IndexParams):
    import faiss

    params = resolve_params(params, len(vectors), vectors.shape[1])
    start = time.perf_counter()
    index, build_peak_mb = peak_rss_increase_mb(lambda: build_faiss_index(vectors, params))
    build_s = time.perf_counter() - start
    size_bytes = int(faiss.serialize_index(index).nbytes)  # what index.faiss takes on disk (and about in RAM)
    manifest = {"index": {"type": params.type, "nprobe": params.nprobe}, "descriptor": {"dim": vectors.shape[1]}}
    return LoadedIndex(None, manifest, index, table), params, build_s, {"size_bytes": size_bytes,
                                                                        "build_peak_mb": build_peak_mb}


def _latencies(loaded, queries, options, attributes=None, singles: int = 20):
    start = time.perf_counter()
    result, peak_mb = peak_rss_increase_mb(lambda: search(loaded, queries, options, attributes))
    batched_ms = (time.perf_counter() - start) * 1000 / len(queries)
    single = []
    for row in range(singles):
        one = None if attributes is None else QueryAttributes(attributes.cameras[row:row + 1],
                                                              attributes.locations[row:row + 1])
        start = time.perf_counter()
        search(loaded, queries[row:row + 1], options, one)
        single.append((time.perf_counter() - start) * 1000)
    return result, {"batched_ms_per_query": batched_ms, "single_query_ms": statistics.median(single),
                    "peak_search_mb": peak_mb}


def bench_index(num: int, dim: int, num_queries: int, nlist: int, nprobes: list[int], seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    vectors = random_unit(rng, num, dim)
    targets = rng.choice(num, num_queries, replace=False)
    noise = rng.standard_normal((num_queries, dim), dtype=np.float32) * (0.5 / math.sqrt(dim))
    queries = vectors[targets] + noise
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    table = _table(num)
    # Each query is restricted to the camera of its source image (what --per-camera does).
    cameras = QueryAttributes(table.image_cameras[targets], np.full(num_queries, -1, np.int64))
    masked = SearchOptions(k=1, per_camera=True)
    rows = []
    flat, params, build_s, sizes = _loaded(vectors, table, IndexParams(type="flat"))
    common = {"N": num, "D": dim, "build_s": build_s, **sizes}
    reference, timings = _latencies(flat, queries, SearchOptions(k=1))
    truth = reference.image_ids[:, 0]
    rows.append({**common, "index": "Flat", **timings, "recall@1_vs_flat": 1.0,
                 "flat_finds_source": float((truth == targets).mean()),
                 # what a dense query x database similarity matrix (hloc's approach) would hold
                 "dense_matrix_mb": num_queries * num * 4 / 2**20})
    faiss_flat = flat.faiss_index
    start = time.perf_counter()
    (_, faiss_ids), peak_mb = peak_rss_increase_mb(lambda: faiss_flat.search(queries, 1))
    rows.append({**common, "index": "Flat (faiss, one call)", "peak_search_mb": peak_mb,
                 "batched_ms_per_query": (time.perf_counter() - start) * 1000 / num_queries,
                 "recall@1_vs_flat": float((faiss_ids[:, 0] == truth).mean())})
    masked_reference, timings = _latencies(flat, queries, masked, cameras)
    masked_truth = masked_reference.image_ids[:, 0]
    rows.append({**common, "index": "Flat + camera mask", **timings, "recall@1_vs_flat": 1.0})
    pq, params, build_s, sizes = _loaded(vectors, table, IndexParams(type="ivf-pq", nlist=nlist))
    common = {"N": num, "D": dim, "build_s": build_s, **sizes}
    name = f"IVF{params.nlist},PQ{params.pq_m}x{params.pq_nbits}"
    for nprobe in nprobes:
        result, timings = _latencies(pq, queries, SearchOptions(k=1, nprobe=nprobe))
        rows.append({**common, "index": f"{name} nprobe={nprobe}", **timings,
                     "recall@1_vs_flat": float((result.image_ids[:, 0] == truth).mean())})
    result, timings = _latencies(pq, queries, SearchOptions(k=1, nprobe=nprobes[-1], per_camera=True), cameras)
    rows.append({**common, "index": f"{name} nprobe={nprobes[-1]} + camera mask", **timings,
                 "recall@1_vs_flat": float((result.image_ids[:, 0] == masked_truth).mean())})
    return rows


def _print_table(rows: list[dict], columns: list[str]) -> None:
    def cell(value):
        if isinstance(value, int) and value >= 10_000:
            return f"{value:,}"
        return f"{value:.3g}" if isinstance(value, float) else str(value)

    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print("| " + " | ".join(cell(row.get(c, "")) for c in columns) + " |")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes and tiny models only")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, help="also write the numbers as JSON")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    started = time.perf_counter()
    report = {"descriptors": [], "index": []}
    with torch.inference_mode():
        for which in (["tiny"] if args.quick else ["tiny", "paper"]):
            report["descriptors"] += bench_descriptors(which, batch=4 if which == "paper" else 32,
                                                       seconds=2.0 if args.quick else 40.0, device=device)
    _print_table(report["descriptors"], ["preset", "resolution", "model", "dim", "device", "threads", "batches",
                                         "images_per_s", "mduit_over_this"])
    sizes = [(10_000, 100), (100_000, 316)] if args.quick else [(100_000, 316), (1_000_000, 1000)]
    for num, nlist in sizes:
        report["index"] += bench_index(num, args.dim, args.queries, nlist, nprobes=[8, 32])
    print()
    _print_table(report["index"], ["N", "D", "index", "build_s", "size_bytes", "build_peak_mb",
                                   "batched_ms_per_query", "single_query_ms", "peak_search_mb", "dense_matrix_mb",
                                   "recall@1_vs_flat"])
    report["total_s"] = time.perf_counter() - started
    report["load_average_1_5_15min"] = list(os.getloadavg())
    report["cpu_count"] = os.cpu_count()
    report["omp_wait_policy"] = os.environ.get("OMP_WAIT_POLICY")
    print(f"\ntotal {report['total_s']:.0f} s; load average {report['load_average_1_5_15min']} on "
          f"{report['cpu_count']} CPUs (shared machines make timings noisy; compare within one run)")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Retrieval benchmarks (CPU or GPU, whatever this machine has).

1. Descriptor throughput: MDUIT ``describe`` vs the NetVLAD baseline at the same resolution, in one
   run (same process, same threads, batches of the two models alternating so that load changes hit
   both alike; median batch time), untrained weights (speed does not depend on them), batches of
   random images already in memory (model time only; decoding runs in DataLoader workers).
   - paper: MDUIT paper preset (c = 256, K = 1024) vs NetVLAD VGG-16 conv5_3 + K = 64 + 4096-D
     whitening (the official Pitts30k layout), both at 256 x 256;
   - tiny: MDUIT tiny preset (K = 128) vs the light NetVLAD backbone (K = 32), both at 64 x 64.
2. Index search over random unit vectors (D = 128, the dimension of MDUIT ``tiny``'s descriptor;
   the paper preset's is 1024), N = 1e5 and 1e6: build time, index size, batched latency per query
   (1000 queries), single-query latency, peak RSS increase while searching, and recall@1 of IVF-PQ
   relative to Flat. Queries are noisy copies of random database vectors (noise norm 0.5), as a
   query photo is a noisy view of its place. "Flat (ours)" is the blocked exact engine that
   ``mduit-loc query`` uses; "Flat (faiss)" is ``IndexFlatIP.search`` for reference.

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

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mduit_loc.poses import Pose  # noqa: E402
from mduit_loc.retrieval.db_table import DatabaseTable  # noqa: E402
from mduit_loc.retrieval.descriptor_models import ModuleDescriptor  # noqa: E402
from mduit_loc.retrieval.index import IndexParams, LoadedIndex, build_faiss_index, resolve_params  # noqa: E402
from mduit_loc.retrieval.search import SearchOptions, search  # noqa: E402


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

    size = (256, 256) if which == "paper" else (64, 64)
    mduit = build_mduit(preset(which), warn_untrained_vgg=False)
    if which == "paper":
        architecture = NetVLADArchitecture(backbone="vgg16", num_clusters=64, whiten_dim=4096, image_size=size)
    else:
        architecture = NetVLADArchitecture(backbone="light", num_clusters=32, image_size=size)
    netvlad = build_netvlad(architecture)
    return size, [ModuleDescriptor(mduit.to(device).eval(), "mduit", f"mduit-{which}", "describe", device),
                  ModuleDescriptor(netvlad.to(device).eval(), netvlad.name, architecture.name, "forward", device)]


def _timed_batch(descriptor, images, device) -> float:
    start = time.perf_counter()
    descriptor(images)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def bench_descriptors(which: str, batch: int, seconds: float, device: torch.device) -> dict:
    """Batches of the two models alternate, so a change of machine load hits both alike."""
    size, (mduit, netvlad) = _models(which, device)
    images = torch.rand(batch, 3, *size, device=device)
    for descriptor in (mduit, netvlad):  # warm-up: allocations, oneDNN / cuDNN kernel choice
        descriptor(images), descriptor(images)
    times: dict[str, list[float]] = {"mduit": [], "netvlad": []}
    start = time.perf_counter()
    while len(times["mduit"]) < 3 or time.perf_counter() - start < seconds:
        times["mduit"].append(_timed_batch(mduit, images, device))
        times["netvlad"].append(_timed_batch(netvlad, images, device))
    rates = {name: batch / statistics.median(values) for name, values in times.items()}
    return {"models": which, "resolution": list(size), "batch": batch, "batches": len(times["mduit"]),
            "device": str(device), "threads": torch.get_num_threads(), "mduit_dim": mduit.dim,
            "netvlad_dim": netvlad.dim, "mduit_per_s": rates["mduit"], "netvlad_per_s": rates["netvlad"],
            "mduit_over_netvlad": rates["mduit"] / rates["netvlad"]}


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
    table.image_cameras = np.zeros(num, np.int64)
    table.image_locations = np.full(num, -1, np.int64)
    table.image_poses = np.zeros((num, 7))
    table.vector_images = np.arange(num, dtype=np.int64)
    table.vector_appearances = np.zeros(num, np.int64)
    return table


def _loaded(vectors, table, params: IndexParams):
    import faiss

    params = resolve_params(params, len(vectors), vectors.shape[1])
    start = time.perf_counter()
    index = build_faiss_index(vectors, params)
    build_s = time.perf_counter() - start
    size_mb = faiss.serialize_index(index).nbytes / 2**20
    manifest = {"index": {"type": params.type, "nprobe": params.nprobe}, "descriptor": {"dim": vectors.shape[1]}}
    return LoadedIndex(None, manifest, index, table), params, build_s, size_mb


def _latencies(loaded, queries, options, singles: int = 20):
    start = time.perf_counter()
    result, peak_mb = peak_rss_increase_mb(lambda: search(loaded, queries, options))
    batched_ms = (time.perf_counter() - start) * 1000 / len(queries)
    single = []
    for row in range(singles):
        start = time.perf_counter()
        search(loaded, queries[row:row + 1], options)
        single.append((time.perf_counter() - start) * 1000)
    return result, batched_ms, statistics.median(single), peak_mb


def bench_index(num: int, dim: int, num_queries: int, nlist: int, nprobes: list[int], seed: int = 0) -> list[dict]:
    import faiss

    rng = np.random.default_rng(seed)
    vectors = random_unit(rng, num, dim)
    targets = rng.choice(num, num_queries, replace=False)
    noise = rng.standard_normal((num_queries, dim), dtype=np.float32) * (0.5 / math.sqrt(dim))
    queries = vectors[targets] + noise
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    table = _table(num)
    rows = []
    flat, params, build_s, size_mb = _loaded(vectors, table, IndexParams("flat"))
    reference, batched, single, peak = _latencies(flat, queries, SearchOptions(k=1))
    truth = reference.image_ids[:, 0]
    rows.append({"N": num, "D": dim, "index": "Flat (ours)", "build_s": build_s, "size_mb": size_mb,
                 "batched_ms_per_query": batched, "single_query_ms": single, "peak_search_mb": peak,
                 "recall@1_vs_flat": 1.0, "flat_finds_source": float((truth == targets).mean()),
                 # what a dense query x database similarity matrix (hloc's approach) would hold
                 "dense_matrix_mb": num_queries * num * 4 / 2**20})
    start = time.perf_counter()
    _, faiss_ids = flat.faiss_index.search(queries, 1)
    rows.append({"N": num, "D": dim, "index": "Flat (faiss)", "build_s": build_s, "size_mb": size_mb,
                 "batched_ms_per_query": (time.perf_counter() - start) * 1000 / num_queries,
                 "recall@1_vs_flat": float((faiss_ids[:, 0] == truth).mean())})
    pq, params, build_s, size_mb = _loaded(vectors, table, IndexParams("ivf-pq", nlist=nlist))
    for nprobe in nprobes:
        result, batched, single, peak = _latencies(pq, queries, SearchOptions(k=1, nprobe=nprobe))
        rows.append({"N": num, "D": dim, "index": f"IVF{params.nlist},PQ{params.pq_m}x{params.pq_nbits} nprobe={nprobe}",
                     "build_s": build_s, "size_mb": size_mb, "batched_ms_per_query": batched,
                     "single_query_ms": single, "peak_search_mb": peak,
                     "recall@1_vs_flat": float((result.image_ids[:, 0] == truth).mean())})
    del vectors, flat, pq
    return rows


def _print_table(rows: list[dict], columns: list[str]) -> None:
    def cell(value):
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
            report["descriptors"].append(bench_descriptors(which, batch=8 if which == "paper" else 32,
                                                           seconds=2.0 if args.quick else 8.0, device=device))
    _print_table(report["descriptors"], ["models", "resolution", "device", "threads", "mduit_dim", "netvlad_dim",
                                         "mduit_per_s", "netvlad_per_s", "mduit_over_netvlad"])
    sizes = [(10_000, 100), (100_000, 316)] if args.quick else [(100_000, 316), (1_000_000, 1000)]
    for num, nlist in sizes:
        report["index"] += bench_index(num, args.dim, args.queries, nlist, nprobes=[8, 32])
    print()
    _print_table(report["index"], ["N", "D", "index", "build_s", "size_mb", "batched_ms_per_query",
                                   "single_query_ms", "peak_search_mb", "dense_matrix_mb", "recall@1_vs_flat"])
    report["total_s"] = time.perf_counter() - started
    report["load_average_1_5_15min"] = list(os.getloadavg())
    report["cpu_count"] = os.cpu_count()
    print(f"\ntotal {report['total_s']:.0f} s; load average {report['load_average_1_5_15min']} on "
          f"{report['cpu_count']} CPUs (shared machines make timings noisy; compare within one run)")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

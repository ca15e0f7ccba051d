"""Several GPUs: IVF searches go to an index sharded over them (faiss-gpu is absent here: a CPU stand-in
builds the same IndexShards layout — each shard 1/N of the vectors under the one coarse quantizer)."""
import numpy as np

from mduit_loc.retrieval.faiss_index import IndexParams, LoadedIndex, build_faiss_index, resolve_params
from mduit_loc.retrieval.search import SearchOptions, search

from .test_retrieval_search import random_table, unit

KEEP: list = []


def cpu_shards(index, vectors: np.ndarray, count: int):
    """What index_cpu_to_all_gpus(shard=True) builds, on the CPU: IndexShards of IVF copies, each holding
    every count-th vector with its original id."""
    import faiss

    shards = faiss.IndexShards(index.d, False, False)   # not threaded, ids kept
    for shard in range(count):
        part = faiss.clone_index(index)
        part.reset()
        ids = np.arange(shard, index.ntotal, count, dtype=np.int64)
        part.add_with_ids(vectors[ids], ids)
        shards.add_shard(part)
        KEEP.append(part)   # the SWIG wrapper does not own its shards
    return shards


def test_ivf_search_on_several_gpus_is_sharded_and_finds_what_one_index_finds(monkeypatch):
    import faiss

    rng = np.random.default_rng(11)
    vectors = unit(rng.standard_normal((600, 16)))
    params = resolve_params(IndexParams(type="ivf", nlist=8, nprobe=8), len(vectors), 16)
    index = build_faiss_index(vectors, params)
    table = random_table(rng, 600, ["original"])
    manifest = {"index": {"type": "ivf", "nprobe": 8}, "descriptor": {"dim": 16}}
    queries = unit(vectors[:40] + 0.1 * rng.standard_normal((40, 16)).astype(np.float32))
    expected = search(LoadedIndex(None, manifest, index, table), queries, SearchOptions(k=5, use_gpu_faiss=False))

    cloned = []

    class Options:
        shard = False

    def to_all_gpus(cpu_index, options):
        cloned.append(options.shard)
        return cpu_shards(cpu_index, vectors, 2)

    monkeypatch.setattr(faiss, "StandardGpuResources", object, raising=False)
    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 2)
    monkeypatch.setattr(faiss, "GpuMultipleClonerOptions", Options, raising=False)
    monkeypatch.setattr(faiss, "index_cpu_to_all_gpus", to_all_gpus, raising=False)
    got = search(LoadedIndex(None, manifest, index, table), queries, SearchOptions(k=5))
    assert cloned == [True]
    assert np.array_equal(got.image_ids, expected.image_ids)
    np.testing.assert_allclose(got.scores, expected.scores, rtol=1e-6)

"""Masks, collapse of translated variants, blocked exact search and IVF-PQ recall."""
from __future__ import annotations

import numpy as np
import pytest

from mduit_loc.errors import MduitError
from mduit_loc.poses import Pose
from mduit_loc.retrieval.db_table import NO_LOCATION, DatabaseTable
from mduit_loc.retrieval.faiss_index import IndexParams, LoadedIndex, build_faiss_index, resolve_params
from mduit_loc.retrieval.search import (
    QueryAttributes,
    SearchOptions,
    allowed_matrix,
    collapse_to_images,
    exact_topk,
    penalise_translated,
    search,
)


def unit(rows: np.ndarray) -> np.ndarray:
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def random_table(rng, num_images: int, appearances: list[str]) -> DatabaseTable:
    cameras = list(rng.choice(["left", "rear", "right"], num_images))
    locations = [None if i % 17 == 0 else int(v) for i, v in enumerate(rng.integers(1, 6, num_images))]
    poses = [Pose.identity()] * num_images
    return DatabaseTable.build([f"db/{i}.jpg" for i in range(num_images)], cameras, locations, poses, appearances)


def loaded(table: DatabaseTable, vectors: np.ndarray, params: IndexParams) -> LoadedIndex:
    params = resolve_params(params, len(vectors), vectors.shape[1])
    manifest = {"index": {"type": params.type, "nprobe": params.nprobe}, "descriptor": {"dim": vectors.shape[1]}}
    return LoadedIndex(None, manifest, build_faiss_index(vectors, params), table)


def brute_force(queries, vectors, table, attributes, options):
    """Reference: dense similarities, dense masks, per-image max in a Python loop."""
    similarity = queries @ vectors.T
    allowed = allowed_matrix(attributes.cameras, attributes.locations, table.vector_cameras(),
                             table.vector_locations(), options.per_camera, options.per_location)
    if allowed is not None:
        similarity = np.where(allowed, similarity, -np.inf)
    ranked = []
    for row in similarity:
        best: dict[int, float] = {}
        for vector_id, score in enumerate(row):
            image = int(table.vector_images[vector_id])
            if np.isfinite(score) and score > best.get(image, -np.inf):
                best[image] = score
        ranked.append(sorted(best, key=lambda i: -best[i])[: options.k])
    return ranked


def test_collapse_keeps_the_best_variant_per_image_hand_computed():
    # vectors: image 0 -> ids 0, 1; image 1 -> ids 2, 3; image 2 -> ids 4, 5 (appearances 0/1)
    vector_images = np.array([0, 0, 1, 1, 2, 2])
    vector_appearances = np.array([0, 1, 0, 1, 0, 1])
    scores = np.array([[0.9, 0.8, 0.7, 0.6], [0.5, 0.4, 0.3, -np.inf]], np.float32)
    ids = np.array([[1, 0, 3, 4], [5, 4, 2, -1]])
    result = collapse_to_images(scores, ids, vector_images, vector_appearances, k=2)
    assert result.image_ids.tolist() == [[0, 1], [2, 1]]
    assert result.scores == pytest.approx(np.array([[0.9, 0.7], [0.5, 0.3]]))
    assert result.appearance_ids.tolist() == [[1, 1], [1, 0]]


def test_translated_penalty_lets_an_original_beat_a_copy_hand_computed():
    # image 0: original 0.8; image 1: original 0.5, translated copy 0.9 (ids: image-major, 2 variants)
    vector_images, vector_appearances = np.array([0, 0, 1, 1]), np.array([0, 1, 0, 1])
    scores = np.array([[0.9, 0.8, 0.5, -np.inf]], np.float32)
    ids = np.array([[3, 0, 2, -1]])
    plain = collapse_to_images(scores, ids, vector_images, vector_appearances, k=2)
    assert plain.image_ids.tolist() == [[1, 0]]                       # the paper's maximum: the copy wins
    penalised = penalise_translated(scores, ids, vector_appearances, 0.2)
    assert penalised == pytest.approx(np.array([[0.7, 0.8, 0.5, -np.inf]]))   # only the copy loses 0.2
    result = collapse_to_images(penalised, ids, vector_images, vector_appearances, k=2)
    assert result.image_ids.tolist() == [[0, 1]]
    assert result.scores == pytest.approx(np.array([[0.8, 0.7]]))      # image 1 keeps max(0.5, 0.9 - 0.2)
    with pytest.raises(MduitError, match="translated-penalty"):
        SearchOptions(translated_penalty=-0.1)


def test_collapse_pads_when_fewer_distinct_images_than_k():
    result = collapse_to_images(np.array([[0.9, 0.8]], np.float32), np.array([[0, 1]]), np.array([0, 0]),
                                np.array([0, 1]), k=3)
    assert result.image_ids.tolist() == [[0, -1, -1]]
    assert result.scores[0, 0] == pytest.approx(0.9) and np.isneginf(result.scores[0, 1:]).all()


@pytest.mark.parametrize("per_camera,per_location", [(False, False), (True, False), (False, True), (True, True)])
def test_exact_search_with_masks_and_variants_equals_brute_force(per_camera, per_location):
    rng = np.random.default_rng(1)
    table = random_table(rng, 120, ["original", "night-0", "snow-0"])
    vectors = unit(rng.standard_normal((table.num_vectors, 8)))
    queries = unit(rng.standard_normal((37, 8)))
    cameras = rng.integers(-1, 3, len(queries))      # -1: unknown camera, no restriction
    locations = rng.integers(0, 6, len(queries))      # 0: a location without database images
    locations[::5] = NO_LOCATION
    attributes = QueryAttributes(cameras, locations)
    # Small chunks and blocks force the chunked merge to be exercised.
    options = SearchOptions(k=4, per_camera=per_camera, per_location=per_location, query_chunk=8, db_block=50)
    result = search(loaded(table, vectors, IndexParams(type="flat")), queries, options, attributes)
    expected = brute_force(queries, vectors, table, attributes, options)
    for row, ranked in enumerate(expected):
        assert result.image_ids[row, : len(ranked)].tolist() == ranked
        assert (result.image_ids[row, len(ranked):] == -1).all()
        allowed_images = result.image_ids[row][result.image_ids[row] >= 0]
        if per_camera and cameras[row] >= 0:
            assert (table.image_cameras[allowed_images] == cameras[row]).all()
        if per_location and locations[row] != NO_LOCATION:
            assert (table.image_locations[allowed_images] == locations[row]).all()


def test_collapse_returns_k_distinct_places_even_when_variants_dominate():
    rng = np.random.default_rng(2)
    table = random_table(rng, 30, ["original", "a", "b", "c"])
    base = unit(rng.standard_normal((30, 16)))
    # Variants of an image are near-copies, so the top vectors are variants of few images.
    vectors = unit(np.repeat(base, 4, axis=0) + 0.01 * rng.standard_normal((120, 16)))
    result = search(loaded(table, vectors, IndexParams(type="flat")), base[:5], SearchOptions(k=6))
    for row in result.image_ids:
        assert len(set(row.tolist())) == 6 and (row >= 0).all()
    assert result.image_ids[:, 0].tolist() == [0, 1, 2, 3, 4]
    assert (np.diff(result.scores, axis=1) <= 0).all()


def test_exact_topk_memory_is_bounded_by_chunk_and_block_not_database_size():
    rng = np.random.default_rng(3)
    database = unit(rng.standard_normal((5000, 8)))
    queries = unit(rng.standard_normal((10, 8)))
    options = SearchOptions(k=3, query_chunk=4, db_block=512)
    scores, ids = exact_topk(queries, database, 3, None, None, None, options)
    reference = np.argsort(-(queries @ database.T), axis=1)[:, :3]
    assert (ids == reference).all()
    assert scores == pytest.approx(np.take_along_axis(queries @ database.T, reference, axis=1), abs=1e-5)


@pytest.mark.parametrize("index_type", ["ivf", "ivf-pq"])
def test_ivf_search_respects_masks(index_type):
    rng = np.random.default_rng(4)
    table = random_table(rng, 2000, ["original"])
    vectors = unit(rng.standard_normal((2000, 16)))
    queries = vectors[:50] + 0.05 * rng.standard_normal((50, 16)).astype(np.float32)
    attributes = QueryAttributes(table.image_cameras[:50], table.image_locations[:50])
    options = SearchOptions(k=5, per_camera=True, per_location=True)
    index = loaded(table, vectors, IndexParams(type=index_type, nlist=16, nprobe=4))
    result = search(index, queries, options, attributes)
    for row in range(50):
        found = result.image_ids[row][result.image_ids[row] >= 0]
        assert len(found) > 0
        assert (table.image_cameras[found] == attributes.cameras[row]).all()
        if attributes.locations[row] != NO_LOCATION:
            assert (table.image_locations[found] == attributes.locations[row]).all()
    assert (result.image_ids[:, 0] == np.arange(50)).mean() >= 0.9  # the query's own image, despite the mask


def test_ivf_pq_recall_at_1_against_flat_on_random_data():
    rng = np.random.default_rng(5)
    num, dim = 5000, 32
    vectors = unit(rng.standard_normal((num, dim)))
    # Queries are noisy views of random database vectors, as a query photo is of its place.
    targets = rng.choice(num, 200, replace=False)
    queries = unit(vectors[targets] + 0.05 * rng.standard_normal((200, dim)).astype(np.float32))
    table = DatabaseTable.build([f"{i}" for i in range(num)], ["rear"] * num, [None] * num,
                                [Pose.identity()] * num, ["original"])
    flat = search(loaded(table, vectors, IndexParams(type="flat")), queries, SearchOptions(k=1))
    pq = search(loaded(table, vectors, IndexParams(type="ivf-pq", nlist=32, pq_m=16, pq_nbits=6, nprobe=8)), queries,
                SearchOptions(k=1))
    recall = (pq.image_ids[:, 0] == flat.image_ids[:, 0]).mean()
    assert (flat.image_ids[:, 0] == targets).mean() > 0.99
    assert recall >= 0.9, f"IVF-PQ recall@1 relative to Flat is {recall:.3f}"
    assert recall < 1.0 or pq.scores[:, 0] != pytest.approx(flat.scores[:, 0], abs=1e-6)  # really approximate


def test_ivf_training_and_unmasked_search_go_to_faiss_gpu_when_present(monkeypatch):
    """faiss-gpu is not installed here: a stand-in records what would run on the GPU."""
    import faiss

    calls = []

    class StandInGpuIndex:
        def __init__(self, index):
            self.index = index

        def __getattr__(self, name):  # train / add / search run on the wrapped CPU index
            calls.append(name)
            return getattr(self.index, name)

    monkeypatch.setattr(faiss, "StandardGpuResources", object, raising=False)
    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 1)
    monkeypatch.setattr(faiss, "index_cpu_to_gpu", lambda resources, device, index: StandInGpuIndex(index),
                        raising=False)
    monkeypatch.setattr(faiss, "index_gpu_to_cpu", lambda gpu_index: gpu_index.index, raising=False)
    rng = np.random.default_rng(6)
    vectors = unit(rng.standard_normal((500, 8)))
    params = resolve_params(IndexParams(type="ivf", nlist=8, nprobe=8), len(vectors), 8)
    index = build_faiss_index(vectors, params, use_gpu=True)
    assert calls == ["train", "add"] and isinstance(index, faiss.IndexIVFFlat) and index.ntotal == 500
    assert build_faiss_index(vectors, params, use_gpu=False) is not None and calls == ["train", "add"]
    table = random_table(rng, 500, ["original"])
    manifest = {"index": {"type": "ivf", "nprobe": 8}, "descriptor": {"dim": 8}}
    result = search(LoadedIndex(None, manifest, index, table), vectors[:3], SearchOptions(k=1))
    assert calls[-1] == "search" and result.image_ids[:, 0].tolist() == [0, 1, 2]
    calls.clear()  # FAISS GPU indexes ignore ID selectors: masked searches stay on the CPU
    attributes = QueryAttributes(table.image_cameras[:3], table.image_locations[:3])
    search(LoadedIndex(None, manifest, index, table), vectors[:3], SearchOptions(k=1, per_camera=True), attributes)
    assert calls == []

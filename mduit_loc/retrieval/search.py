"""Chunked top-k search with per-query masks and the collapse of translated variants.

Design (exact, memory-bounded at any database size):
- **Flat indexes** are searched by a blocked exact engine: for a chunk of ``query_chunk`` queries and
  a block of ``db_block`` database vectors, similarities are one matrix product (BLAS on CPU, or
  CUDA through torch when available), masked entries are set to -inf, and a running top-K is
  merged block by block. Peak memory is ``query_chunk x db_block`` floats, never ``Q x N`` (the
  dense matrix that breaks hloc's retrieval above ~100k images). The vectors are a zero-copy view
  of the FAISS Flat storage. Why not ``faiss.IndexFlat.search`` with an ``IDSelector``: with a
  selector FAISS leaves BLAS for a scalar loop (about 9x slower, measured on this machine), and
  FAISS GPU indexes silently ignore selectors (facebookresearch/faiss#3924).
  Unmasked, FAISS's own ``IndexFlatIP.search`` is no better overall (10^6 x 128-D, top-10, this
  shared 2-core machine): 100 queries 4.5 s vs 1.6 s here, 500 queries 22 s vs 8 s, 2000 queries
  19 s vs 30 s — it only wins on large batches, so one engine serves every case.
- **IVF / IVF-PQ indexes** are searched by FAISS. Masks become ``IDSelectorBitmap`` selectors in
  ``SearchParametersIVF`` (CPU index; queries grouped by their mask, a few groups at most). A
  selector filters inside the probed lists, so a restrictive mask returns fewer candidates; the
  number of probed lists is therefore divided by the mask's selectivity (capped at ``nlist``).
  Unmasked IVF searches run on a FAISS GPU index when faiss-gpu and a GPU are present.
- **Masks** are per query: ``per_camera`` keeps database vectors of the query's camera,
  ``per_location`` those of the query's location. A query whose camera/location is unknown (-1) is
  not restricted on that attribute.
- **Collapse**: a database image translated into A appearances has A vectors. The search keeps the
  top ``K = k * A`` vectors (enough to contain k distinct images, and exactly the k best of them),
  then keeps each image's best-scoring vector — a per-row scatter-max, done vectorised over the
  whole chunk as "first occurrence of each image in the score-sorted row" — and returns the k best
  distinct images.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import overload

import numpy as np
import torch

from mduit_loc.errors import MduitError
from mduit_loc.retrieval.db_table import NO_LOCATION
from mduit_loc.retrieval.faiss_index import LoadedIndex, faiss_gpu_available, gpu_searcher

UNKNOWN = -1
CPU = torch.device("cpu")


@dataclass(kw_only=True)
class SearchOptions:
    k: int = 10                        # --top-k: distinct database images per query
    per_camera: bool = False
    per_location: bool = False
    nprobe: int | None = None          # IVF lists to visit (default: the index's)
    query_chunk: int = 256             # queries per search chunk (bounds memory)
    db_block: int = 65536
    use_gpu_faiss: bool = True         # unmasked IVF searches on a FAISS GPU index when possible
    # --translated-penalty: cosine taken off a translated copy's score before each image keeps its best
    # variant (0: the paper's plain maximum; a blurred copy of a wrong place then often wins)
    translated_penalty: float = 0.0

    def __post_init__(self) -> None:
        if self.k < 1:
            raise MduitError(f"--top-k must be >= 1, got {self.k}")
        if not 0.0 <= self.translated_penalty <= 2.0:
            raise MduitError(f"--translated-penalty must be in [0, 2] (a cosine), got {self.translated_penalty}")


@dataclass
class SearchResult:
    image_ids: np.ndarray       # (Q, k) database image index per rank, -1 where fewer results
    scores: np.ndarray          # (Q, k) cosine similarity of the best variant, -inf where padded
    appearance_ids: np.ndarray  # (Q, k) appearance code of that best variant, -1 where padded


@dataclass
class QueryAttributes:
    cameras: np.ndarray         # (Q,) camera code in the table's camera list, -1 unknown
    locations: np.ndarray       # (Q,) location, NO_LOCATION unknown


def allowed_matrix(query_cameras, query_locations, vector_cameras, vector_locations,
                   per_camera: bool, per_location: bool):
    """(Q, V) boolean mask of database vectors each query may retrieve (numpy or torch inputs)."""
    allowed = None
    if per_camera:
        allowed = (query_cameras[:, None] == UNKNOWN) | (query_cameras[:, None] == vector_cameras[None, :])
    if per_location:
        same = (query_locations[:, None] == NO_LOCATION) | (query_locations[:, None] == vector_locations[None, :])
        allowed = same if allowed is None else allowed & same
    return allowed


def collapse_to_images(scores: np.ndarray, vector_ids: np.ndarray, vector_images: np.ndarray,
                       vector_appearances: np.ndarray, k: int) -> SearchResult:
    """Best variant per database image, then the k best images per row (vectorised)."""
    num_rows, width = scores.shape
    order = np.argsort(-scores, axis=1, kind="stable")
    scores = np.take_along_axis(scores, order, axis=1)
    vector_ids = np.take_along_axis(vector_ids, order, axis=1)
    valid = (vector_ids >= 0) & np.isfinite(scores)
    safe_ids = np.where(valid, vector_ids, 0)
    images = np.where(valid, vector_images[safe_ids], -1)
    # The first occurrence of an image in a sorted row is its maximum over variants.
    num_images = int(vector_images.max()) + 2 if len(vector_images) else 2
    keys = np.arange(num_rows)[:, None] * num_images + (images + 1)
    _, first_index = np.unique(keys.reshape(-1), return_index=True)
    first = np.zeros(num_rows * width, bool)
    first[first_index] = True
    keep = first.reshape(num_rows, width) & valid
    keep &= np.cumsum(keep, axis=1) <= k
    columns = np.argsort(~keep, axis=1, kind="stable")[:, :k]
    kept = np.take_along_axis(keep, columns, axis=1)
    out_images = np.where(kept, np.take_along_axis(images, columns, axis=1), -1)
    out_scores = np.where(kept, np.take_along_axis(scores, columns, axis=1), -np.inf)
    chosen_vectors = np.take_along_axis(safe_ids, columns, axis=1)
    out_appearances = np.where(kept, vector_appearances[chosen_vectors], -1)
    if out_images.shape[1] < k:  # fewer candidates than k in total
        pad = k - out_images.shape[1]
        out_images = np.pad(out_images, ((0, 0), (0, pad)), constant_values=-1)
        out_scores = np.pad(out_scores, ((0, 0), (0, pad)), constant_values=-np.inf)
        out_appearances = np.pad(out_appearances, ((0, 0), (0, pad)), constant_values=-1)
    return SearchResult(out_images, out_scores.astype(np.float32), out_appearances)


def candidates_per_query(k: int, max_variants: int) -> int:
    """K vectors that surely contain the k best distinct images (k x max variants per image)."""
    return max(1, k * max_variants)


@overload
def _tensor(values: np.ndarray, device: torch.device) -> torch.Tensor: ...


@overload
def _tensor(values: None, device: torch.device) -> None: ...


def _tensor(values: np.ndarray | None, device: torch.device) -> torch.Tensor | None:
    return None if values is None else torch.from_numpy(np.ascontiguousarray(values)).to(device)


def _rows(values: torch.Tensor | None, start: int, stop: int) -> torch.Tensor | None:
    return None if values is None else values[start:stop]


def _mask_attributes(attributes: QueryAttributes | None, options: SearchOptions) -> QueryAttributes | None:
    """The attributes that restrict this search, or None when nothing is masked."""
    return attributes if attributes is not None and (options.per_camera or options.per_location) else None


def exact_topk(queries: np.ndarray, database: np.ndarray, K: int, attributes: QueryAttributes | None,
               vector_cameras: np.ndarray | None, vector_locations: np.ndarray | None, options: SearchOptions,
               device: torch.device = CPU) -> tuple[np.ndarray, np.ndarray]:
    """Blocked exact inner-product top-K with masks on ``device``: (scores (Q, K), vector ids (Q, K), -1 padded)."""
    K = min(K, len(database))
    masked = _mask_attributes(attributes, options)
    database_t = _tensor(np.asarray(database, np.float32), device)  # zero-copy on CPU
    cameras_t, locations_t = _tensor(vector_cameras, device), _tensor(vector_locations, device)
    out_scores = np.full((len(queries), K), -np.inf, np.float32)
    out_ids = np.full((len(queries), K), -1, np.int64)
    for start in range(0, len(queries), options.query_chunk):
        stop = min(start + options.query_chunk, len(queries))
        chunk = _tensor(np.asarray(queries[start:stop], np.float32), device)
        query_cameras = _tensor(masked.cameras[start:stop], device) if masked else None
        query_locations = _tensor(masked.locations[start:stop], device) if masked else None
        best_scores = torch.full((stop - start, K), -math.inf, device=device)
        best_ids = torch.full((stop - start, K), -1, dtype=torch.int64, device=device)
        for block_start in range(0, len(database), options.db_block):
            block_stop = min(block_start + options.db_block, len(database))
            similarity = chunk @ database_t[block_start:block_stop].T
            if masked:
                allowed = allowed_matrix(query_cameras, query_locations, _rows(cameras_t, block_start, block_stop),
                                         _rows(locations_t, block_start, block_stop),
                                         options.per_camera, options.per_location)
                similarity.masked_fill_(~allowed, -math.inf)
            scores, ids = similarity.topk(min(K, block_stop - block_start), dim=1)
            best_scores, position = torch.cat([best_scores, scores], dim=1).topk(K, dim=1)
            best_ids = torch.cat([best_ids, ids + block_start], dim=1).gather(1, position)
        best_ids[~torch.isfinite(best_scores)] = -1
        out_scores[start:stop] = best_scores.cpu().numpy()
        out_ids[start:stop] = best_ids.cpu().numpy()
    return out_scores, out_ids


def _bitmap_selector(allowed: np.ndarray):
    import faiss

    bitmap = np.packbits(allowed, bitorder="little")  # FAISS: bit (i & 7) of byte i >> 3
    selector = faiss.IDSelectorBitmap(len(allowed), faiss.swig_ptr(bitmap))
    selector.referenced_bitmap = bitmap  # keep the buffer alive as long as the selector
    return selector


def _faiss_search_chunks(index, queries: np.ndarray, K: int, chunk: int, params=None):
    scores = np.full((len(queries), K), -np.inf, np.float32)
    ids = np.full((len(queries), K), -1, np.int64)
    for start in range(0, len(queries), chunk):
        stop = min(start + chunk, len(queries))
        block = np.ascontiguousarray(queries[start:stop], np.float32)
        found_scores, found_ids = (index.search(block, K, params=params) if params is not None
                                   else index.search(block, K))
        scores[start:stop], ids[start:stop] = found_scores, found_ids
    scores[ids < 0] = -np.inf
    return scores, ids


def faiss_topk(index, queries: np.ndarray, K: int, attributes: QueryAttributes | None,
               vector_cameras: np.ndarray | None, vector_locations: np.ndarray | None, options: SearchOptions,
               nprobe: int) -> tuple[np.ndarray, np.ndarray]:
    """IVF / IVF-PQ top-K; masks as bitmap selectors, one FAISS call per distinct mask."""
    import faiss

    K = min(K, index.ntotal)
    nlist = faiss.extract_index_ivf(index).nlist
    masked = _mask_attributes(attributes, options)
    if masked is None:
        faiss.ParameterSpace().set_index_parameter(index, "nprobe", nprobe)  # copied to a GPU clone
        searcher = index
        if options.use_gpu_faiss and faiss_gpu_available():
            searcher = gpu_searcher(index)   # sharded over the GPUs when there are several
        return _faiss_search_chunks(searcher, queries, K, options.query_chunk)
    cameras = masked.cameras if options.per_camera else np.full(len(queries), UNKNOWN)
    locations = masked.locations if options.per_location else np.full(len(queries), NO_LOCATION)
    keys = np.stack([cameras, locations], axis=1)
    groups, group_of_query = np.unique(keys, axis=0, return_inverse=True)
    scores = np.full((len(queries), K), -np.inf, np.float32)
    ids = np.full((len(queries), K), -1, np.int64)
    for group_index, (camera, location) in enumerate(groups):
        members = np.flatnonzero(group_of_query.reshape(-1) == group_index)
        allowed = allowed_matrix(np.array([camera]), np.array([location]), vector_cameras, vector_locations,
                                 options.per_camera, options.per_location)[0]
        if not allowed.any():
            continue
        selectivity = allowed.mean()
        params = faiss.SearchParametersIVF(sel=_bitmap_selector(allowed),
                                           nprobe=int(min(nlist, math.ceil(nprobe / selectivity))))
        scores[members], ids[members] = _faiss_search_chunks(index, queries[members], K,
                                                             options.query_chunk, params)
    return scores, ids


def search(loaded_index: LoadedIndex, queries: np.ndarray, options: SearchOptions,
           attributes: QueryAttributes | None = None, device: torch.device = CPU) -> SearchResult:
    """k distinct database images per query, best first, with masks and variant collapse; flat
    indexes are searched on ``device``."""
    table = loaded_index.table
    queries = np.asarray(queries, np.float32).reshape(-1, loaded_index.dim)
    K = candidates_per_query(options.k, table.max_variants)
    masked = _mask_attributes(attributes, options) is not None
    # Per-vector attributes are O(V) to gather: only when a mask needs them.
    vector_cameras = table.vector_cameras() if masked and options.per_camera else None
    vector_locations = table.vector_locations() if masked and options.per_location else None
    if loaded_index.type == "flat":
        scores, ids = exact_topk(queries, loaded_index.vectors(), K, attributes, vector_cameras,
                                 vector_locations, options, device)
    else:
        nprobe = options.nprobe or loaded_index.nprobe or 1
        scores, ids = faiss_topk(loaded_index.faiss_index, queries, K, attributes, vector_cameras,
                                 vector_locations, options, nprobe)
    if options.translated_penalty > 0:
        scores = penalise_translated(scores, ids, table.vector_appearances, options.translated_penalty)
    return collapse_to_images(scores, ids, table.vector_images, table.vector_appearances, options.k)


def penalise_translated(scores: np.ndarray, vector_ids: np.ndarray, vector_appearances: np.ndarray,
                        penalty: float) -> np.ndarray:
    """``scores`` with ``penalty`` taken off every candidate that is a translated copy (appearance
    code > 0; code 0 is the original image); padded candidates (id -1) are left alone."""
    valid = vector_ids >= 0
    translated = valid & (vector_appearances[np.where(valid, vector_ids, 0)] > 0)
    return np.where(translated, scores - np.float32(penalty), scores).astype(scores.dtype, copy=False)

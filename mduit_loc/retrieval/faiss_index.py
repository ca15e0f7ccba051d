"""FAISS index of a database: build, save, load, and the checks that keep queries consistent.

Index directory layout (``mduit-loc index --out INDEX``)::

    INDEX/manifest.json       format version, descriptor {name, dim, checksum, image_size, spec},
                              index {type, nlist, pq_m, pq_nbits, nprobe, metric}, counts, dataset
                              {root, image_root, kind, nvm_path}, camera intrinsics, translation
                              settings, creation time, the size and SHA-256 of every other file and
                              a seal (``index_manifest``: how the manifest is bound to the vectors)
    INDEX/index.faiss         inner-product index over all vectors (IndexFlatIP / IndexIVFFlat /
                              IndexIVFPQ); vectors are L2-normalised, so scores are cosine similarities
    INDEX/database.tsv        vector id -> database image, appearance, camera, location, pose
                              (``mduit_loc.retrieval.db_table``); with ``--fuse-translations W`` one
                              row per image (appearance ``original``): its vector is the original's
                              blended with its translated copies, and the manifest's
                              ``translation.fused_weight`` records W
    INDEX/descriptors.h5      descriptors of the original database images (hloc global layout)
    INDEX/translations.h5     descriptors of translated variants, named ``<appearance>/<image>``
    INDEX/appearances.json    the target appearances used for translation (``--translate-db``)
    INDEX/translations/       translated images, ``<appearance>/<image>`` (``--save-translations``)
    INDEX/failed_images.txt   database images left out with ``--on-error skip``

All files of an index are one output set (``output_set``): a build writes them into a staging
folder and moves them into place together, so a killed build leaves the previous index whole.

Index types: ``flat`` (exact, default), ``ivf`` (IVF-Flat) and ``ivf-pq`` for large maps; the IVF
types are trained on (a sample of) the vectors. ``nprobe`` is stored and can be overridden per query.
"""
from __future__ import annotations

import datetime
import json
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mduit_loc import __version__
from mduit_loc.errors import ConfigMismatchError, DataNotFoundError, FormatError, MduitError
from mduit_loc.io_utils import atomic_path, read_json_file, write_json_atomic
from mduit_loc.output_lock import settle
from mduit_loc.retrieval import h5_io
from mduit_loc.retrieval.db_table import DatabaseTable, read_table, write_table
from mduit_loc.retrieval.extract import CHECKSUM_ATTR
from mduit_loc.retrieval.index_manifest import INDEX_TYPES, seal, validate_manifest, verify_binding

FORMAT = "mduit-loc-index"
FORMAT_VERSION = 2         # 2: files, seal and relative dataset paths in the manifest
MANIFEST = "manifest.json"
INDEX_FILE = "index.faiss"
TABLE_FILE = "database.tsv"
DESCRIPTORS_FILE = "descriptors.h5"
TRANSLATIONS_FILE = "translations.h5"
APPEARANCES_FILE = "appearances.json"
TRANSLATIONS_DIR = "translations"
FAILED_FILE = "failed_images.txt"
# every file of an index, the output set a build replaces as a whole
MEMBERS = (MANIFEST, INDEX_FILE, TABLE_FILE, DESCRIPTORS_FILE, TRANSLATIONS_FILE, APPEARANCES_FILE,
           TRANSLATIONS_DIR, FAILED_FILE)
_FAISS_CLASSES = {"flat": ("IndexFlatIP", "IndexFlat"), "ivf": ("IndexIVFFlat",), "ivf-pq": ("IndexIVFPQ",)}
log = logging.getLogger(__name__)
_MAX_TRAIN_POINTS_PER_CENTROID = 64  # FAISS wants >= 39; more costs training time, not recall


@dataclass(kw_only=True)
class IndexParams:
    type: str = "flat"
    nlist: int | None = None       # IVF lists; None: about 4 sqrt(N), at least 39 points per list
    pq_m: int | None = None        # PQ sub-quantizers; None: the largest divisor of D <= min(64, D/4)
    pq_nbits: int = 8
    nprobe: int | None = None      # lists visited per query; None: min(nlist, 32)
    seed: int = 0

    def __post_init__(self):
        if self.type not in INDEX_TYPES:
            raise MduitError(f"--index-type must be one of {', '.join(INDEX_TYPES)}, got {self.type!r}")


def default_nlist(num_vectors: int) -> int:
    nlist = int(round(4 * math.sqrt(num_vectors)))
    return max(1, min(nlist, num_vectors // 39))


def default_pq_m(dim: int) -> int:
    limit = max(1, min(64, dim // 4))
    return max(m for m in range(1, limit + 1) if dim % m == 0)


def resolve_params(params: IndexParams, num_vectors: int, dim: int) -> IndexParams:
    """Fill in the automatic values for this database size and dimension."""
    if params.type == "flat":
        return IndexParams(type="flat", seed=params.seed)
    nlist = params.nlist or default_nlist(num_vectors)
    if nlist > num_vectors:
        raise MduitError(f"--nlist {nlist} is larger than the number of database vectors ({num_vectors}); "
                         "use a smaller --nlist or --index-type flat")
    resolved = IndexParams(type=params.type, nlist=nlist, nprobe=params.nprobe or min(nlist, 32), seed=params.seed)
    if params.type == "ivf-pq":
        resolved.pq_m = params.pq_m or default_pq_m(dim)
        if dim % resolved.pq_m:
            raise MduitError(f"--pq-m {resolved.pq_m} must divide the descriptor dimension {dim}")
        # Each PQ codebook has 2^nbits centroids and FAISS wants >= 39 training points per centroid.
        resolved.pq_nbits = max(1, min(params.pq_nbits, int(math.log2(max(2, num_vectors // 39)))))
    return resolved


def build_faiss_index(vectors: np.ndarray, params: IndexParams, use_gpu: bool = False):
    """Create, train (IVF types) and fill an inner-product index; ``params`` must be resolved.

    With ``use_gpu`` and faiss-gpu with a GPU present, IVF training (k-means, the slow part) and
    adding run on the GPU; the index returned is always a CPU index (it is saved, and masked searches
    need CPU selectors).
    """
    import faiss

    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    num_vectors, dim = vectors.shape
    if params.type == "flat":
        index = faiss.IndexFlatIP(dim)
        index.add(vectors)
        return index
    nlist = params.nlist
    if nlist is None or (params.type == "ivf-pq" and params.pq_m is None):
        raise ValueError(f"build_faiss_index: unresolved {params} (pass it through resolve_params)")
    quantizer = faiss.IndexFlatIP(dim)
    if params.type == "ivf":
        index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    else:
        index = faiss.IndexIVFPQ(quantizer, dim, nlist, params.pq_m, params.pq_nbits, faiss.METRIC_INNER_PRODUCT)
    index.cp.seed = params.seed
    index.nprobe = params.nprobe
    max_train = max(nlist, 2 ** params.pq_nbits if params.type == "ivf-pq" else 0)
    max_train *= _MAX_TRAIN_POINTS_PER_CENTROID
    rng = np.random.default_rng(params.seed)
    sample = vectors
    if num_vectors > max_train:
        sample = vectors[np.sort(rng.choice(num_vectors, max_train, replace=False))]
    if use_gpu and faiss_gpu_available():
        try:
            gpu_index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
            gpu_index.train(sample)
            gpu_index.add(vectors)
            return faiss.index_gpu_to_cpu(gpu_index)
        except RuntimeError as err:  # e.g. a PQ layout the GPU kernels do not support
            log.warning("FAISS GPU training failed (%s); training on the CPU", str(err).splitlines()[-1])
    index.train(sample)
    index.add(vectors)
    return index


# --- manifest -------------------------------------------------------------------------------
def make_manifest(descriptor_identity: dict, params: IndexParams, table: DatabaseTable, dataset: dict,
                  intrinsics: dict, translation: dict | None, failed: int) -> dict:
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "mduit_loc_version": __version__,
        "descriptor": descriptor_identity,
        "index": {**{k: v for k, v in asdict(params).items() if v is not None}, "metric": "inner_product"},
        "counts": {"images": table.num_images, "vectors": table.num_vectors,
                   "appearances": len(table.appearances), "failed_images": failed},
        "dataset": dataset,
        "intrinsics": intrinsics,
        "translation": translation,
    }


def save_index(index_dir: str | Path, faiss_index, table: DatabaseTable, manifest: dict) -> Path:
    """Write the FAISS index and the table, then the manifest sealed with the records of every file in
    ``index_dir`` (a staging folder when ``build_index`` writes: see ``output_set``)."""
    import faiss

    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(index_dir / INDEX_FILE) as tmp:
        faiss.write_index(faiss_index, str(tmp))
    write_table(index_dir / TABLE_FILE, table)
    files = [name for name in MEMBERS if name not in (MANIFEST, TRANSLATIONS_DIR)]
    write_json_atomic(index_dir / MANIFEST, seal(manifest, index_dir, files))
    return index_dir


@dataclass
class LoadedIndex:
    path: Path
    manifest: dict[str, Any]
    faiss_index: Any                   # a faiss.Index (untyped: faiss has no usable stubs)
    table: DatabaseTable

    @property
    def type(self) -> str:
        return self.manifest["index"]["type"]

    @property
    def dim(self) -> int:
        return int(self.manifest["descriptor"]["dim"])

    @property
    def nprobe(self) -> int | None:
        return self.manifest["index"].get("nprobe")

    def vectors(self) -> np.ndarray:
        """All stored vectors (Flat indexes only): a zero-copy view of the FAISS storage."""
        import faiss

        if self.type != "flat":
            raise MduitError(f"{self.path}: vectors are only stored exactly in a flat index")
        count = self.faiss_index.ntotal
        return faiss.rev_swig_ptr(self.faiss_index.get_xb(), count * self.dim).reshape(count, self.dim)


def read_manifest(index_dir: str | Path) -> dict:
    """The validated manifest of ``index_dir`` (every field checked; see ``index_manifest``)."""
    index_dir = Path(index_dir)
    path = index_dir / MANIFEST
    if not index_dir.is_dir():
        raise DataNotFoundError(index_dir, "index directory", "build one with 'mduit-loc index'")
    settle(index_dir)
    manifest = read_json_file(path, "index manifest",
                              "the index is incomplete or was not built by 'mduit-loc index'; rebuild it")
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise FormatError(path, None, f"an index manifest with \"format\": \"{FORMAT}\"")
    if manifest.get("version") != FORMAT_VERSION:
        raise FormatError(path, None, f"index format version {FORMAT_VERSION} (rebuild the index)",
                          got=str(manifest.get("version")))
    validate_manifest(manifest, path)
    return manifest


def _check_faiss_index(faiss_index, manifest: dict, index_path: Path) -> None:
    import faiss

    params = manifest["index"]
    kind, found = params["type"], type(faiss_index).__name__
    if found not in _FAISS_CLASSES[kind]:
        raise ConfigMismatchError(f"{index_path}: a {found}, but the manifest says \"type\": \"{kind}\"; "
                                  "rebuild the index")
    if faiss_index.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise ConfigMismatchError(f"{index_path}: expected an inner-product index")
    dim = manifest["descriptor"]["dim"]
    if faiss_index.d != dim:
        raise ConfigMismatchError(f"{index_path}: index dimension {faiss_index.d} but the manifest says {dim}")
    if kind != "flat" and faiss_index.nlist != params["nlist"]:
        raise ConfigMismatchError(f"{index_path}: {faiss_index.nlist} IVF lists, the manifest says {params['nlist']}")
    if kind != "flat" and params["nprobe"] > params["nlist"]:
        raise FormatError(index_path.parent / MANIFEST, None, f'"index.nprobe" at most nlist ({params["nlist"]})',
                          got=str(params["nprobe"]))


def _check_vector_records(index_dir: Path, manifest: dict) -> None:
    """The model recorded inside the vector files is the manifest's (see ``index_manifest``)."""
    checksum = manifest["descriptor"]["checksum"]
    with h5_io.open_h5(index_dir / DESCRIPTORS_FILE) as handle:
        stored = handle.attrs.get(CHECKSUM_ATTR)
    if str(stored) != checksum:
        raise ConfigMismatchError(f"{index_dir / MANIFEST}: says the vectors were computed by the model with checksum "
                                  f"{checksum[:12]}..., but {DESCRIPTORS_FILE} records {str(stored)[:12]}...; the "
                                  "manifest was edited or belongs to another index: rebuild the index")
    if manifest.get("translation") and (index_dir / TRANSLATIONS_FILE).is_file():
        with h5_io.open_h5(index_dir / TRANSLATIONS_FILE) as handle:
            fingerprint = handle.attrs.get("fingerprint")
        try:
            recorded = json.loads(str(fingerprint)).get("descriptor")
        except (ValueError, AttributeError):
            recorded = None
        if recorded != checksum:
            raise ConfigMismatchError(f"{index_dir / TRANSLATIONS_FILE}: its descriptors were not computed by the "
                                      f"model of {MANIFEST} ({checksum[:12]}...); rebuild the index")


def load_index(index_dir: str | Path) -> LoadedIndex:
    """Load and cross-check manifest, FAISS index and table; refuse any inconsistency."""
    import faiss

    index_dir = Path(index_dir)
    manifest = read_manifest(index_dir)
    verify_binding(manifest, index_dir, index_dir / MANIFEST)
    _check_vector_records(index_dir, manifest)
    index_path = index_dir / INDEX_FILE
    try:
        faiss_index = faiss.read_index(str(index_path))
    except RuntimeError as err:
        raise FormatError(index_path, None, "a FAISS index", got=str(err).splitlines()[-1]) from None
    _check_faiss_index(faiss_index, manifest, index_path)
    table = read_table(index_dir / TABLE_FILE)
    counts = manifest["counts"]
    if faiss_index.ntotal != table.num_vectors or counts["vectors"] != table.num_vectors:
        raise ConfigMismatchError(f"{index_dir}: {faiss_index.ntotal} vectors in {INDEX_FILE}, "
                                  f"{table.num_vectors} rows in {TABLE_FILE}, "
                                  f"{counts['vectors']} in {MANIFEST}; rebuild the index")
    if counts["images"] != table.num_images or counts["appearances"] != len(table.appearances):
        raise ConfigMismatchError(f"{index_dir}: {table.num_images} images x {len(table.appearances)} appearances in "
                                  f"{TABLE_FILE}, {counts['images']} x {counts['appearances']} in {MANIFEST}; "
                                  "rebuild the index")
    return LoadedIndex(index_dir, manifest, faiss_index, table)


def check_descriptor(manifest: dict, identity: dict, index_dir: Path | str = "index") -> None:
    """Refuse a query descriptor that differs from the one the index was built with."""
    built = manifest["descriptor"]
    for key, what in (("name", "descriptor"), ("dim", "dimension"), ("checksum", "model checksum")):
        if str(built.get(key)) != str(identity.get(key)):
            raise ConfigMismatchError(
                f"{index_dir}: the index was built with {what} {built.get(key)!r} (model {built.get('spec')}) "
                f"but the query model has {identity.get(key)!r} ({identity.get('spec')}); "
                "query with the same model or rebuild the index with this one")


def gpu_searcher(index):
    """``index`` copied to the GPU(s) for searching (faiss-gpu): with one GPU a clone; with several,
    sharded (``IndexShards``: each GPU holds 1/N of the vectors under the same coarse quantizer, and
    the per-shard top-K lists are merged), so a map too large for one card's memory is searched on all
    of them. Flat indexes never come here: ``search.exact_topk`` runs them on the query ``--device``."""
    import faiss

    if faiss.get_num_gpus() > 1:
        options = faiss.GpuMultipleClonerOptions()
        options.shard = True
        return faiss.index_cpu_to_all_gpus(index, options)
    return faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)


def faiss_gpu_available() -> bool:
    try:
        import faiss
    except ImportError:  # pragma: no cover
        return False
    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0

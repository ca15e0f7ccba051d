"""``localize``: describe queries, search the index (masks, collapse), estimate and write poses."""
from __future__ import annotations

import logging
import sys
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
from tqdm import tqdm

from mduit_loc.datasets import open_dataset
from mduit_loc.datasets.map_files import MapFiles, default_image_root, is_inside
from mduit_loc.datasets.types import Intrinsics, LocalizationDataset
from mduit_loc.errors import DataNotFoundError, MduitError
from mduit_loc.output_lock import output_lock
from mduit_loc.pose_files import check_token_names
from mduit_loc.poses import Pose
from mduit_loc.retrieval.db_table import NO_LOCATION
from mduit_loc.retrieval.descriptor_models import load_descriptor
from mduit_loc.retrieval.extract import FailedImage, compute_descriptors
from mduit_loc.retrieval.faiss_index import LoadedIndex, check_descriptor, load_index
from mduit_loc.retrieval.options import QueryOptions
from mduit_loc.retrieval.outputs import write_results
from mduit_loc.retrieval.pose_estimation import estimate_poses
from mduit_loc.retrieval.query_inputs import QueryItem, resolve_queries
from mduit_loc.retrieval.query_translation import translating_descriptor
from mduit_loc.retrieval.refine import PoseRefiner, RefineResult, RetrievedImage
from mduit_loc.retrieval.scene3d import load_scene
from mduit_loc.retrieval.search import QueryAttributes, search

log = logging.getLogger(__name__)


@dataclass
class LocalizationResults:
    queries: list[QueryItem]                       # the queries that were described
    poses: dict[str, Pose]                         # query name -> cam_from_world
    pairs: dict[str, list[str]]                    # query name -> database images, best first
    scores: dict[str, list[float]]                 # cosine similarities, aligned with pairs
    appearances: dict[str, list[str]]              # best-matching variant per retrieved image
    db_cameras: dict[str, list[str]]
    pose_method: str = "top1"
    refinement: dict[str, RefineResult] = field(default_factory=dict)
    failed: list[FailedImage] = field(default_factory=list)
    no_pose: dict[str, str] = field(default_factory=dict)  # query name -> why it has no pose


NO_RESULTS = "no database image allowed by the masks"
NO_DB_POSE = "pairs only: the retrieved database images have no pose"


def _named_folders(index: Path, queries, options: QueryOptions) -> list[Path]:
    """The folders a query may read through paths recorded in the index: the index itself and the folders
    named by the caller (``--data``, ``--image-root``, ``--images`` folders, a dataset passed in)."""
    named = [index, *(Path(p) for p in (options.data, options.image_root) if p)]
    if isinstance(queries, LocalizationDataset):
        named += [Path(queries.root), Path(queries.image_root)]
    elif isinstance(queries, (list, tuple)):
        named += [Path(q) for q in queries if isinstance(q, (str, Path)) and Path(q).is_dir()]
    return named


def _recorded_map(manifest: dict) -> MapFiles:
    return MapFiles.from_record(dict(manifest.get("dataset") or {}))


def _query_items(queries, options: QueryOptions, manifest: dict, cameras: Sequence[str],
                 named: Sequence[Path] = ()) -> list[QueryItem]:
    recorded = _recorded_map(manifest) if manifest.get("dataset") else None
    # The recorded image folder names the queries and finds the images of list files (only images are read
    # through it); the recorded map's own files (per-location lists) only inside the folders named.
    dataset_root = options.data or (recorded.root if recorded and is_inside(recorded.root, named) else None)
    image_root = options.image_root or default_image_root(options.data) or (recorded.image_root if recorded else None)
    if isinstance(queries, LocalizationDataset):
        chosen = [q for q in queries.queries if options.split == "all" or q.split == options.split]
        return [QueryItem(q.name, queries.image_path(q.name), q.camera, q.location) for q in chosen]
    queries = list(queries)
    if queries and all(isinstance(q, QueryItem) for q in queries):
        return queries
    return resolve_queries(queries, Path(image_root) if image_root else None, options.split,
                           Path(dataset_root) if dataset_root else None, cameras)


def _attributes(items: list[QueryItem], loaded: LoadedIndex, options: QueryOptions) -> QueryAttributes:
    table = loaded.table
    cameras = np.array([table.camera_code(item.camera) for item in items], np.int64)
    locations = np.array([NO_LOCATION if item.location is None else item.location for item in items], np.int64)
    if options.search.per_camera and (cameras < 0).any():
        log.warning("--per-camera: %d of %d queries have no known database camera; they search all cameras",
                    int((cameras < 0).sum()), len(items))
    if options.search.per_location:
        if (table.image_locations == NO_LOCATION).all():
            raise MduitError(f"{loaded.path}: --per-location needs database locations, but the index has none "
                             "(the map has no per-location models)")
        if (locations == NO_LOCATION).all():
            raise MduitError("--per-location needs each query's location from the dataset's per-location query "
                             "lists (queries_per_location/); none of the queries has one (pass --data DATASET)")
        if (locations == NO_LOCATION).any():
            log.warning("--per-location: %d of %d queries have no location; they search all locations",
                        int((locations == NO_LOCATION).sum()), len(items))
    return QueryAttributes(cameras, locations)


def _query_descriptor(loaded: LoadedIndex, model: str | None, device):
    """The model given, else the one the index was built with (found again by its stored spec)."""
    if model is not None:
        return load_descriptor(model, device)
    spec = loaded.manifest["descriptor"].get("spec")
    try:
        return load_descriptor(spec, device)
    except DataNotFoundError as err:
        raise DataNotFoundError(err.path, "descriptor model of the index",
                                f"the index {loaded.path} was built with {spec!r}, which is gone; pass --model "
                                "with the same model (its checksum is checked)") from None


def _intrinsics(manifest: dict, key: str = "intrinsics") -> dict[str, Intrinsics]:
    """Per camera (``intrinsics``) or per image whose own calibration differs (``image_intrinsics``)."""
    return {camera: Intrinsics(**values) for camera, values in (manifest.get(key) or {}).items()}


@dataclass
class _MapForRefinement:
    """What PnP needs of the map, loaded once: structure, intrinsics (per camera, and per image where
    an image has its own, as in a COLMAP map with a camera per image), image root, a SIFT refiner
    (which caches database features across queries)."""

    refiner: PoseRefiner
    intrinsics: dict[str, Intrinsics]
    image_root: Path
    image_intrinsics: dict[str, Intrinsics] = field(default_factory=dict)

    @classmethod
    def load(cls, loaded: LoadedIndex, options: QueryOptions, named: Sequence[Path] = ()) -> _MapForRefinement:
        files = _recorded_map(loaded.manifest)
        outside = files.outside(named)
        if options.data is None and outside:
            raise MduitError(f"--pose pnp reads the map's 3D structure, and {loaded.path / 'manifest.json'} records "
                             f"it at {files.root} ({outside[0]} is outside the folders named on the command line); "
                             f"pass --data {files.root} to use that map (paths recorded in an index are only followed "
                             "inside the index or folders named on the command line)")
        intrinsics = _intrinsics(loaded.manifest)
        image_intrinsics = _intrinsics(loaded.manifest, "image_intrinsics")
        if options.data is not None:  # the map moved: take its files from the dataset given
            dataset = open_dataset(options.data, options.image_root)
            files = MapFiles.of(dataset)
            if dataset.intrinsics:
                intrinsics, image_intrinsics = dict(dataset.intrinsics), dict(dataset.image_intrinsics)
        scene = load_scene(files, intrinsics)
        return cls(PoseRefiner(scene, options.refine), intrinsics, files.image_root, image_intrinsics)

    def retrieved(self, table, image: int) -> RetrievedImage:
        """Database image ``image`` of ``table`` with its own calibration, else its camera's."""
        name = table.image_names[image]
        intrinsics = self.image_intrinsics.get(name) or self.intrinsics.get(table.cameras[table.image_cameras[image]])
        return RetrievedImage(name, self.image_root / name, table.pose(image), intrinsics)


def _refine_all(items, image_ids, fallback: dict[int, Pose], table, scene_map: _MapForRefinement,
                progress: bool) -> dict[int, RefineResult]:
    intrinsics = scene_map.intrinsics
    single = next(iter(intrinsics.values())) if len(intrinsics) == 1 else None
    results: dict[int, RefineResult] = {}
    for row in tqdm(sorted(fallback), desc="pnp refinement", unit="query", file=sys.stderr,
                    disable=not progress or None, leave=False):
        retrieved = [scene_map.retrieved(table, int(i)) for i in image_ids[row] if i >= 0 and table.has_pose(int(i))]
        query = items[row]
        results[row] = scene_map.refiner.refine(query.path, intrinsics.get(query.camera, single), retrieved,
                                                fallback[row])
    return results


class Localizer:
    """An index with its descriptor model (and, for ``pnp``, the map's structure) loaded once, to
    localize query batches one after another (a demo, a service); ``localize()`` is one call of it."""

    def __init__(self, index: str | Path, options: QueryOptions | None = None):
        self.options = options or QueryOptions()
        self.index = load_index(index)
        self.device = self.options.device
        self.descriptor = _query_descriptor(self.index, self.options.model, self.device)
        check_descriptor(self.index.manifest, self.descriptor.describe_identity(), self.index.path)
        if self.options.translate_queries is not None:   # queries into the map's appearance, then described
            self.descriptor = translating_descriptor(self.descriptor, self.options.translate_queries, self.device)
        self._map: _MapForRefinement | None = None

    def localize(self, queries, out: str | Path | None = None) -> LocalizationResults:
        """``queries``: ``--images`` inputs, QueryItems or a dataset; ``out``: folder for the result files,
        locked while this runs (``output_lock``); its files are replaced together at the end (``output_set``)."""
        if out is None:
            return self._localize(queries, None)
        with output_lock(out, "query"):
            return self._localize(queries, Path(out))

    def _localize(self, queries, out: Path | None) -> LocalizationResults:
        options, loaded = self.options, self.index
        named = _named_folders(loaded.path, queries, options)
        items = _query_items(queries, options, loaded.manifest, loaded.table.cameras, named)
        if not items:
            raise MduitError("the query list is empty")
        if out is not None:  # before any work: names the result files cannot hold
            check_token_names([item.name for item in items], "query image")
            check_token_names(loaded.table.image_names, "database image", f"{loaded.path}: ")
        _check_pose_method(options.pose, loaded)
        if options.pose == "pnp" and self._map is None:
            self._map = _MapForRefinement.load(loaded, options, named)
        what = "translating and describing queries" if options.translate_queries else "describing queries"
        vectors, ok, failed = compute_descriptors(self.descriptor, [item.path for item in items], options.extract,
                                                  desc=what)
        if failed:
            log.warning("%d query image(s) could not be read and were skipped: %s", len(failed),
                        ", ".join(str(f.path) for f in failed[:5]))
        items = [item for item, good in zip(items, ok) if good]
        if not items:
            raise MduitError("none of the query images could be read")
        attributes = _attributes(items, loaded, options)
        found = search(loaded, vectors[ok], options.search, attributes, self.device)

        method = "top1" if options.pose == "pnp" else options.pose
        row_poses = estimate_poses(found.image_ids, found.scores, loaded.table, method, options.pose_top_k,
                                   options.alpha)
        refinement: dict[str, RefineResult] = {}
        if options.pose == "pnp":
            assert self._map is not None
            refined = _refine_all(items, found.image_ids, row_poses, loaded.table, self._map, options.extract.progress)
            row_poses = {row: result.pose for row, result in refined.items()}
            refinement = {items[row].name: result for row, result in refined.items()}
        results = _collect(items, found, row_poses, loaded, options.pose, refinement, failed)
        if out is not None:
            write_results(out, results, _summary(results, loaded, options))
        return results


def localize(index: str | Path, queries, options: QueryOptions | None = None,
             out: str | Path | None = None) -> LocalizationResults:
    """Localize ``queries`` (``--images`` inputs, QueryItems or a dataset) against ``index``."""
    return Localizer(index, options).localize(queries, out)


def _collect(items, found, row_poses, loaded, pose_method, refinement, failed) -> LocalizationResults:
    table = loaded.table
    results = LocalizationResults(items, {}, {}, {}, {}, {}, pose_method, refinement, failed)
    for row, item in enumerate(items):
        valid = found.image_ids[row] >= 0
        ids = found.image_ids[row][valid]
        results.pairs[item.name] = [table.image_names[i] for i in ids]
        results.scores[item.name] = [float(s) for s in found.scores[row][valid]]
        results.appearances[item.name] = [table.appearances[a] for a in found.appearance_ids[row][valid]]
        results.db_cameras[item.name] = [table.cameras[table.image_cameras[i]] for i in ids]
        if row in row_poses:
            results.poses[item.name] = row_poses[row]
        else:
            results.no_pose[item.name] = NO_DB_POSE if len(ids) else NO_RESULTS
    unmatched = [name for name, reason in results.no_pose.items() if reason == NO_RESULTS]
    if unmatched:
        log.warning("%d queries got no database image (masks too strict?) and have no pose: %s",
                    len(unmatched), ", ".join(unmatched[:5]))
    pairs_only = len(results.no_pose) - len(unmatched)
    if pairs_only and table.num_posed:  # on a map without any pose this is what was asked for
        log.warning("%d queries have pairs but no pose: their retrieved database images have none", pairs_only)
    return results


def _check_pose_method(method: str, loaded: LoadedIndex) -> None:
    """Poses averaged or refined need database poses: a map without any gives pairs and scores only."""
    if method != "top1" and loaded.table.num_posed == 0:
        raise MduitError(f"--pose {method} needs database poses, but the index {loaded.path} was built from images "
                         "without poses (a folder or list of images): it gives ranked pairs and scores. Query "
                         "without --pose, or index a map with poses (a COLMAP model, a RobotCar Seasons folder)")


def _summary(results: LocalizationResults, loaded: LoadedIndex, options: QueryOptions) -> dict:
    refined = sum(1 for r in results.refinement.values() if r.refined)
    return {"index": str(loaded.path.resolve()), "descriptor": loaded.manifest["descriptor"],
            "index_type": loaded.type, "options": {**asdict(options), "device": str(options.device)},
            "counts": {"queries": len(results.queries), "with_pose": len(results.poses),
                       "without_pose": len(results.no_pose), "failed_images": len(results.failed),
                       "pnp_refined": refined, "database_images": loaded.table.num_images,
                       "database_images_with_pose": loaded.table.num_posed},
            "without_pose": dict(Counter(results.no_pose.values()))}

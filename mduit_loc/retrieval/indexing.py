"""``build_index``: describe a map's database images (optionally translated) and save a FAISS index.

See ``mduit_loc.retrieval.faiss_index`` for the layout of the index directory. Re-running on the same
output resumes: descriptors already in ``descriptors.h5`` / ``translations.h5`` are reused when they
were computed by the same model (and translator and appearances), unless ``overwrite``. The new
files are staged and replace the old ones as a set at the end; a killed build loses only its own work.

Under torchrun (``build_index(..., context=...)``, ``torchrun -m mduit_loc.cli index ...``), the
database descriptors are computed sharded over the ranks (``extract.describe_sharded``: each rank
describes a share of the batches, rank 0 writes them); rank 0 alone holds the output's lock and does
the rest (translated variants, the FAISS index, the commit). The index equals a single process's.
Only rank 0 touches the output folder: the other ranks need to see the map's images, nothing else.
"""
from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path

import numpy as np

from mduit_loc.datasets.image_collection import open_map
from mduit_loc.datasets.map_files import MapFiles
from mduit_loc.datasets.types import LocalizationDataset
from mduit_loc.errors import MduitError
from mduit_loc.io_utils import atomic_open
from mduit_loc.output_lock import output_lock
from mduit_loc.output_set import OutputSet, staged_outputs
from mduit_loc.pose_files import check_token_names
from mduit_loc.retrieval import faiss_index, h5_io
from mduit_loc.retrieval.db_table import ORIGINAL, DatabaseTable
from mduit_loc.retrieval.descriptor_models import load_descriptor, load_translator
from mduit_loc.retrieval.extract import FailedImage, extract_to_h5
from mduit_loc.retrieval.options import IndexOptions
from mduit_loc.retrieval.translated_db import choose_appearances, translate_database, write_appearances
from mduit_loc.translation.distributed import DistContext, rank_device

log = logging.getLogger(__name__)


def open_database(db: str | Path | LocalizationDataset, image_root: str | None = None) -> LocalizationDataset:
    """The map to index (``image_collection.open_map``): a dataset with poses, or plain images without."""
    dataset = db if isinstance(db, LocalizationDataset) else open_map(db, image_root)
    if not dataset.database:
        raise MduitError(f"{dataset.root}: the database is empty — no map images (a {dataset.kind} dataset); "
                         "give a RobotCar Seasons folder, a COLMAP model, a folder of images or an image list")
    return dataset


def _write_failed(path: Path, failed: list[FailedImage]) -> None:
    if not failed:
        return   # not staged: the commit removes an earlier run's list
    with atomic_open(path, "w", encoding="utf-8") as handle:
        for failure in failed:
            handle.write(f"{failure.path}\t{failure.reason}\n")
    log.warning("%d database image(s) could not be read and were left out; see %s", len(failed),
                path.parent.parent / path.name)


def _translated_vectors(dataset, descriptor, names, paths, staged: OutputSet, options: IndexOptions, device):
    """(appearance names, (M, A, D) vectors of the translated variants, translation manifest)."""
    translator_spec = options.translator or str(descriptor.spec)
    translator = load_translator(translator_spec, device)
    map_conditions = {image.condition for image in dataset.database}
    extract = options.extract
    appearances = choose_appearances(translator, dataset, options.appearances, map_conditions, extract)
    write_appearances(staged.path(faiss_index.APPEARANCES_FILE), appearances, options.appearances)
    saving = options.save_translations
    translations = staged.path(faiss_index.TRANSLATIONS_FILE)
    failed = translate_database(translator, descriptor, appearances, paths, names, translations, extract,
                                staged.path(faiss_index.TRANSLATIONS_DIR) if saving else None,
                                previous_h5=staged.previous(faiss_index.TRANSLATIONS_FILE),
                                previous_images=staged.previous(faiss_index.TRANSLATIONS_DIR) if saving else None)
    if failed:  # the same images were readable a moment ago
        raise MduitError(f"{len(failed)} database image(s) became unreadable while translating: {failed[0].path}")
    per_appearance = [h5_io.read_descriptors(translations, [f"{a.name}/{n}" for n in names])[1] for a in appearances]
    manifest = {"translator": translator_spec, "translator_checksum": str(getattr(translator, "checksum", "")),
                "appearances": [a.name for a in appearances], "options": asdict(options.appearances)}
    return [a.name for a in appearances], np.stack(per_appearance, axis=1), manifest


def _unit(values: np.ndarray) -> np.ndarray:
    """``values`` scaled to unit L2 norm along the last axis (zero vectors stay zero)."""
    return values / np.maximum(np.linalg.norm(values, axis=-1, keepdims=True), 1e-12)


def fuse_variants(originals: np.ndarray, translated: np.ndarray, weight: float) -> np.ndarray:
    """One unit vector per image: ``(1 - weight) * original + weight * mean of its translated copies``
    ((M, D) originals, (M, A, D) copies), each input normalised first so that every copy counts alike."""
    fused = (1.0 - weight) * _unit(originals.astype(np.float64)) + weight * _unit(translated.astype(np.float64)).mean(1)
    return _unit(fused).astype(np.float32)


def build_index(db: str | Path | LocalizationDataset, model: str | Path, out: str | Path,
                options: IndexOptions | None = None, context: DistContext | None = None) -> Path:
    """Index the database of ``db`` described by ``model``; returns the index directory ``out``.

    ``out`` is locked for the build (``output_lock``) and its files are replaced as one set at the end
    (``output_set``): a build that fails or is killed leaves the previous index as it was. With a
    ``context`` of several processes every rank calls this; the descriptors are computed sharded and
    rank 0 writes the index (the other ranks return once the descriptors are written).
    """
    options = options or IndexOptions()
    out = Path(out)
    if context is not None and context.enabled:
        return _build_index_sharded(db, model, out, options, context)
    with output_lock(out, "index"):
        dataset = open_database(db, options.image_root)
        names = [image.name for image in dataset.database]
        check_token_names(names, "database image", f"{dataset.root}: ")
        descriptor = load_descriptor(model, options.device)
        with staged_outputs(out, faiss_index.MEMBERS) as staged:
            _build(dataset, descriptor, staged, options)
    return out


def _build_index_sharded(db: str | Path | LocalizationDataset, model: str | Path, out: Path,
                         options: IndexOptions, context: DistContext) -> Path:
    """``build_index`` over several ranks: rank 0 stages and writes, every rank describes its share."""
    dataset = open_database(db, options.image_root)
    names = [image.name for image in dataset.database]
    check_token_names(names, "database image", f"{dataset.root}: ")
    descriptor = load_descriptor(model, rank_device(context, options.device))
    if context.is_main:
        started = False
        try:
            with output_lock(out, "index"), staged_outputs(out, faiss_index.MEMBERS) as staged:
                context.all_gather_object(str(staged.path(faiss_index.DESCRIPTORS_FILE)))   # the others may start
                started = True
                _build(dataset, descriptor, staged, options, context)
        except BaseException:
            if not started:
                context.all_gather_object(None)   # the others stop instead of waiting
            raise
        return out
    target = context.all_gather_object(None)[0]
    if target is None:
        raise MduitError(f"rank 0 could not start building the index in {out} (see its error)")
    paths = [dataset.image_path(name) for name in names]
    extract_to_h5(descriptor, paths, names, target, options.extract, desc="describing database",
                  on_mismatch="replace", previous=out / faiss_index.DESCRIPTORS_FILE, context=context)
    return out


def _build(dataset: LocalizationDataset, descriptor, staged: OutputSet, options: IndexOptions,
           context: DistContext | None = None) -> None:
    names = [image.name for image in dataset.database]
    paths = [dataset.image_path(name) for name in names]
    report = extract_to_h5(descriptor, paths, names, staged.path(faiss_index.DESCRIPTORS_FILE), options.extract,
                           desc="describing database", on_mismatch="replace",
                           previous=staged.previous(faiss_index.DESCRIPTORS_FILE), context=context)
    failed_paths = {Path(f.path) for f in report.failed}
    kept = [i for i, path in enumerate(paths) if Path(path) not in failed_paths]
    _write_failed(staged.path(faiss_index.FAILED_FILE), report.failed)
    if not kept:
        raise MduitError(f"none of the {len(names)} database images could be read")
    images = [dataset.database[i] for i in kept]
    names = [names[i] for i in kept]
    paths = [paths[i] for i in kept]
    _, originals = h5_io.read_descriptors(staged.path(faiss_index.DESCRIPTORS_FILE), names)

    appearance_names, vectors, translation = [ORIGINAL], originals[:, None, :], None
    if options.translate_db:
        translated_names, translated, translation = _translated_vectors(dataset, descriptor, names, paths, staged,
                                                                        options, options.device)
        if options.fuse_translations is None:
            appearance_names += translated_names
            vectors = np.concatenate([vectors, translated], axis=1)
        else:
            vectors = fuse_variants(originals, translated, options.fuse_translations)[:, None, :]
            translation["fused_weight"] = options.fuse_translations
    # Image-major order: the A variants of database image i are vectors i*A ... i*A + A - 1.
    vectors = _unit(np.ascontiguousarray(vectors.reshape(-1, descriptor.dim), dtype=np.float32))  # fp16 drifts

    table = DatabaseTable.build(names, [i.camera for i in images], [i.location for i in images],
                                [i.pose for i in images], appearance_names)
    params = faiss_index.resolve_params(options.params, len(vectors), descriptor.dim)
    index = faiss_index.build_faiss_index(vectors, params, use_gpu=options.device.type == "cuda")
    intrinsics = {camera: asdict(k) for camera, k in dataset.intrinsics.items()}
    manifest = faiss_index.make_manifest(descriptor.describe_identity(), params, table,
                                         MapFiles.of(dataset).to_record(), intrinsics, translation,
                                         len(report.failed))
    if dataset.image_intrinsics:  # a COLMAP map with several calibrations per camera: PnP needs each image's
        manifest["image_intrinsics"] = {name: asdict(dataset.image_intrinsics[name]) for name in names
                                        if name in dataset.image_intrinsics}
    faiss_index.save_index(staged.staging, index, table, manifest)

"""The paper's augmentation: translate every database image into target appearances and index each
variant as its own vector.

Target appearances come from training images (never from test ground truth), chosen by
``AppearanceOptions.strategy``:
- ``exemplars`` (default): ``per_condition`` randomly chosen images (seeded) of every appearance
  condition other than the map's own (e.g. one night, one snow, ... image on RobotCar Seasons);
  the appearance is that image's MDUIT appearance filter. Named ``<condition>-<i>``.
- ``clusters``: appearance filters of up to ``sample_per_condition`` images per condition, clustered
  by k-means into ``num_clusters`` centres; each centre is an appearance. Named ``cluster-<j>``.
- ``domain-means``: the mean appearance filter of each training domain, saved with the MDUIT run
  (``MDUIT.domain_filters()``); no images are read. Named ``<condition>-mean``.
Exemplars are the default because an exemplar's filter is a real, observed appearance, whereas an
average of filters need not be one.
The source images default to the database dataset's training images (database + queries of the
``train`` split; the unlabelled test queries when there is no train split — only their appearance is
used); ``appearance_data`` points at another dataset (e.g. a folder per domain).

Translated descriptors go to ``INDEX/translations.h5`` under ``<appearance>/<image>``; with
``save_images`` the translated images are written to ``INDEX/translations/<appearance>/<image>``.
"""
from __future__ import annotations

import json
import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from mduit_loc.datasets import open_dataset
from mduit_loc.datasets.images import save_image, to_uint8
from mduit_loc.errors import MduitError
from mduit_loc.io_utils import atomic_path, link_or_copy, link_tree, write_json_atomic
from mduit_loc.retrieval import h5_io
from mduit_loc.retrieval.extract import ExtractOptions, FailedImage, iter_image_batches
from mduit_loc.runtime import autocast

log = logging.getLogger(__name__)
STRATEGIES = ("exemplars", "clusters", "domain-means")


@dataclass(kw_only=True)
class AppearanceOptions:
    strategy: str = "exemplars"
    per_condition: int = 1           # exemplars per condition
    num_clusters: int = 8            # k-means centres (strategy 'clusters')
    sample_per_condition: int = 64   # images per condition fed to k-means
    conditions: list[str] | None = None  # default: every condition but the map's own
    appearance_data: str | None = None   # dataset to take the images from (default: the database's)
    seed: int = 0

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise MduitError(f"--appearances must be one of {', '.join(STRATEGIES)}, got {self.strategy!r}")
        if self.per_condition < 1 or self.num_clusters < 1:
            raise MduitError("--per-condition and --num-clusters must be >= 1")


@dataclass
class TargetAppearance:
    name: str
    condition: str | None
    sources: list[str]
    filters: torch.Tensor            # (1, ...) appearance filter, on the translator's device

    def describe(self) -> dict:
        return {"name": self.name, "condition": self.condition, "sources": self.sources,
                "filter_shape": list(self.filters.shape[1:])}


def _appearance_images(dataset, options: AppearanceOptions, map_conditions: set[str]):
    """{condition: [(name, path)]} of candidate source images, sorted by name."""
    by_condition = _images_by_condition(dataset.training_images(include_test_queries=False), options,
                                         map_conditions)
    if not by_condition and any(q.split == "test" for q in dataset.queries):
        # Only the appearance of these images is used (never a pose), as in MDUIT's unsupervised training.
        log.warning("no training-split images of other appearances; taking appearance exemplars from the "
                    "unlabelled test queries")
        by_condition = _images_by_condition(dataset.training_images(include_test_queries=True), options,
                                             map_conditions)
    if not by_condition:
        raise MduitError(f"{dataset.root}: no training images of another appearance than the map's "
                         f"({', '.join(sorted(map_conditions))}) to translate the database into; "
                         "pass --appearance-data DIR (e.g. a folder per domain)")
    return {c: sorted(v) for c, v in sorted(by_condition.items())}


def _images_by_condition(images, options: AppearanceOptions, map_conditions: set[str]) -> dict[str, list]:
    by_condition: dict[str, list] = {}
    for image in images:
        if image.domain in map_conditions and options.conditions is None:
            continue
        if options.conditions is not None and image.domain not in options.conditions:
            continue
        by_condition.setdefault(image.domain, []).append((image.name, image.path))
    return by_condition


def _device_of(module) -> torch.device:
    parameter = next(iter(module.parameters()), None) if hasattr(module, "parameters") else None
    return parameter.device if parameter is not None else torch.device("cpu")


def _filters_of(translator, paths: Sequence[Path], extract: ExtractOptions) -> torch.Tensor:
    failed: list[FailedImage] = []
    chunks = []
    device = _device_of(translator)
    with torch.inference_mode():
        for images, _ in iter_image_batches(list(paths), tuple(translator.image_size), extract, failed,
                                            desc="appearance filters"):
            chunks.append(translator.appearance_filters(images.to(device)).float())
    if not chunks:
        raise MduitError(f"none of the {len(paths)} appearance source images could be read")
    return torch.cat(chunks)


def _kmeans(points: torch.Tensor, clusters: int, seed: int, iterations: int = 25) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain Lloyd k-means on (N, F) rows: (centres (C, F), assignment (N,))."""
    generator = torch.Generator().manual_seed(seed)
    centres = points[torch.randperm(len(points), generator=generator)[:clusters].to(points.device)].clone()
    for _ in range(iterations):
        assignment = torch.cdist(points, centres).argmin(dim=1)
        for index in range(len(centres)):
            members = points[assignment == index]
            if len(members):
                centres[index] = members.mean(dim=0)
    return centres, torch.cdist(points, centres).argmin(dim=1)


def _domain_means(translator, options: AppearanceOptions, map_conditions: set[str]) -> list[TargetAppearance]:
    if not hasattr(translator, "domain_filters"):
        raise MduitError("--appearances domain-means needs an MDUIT run that saved per-domain filters")
    filters = translator.domain_filters()
    wanted = options.conditions if options.conditions is not None else [d for d in filters if d not in map_conditions]
    missing = [d for d in wanted if d not in filters]
    if missing or not wanted:
        raise MduitError("--appearances domain-means: the model has filters for "
                         f"{', '.join(sorted(filters)) or 'no domain'}; "
                         f"missing {', '.join(missing) or 'any domain other than the map'}")
    exemplars = getattr(translator, "domain_exemplars", {})
    return [TargetAppearance(f"{d}-mean", d, list(exemplars.get(d, [])), filters[d]) for d in sorted(wanted)]


def choose_appearances(translator, dataset, options: AppearanceOptions, map_conditions: set[str],
                       extract: ExtractOptions | None = None) -> list[TargetAppearance]:
    extract = extract or ExtractOptions(progress=False)
    if options.strategy == "domain-means":
        return _domain_means(translator, options, map_conditions)
    if options.appearance_data is not None:
        dataset = open_dataset(options.appearance_data)
    candidates = _appearance_images(dataset, options, map_conditions)
    rng = np.random.default_rng(options.seed)
    if options.strategy == "exemplars":
        appearances = []
        for condition, items in candidates.items():
            chosen = sorted(rng.choice(len(items), min(options.per_condition, len(items)), replace=False))
            filters = _filters_of(translator, [items[i][1] for i in chosen], extract)
            for number, (row, index) in enumerate(zip(filters, chosen)):
                appearances.append(TargetAppearance(f"{condition}-{number}", condition, [items[index][0]], row[None]))
        return appearances
    sampled, conditions = [], []
    for condition, items in candidates.items():
        chosen = sorted(rng.choice(len(items), min(options.sample_per_condition, len(items)), replace=False))
        sampled += [items[i] for i in chosen]
        conditions += [condition] * len(chosen)
    filters = _filters_of(translator, [path for _, path in sampled], extract)
    clusters = min(options.num_clusters, len(filters))
    centres, assignment = _kmeans(filters.flatten(1), clusters, options.seed)
    appearances = []
    for index in range(clusters):
        members = np.flatnonzero(assignment.cpu().numpy() == index)
        names = [sampled[i][0] for i in members]
        member_conditions = [conditions[i] for i in members]
        majority = max(set(member_conditions), key=member_conditions.count) if len(members) else None
        appearances.append(TargetAppearance(f"cluster-{index}", majority, names,
                                            centres[index].reshape(1, *filters.shape[1:])))
    return appearances


def write_appearances(path: Path, appearances: list[TargetAppearance], options: AppearanceOptions) -> None:
    write_json_atomic(path, {"options": asdict(options), "appearances": [a.describe() for a in appearances]})


def _fingerprint(translator_checksum: str, appearances: list[TargetAppearance], descriptor_checksum: str) -> str:
    return json.dumps({"translator": translator_checksum, "descriptor": descriptor_checksum,
                       "appearances": [[a.name, a.sources] for a in appearances]}, sort_keys=True)


def _saved(folder: Path | None, appearance: str, name: str) -> bool:
    """The translated image is on disk, or none is asked for (``folder`` None)."""
    return folder is None or (folder / appearance / name).is_file()


def translate_database(translator, descriptor, appearances: list[TargetAppearance], paths: Sequence[Path],
                       names: Sequence[str], out_h5: Path, extract: ExtractOptions,
                       save_dir: Path | None = None, previous_h5: Path | None = None,
                       previous_images: Path | None = None) -> list[FailedImage]:
    """Describe every (image, appearance) translation into ``out_h5``; resumes unless settings changed.

    What ``previous_h5`` (default: ``out_h5``) and ``previous_images`` (default: ``save_dir``) already
    hold from a run with the same translator, descriptor and appearances is reused (an index passes
    its committed files while it writes into a staging folder).
    """
    fingerprint = _fingerprint(str(getattr(translator, "checksum", "")), appearances, descriptor.checksum)
    previous_h5 = out_h5 if previous_h5 is None else previous_h5
    previous_images = save_dir if previous_images is None else previous_images
    todo = list(range(len(names)))
    existing = previous_h5.is_file() and not extract.overwrite
    if existing:
        with h5_io.open_h5(previous_h5) as handle:
            if handle.attrs.get("fingerprint") != fingerprint:
                existing = False  # other translator, appearances or descriptor: start afresh
            else:
                todo = [i for i in todo if not all(h5_io.has_descriptor(handle, f"{a.name}/{names[i]}")
                                                   and _saved(previous_images, a.name, names[i]) for a in appearances)]
    if existing and save_dir is not None and previous_images is not None and previous_images.is_dir() \
            and previous_images != save_dir:
        link_tree(previous_images, save_dir)
    failed: list[FailedImage] = []
    if not todo and previous_h5 == out_h5:
        return failed
    if not todo:
        link_or_copy(previous_h5, out_h5)
        return failed
    device = _device_of(translator)
    with atomic_path(out_h5) as tmp:
        if existing:
            shutil.copyfile(previous_h5, tmp)
        with h5_io.open_h5(tmp, "a" if existing else "w") as handle:
            handle.attrs["fingerprint"] = fingerprint
            batches = iter_image_batches([Path(paths[i]) for i in todo], tuple(translator.image_size), extract,
                                         failed, desc="translating database")
            for images, indices in batches:
                batch_names = [names[todo[i]] for i in indices]
                images = images.to(device)
                for appearance in appearances:
                    with torch.inference_mode(), autocast(device):   # bf16 on CUDA, as the descriptors
                        filters = appearance.filters.expand(len(images), *appearance.filters.shape[1:])
                        translated = translator.translate(images, filters).float().clamp(0, 1)
                    if save_dir is not None:
                        for name, image in zip(batch_names, to_uint8(translated)):
                            save_image(save_dir / appearance.name / name, image)
                    if tuple(translated.shape[-2:]) != tuple(descriptor.image_size):
                        translated = F.interpolate(translated, size=tuple(descriptor.image_size),
                                                   mode="bilinear", align_corners=False, antialias=True)
                    vectors = descriptor(translated).cpu().numpy()
                    h5_io.write_descriptors(handle, [f"{appearance.name}/{n}" for n in batch_names], vectors,
                                            fp16=extract.fp16, overwrite=True)
    return failed

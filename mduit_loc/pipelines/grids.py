"""Translation grids for reports: night -> day and day -> night (``translation.api.translate_images``).

Columns are target conditions, each given to the model as its domain-mean appearance filter W (no
exemplar choice), named on top. Rows are source images of the other side, spread over the route
(rear camera where possible), labelled with their condition. With an aligned set (a synthetic
benchmark) the sources are aligned poses and the true renderings of the targets at each pose are
shown under each source, so a reader can compare translation and truth; otherwise the sources are
dataset images. The grid is written by the translation package (``translation.grid``).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from mduit_loc.datasets import open_dataset
from mduit_loc.datasets.aligned import AlignedSet, has_aligned_set, read_aligned_set
from mduit_loc.datasets.layout import NIGHT_CONDITIONS, REFERENCE_CONDITION
from mduit_loc.datasets.types import LocalizationDataset
from mduit_loc.evaluation.translation_quality_outputs import SUMMARY_JSON, read_quality_summary, translation_quality
from mduit_loc.evaluation.translation_quality_run import QualityOptions, QualityResult
from mduit_loc.translation.api import translate_images
from mduit_loc.translation.grid import GridOptions
from mduit_loc.translation.translate import DOMAIN_PREFIX

DAY_TARGETS = (REFERENCE_CONDITION, "sun", "snow", "overcast-winter")
NIGHT_TARGETS = ("night", "night-rain")


@dataclass(frozen=True, kw_only=True)
class GridSpec:
    key: str                        # file stem: "night_to_day"
    title: str
    source_conditions: tuple[str, ...]   # the sources cycle through these
    target_conditions: tuple[str, ...]   # one column each (the domain-mean filter W)
    sources: int = 3


GRIDS = (
    GridSpec(key="night_to_day", title="night -> day", source_conditions=tuple(sorted(NIGHT_CONDITIONS)),
             target_conditions=DAY_TARGETS, sources=3),
    GridSpec(key="day_to_night", title="day -> night", source_conditions=(REFERENCE_CONDITION, "sun", "snow"),
             target_conditions=NIGHT_TARGETS, sources=3),
)


def _images_of(dataset: LocalizationDataset, conditions: Sequence[str],
               camera: str = "rear") -> list[tuple[str, int | None]]:
    """(name, location) of the images of ``conditions`` (database or queries), sorted by name."""
    found = [(d.name, d.location) for d in dataset.database if d.condition in conditions and d.camera == camera]
    found += [(q.name, q.location) for q in dataset.queries if q.condition in conditions and q.camera == camera]
    return sorted(found)


def spread_pick(items: Sequence[tuple[str, int | None]], count: int, offset: int = 0) -> list[str]:
    """``count`` names from evenly spaced locations (the middle image of each), topped up evenly."""
    if count <= 0 or not items:
        return []
    by_location: dict[int | None, list[str]] = {}
    for name, location in items:
        by_location.setdefault(location, []).append(name)
    locations = sorted(by_location, key=lambda loc: -1 if loc is None else loc)
    spaced = dict.fromkeys(locations[(offset + (i * len(locations)) // count) % len(locations)]
                           for i in range(min(count, len(locations))))
    picked = [by_location[location][len(by_location[location]) // 2] for location in spaced]
    names = [name for name, _ in items if name not in picked]
    wanted = count - len(picked)
    picked += [names[(i * len(names)) // max(1, wanted)] for i in range(min(len(names), wanted))]
    return picked[:count]


def _aligned_sources(aligned: AlignedSet, spec: GridSpec, offset: int) -> tuple[list[Path], list[list[Path]]]:
    """Sources at evenly spaced aligned poses (rear camera where there is one), cycling through the source
    conditions, and the true rendering of every target at each source's pose."""
    poses = [p for p in aligned.poses if p.camera == "rear"] or aligned.poses
    count = min(spec.sources, len(poses))
    picked = [poses[(offset + (i * len(poses)) // count) % len(poses)] for i in range(count)]
    conditions = [c for c in spec.source_conditions if c in aligned.conditions]
    sources = [pose.images[conditions[i % len(conditions)]] for i, pose in enumerate(picked)] if conditions else []
    return sources, [[pose.images[target] for target in spec.target_conditions] for pose in picked]


def translation_grids(data: Path, model_run: Path, out_dir: Path, device: torch.device,
                      specs: Sequence[GridSpec] = GRIDS, grid: GridOptions | None = None) -> dict[str, Path]:
    """Write ``out_dir/<key>/grid.png`` per spec (skipped when present); returns key -> grid path."""
    dataset = open_dataset(data)
    aligned = read_aligned_set(data) if has_aligned_set(data) else None
    grids: dict[str, Path] = {}
    for number, spec in enumerate(specs):
        folder = Path(out_dir) / spec.key
        path = folder / "grid.png"
        if not path.is_file():
            targets = tuple(c for c in spec.target_conditions if c in dataset.conditions)
            truth: list[list[Path]] | None = None
            if aligned is not None and set(targets) <= set(aligned.conditions):
                sources, truth = _aligned_sources(aligned, dataclasses.replace(spec, target_conditions=targets),
                                                  offset=number)
            else:
                names = spread_pick(_images_of(dataset, spec.source_conditions), spec.sources)
                sources = [dataset.image_path(n) for n in names]
            if not sources or not targets:
                continue  # the dataset lacks one side (e.g. no night images): no grid
            written = translate_images(model_run, sources, [f"{DOMAIN_PREFIX}{c}" for c in targets], folder,
                                       device=device, truth=truth, grid=grid)
            print(f"{written.translations} translations ({written.sources} sources x {written.appearances} "
                  f"target conditions) in {folder}; grid: {written.grid}")
        grids[spec.key] = path
    return grids


# Aligned poses the demo measures: half of the tiny benchmark's 24, so the other database images give
# overcast-reference's colour statistics (the aligned poses are left out of them), and it stays quick.
DEMO_QUALITY_POSES = 12


def quality_done(out: Path) -> bool:
    return (Path(out) / SUMMARY_JSON).is_file()


def translation_quality_tables(data: Path, model_run: Path, out: Path, device: torch.device,
                               progress: bool = True) -> QualityResult | None:
    """``translation_quality`` of the run on the aligned set of ``data`` into ``out`` (read back when done
    before); None when ``data`` has no aligned set."""
    if quality_done(out):
        return read_quality_summary(Path(out) / SUMMARY_JSON)
    if not has_aligned_set(data):
        return None
    aligned_poses = len(read_aligned_set(data).poses)
    options = QualityOptions(max_poses=max(2, min(DEMO_QUALITY_POSES, aligned_poses // 2)), progress=progress)
    return translation_quality(model_run, data, out, options, device).result

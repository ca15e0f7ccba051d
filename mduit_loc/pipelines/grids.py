"""Translation grids for reports: night -> day and day -> night (``translation.api.translate_images``).

Sources are images of one condition spread over the route (one per location where possible, rear
camera); target appearances are images of the other conditions. The grid (rows: sources, columns:
appearances, like the paper's Fig. 3) is written by the translation package.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from mduit_loc.datasets import open_dataset
from mduit_loc.datasets.layout import NIGHT_CONDITIONS, REFERENCE_CONDITION
from mduit_loc.datasets.types import LocalizationDataset
from mduit_loc.translation.api import translate_images

DAY_TARGETS = (REFERENCE_CONDITION, "sun", "snow", "overcast-winter")
NIGHT_TARGETS = ("night", "night-rain")


@dataclass(frozen=True, kw_only=True)
class GridSpec:
    key: str                        # file stem: "night_to_day"
    title: str
    source_conditions: tuple[str, ...]
    target_conditions: tuple[str, ...]
    sources: int = 3
    targets_per_condition: int = 1


GRIDS = (
    GridSpec(key="night_to_day", title="night -> day", source_conditions=tuple(sorted(NIGHT_CONDITIONS)),
             target_conditions=DAY_TARGETS, sources=3, targets_per_condition=1),
    GridSpec(key="day_to_night", title="day -> night", source_conditions=(REFERENCE_CONDITION,),
             target_conditions=NIGHT_TARGETS, sources=3, targets_per_condition=2),
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


def translation_grids(data: Path, model_run: Path, out_dir: Path, device: torch.device,
                      specs: Sequence[GridSpec] = GRIDS) -> dict[str, Path]:
    """Write ``out_dir/<key>/grid.png`` per spec (skipped when present); returns key -> grid path."""
    dataset = open_dataset(data)
    grids: dict[str, Path] = {}
    for spec in specs:
        folder = Path(out_dir) / spec.key
        grid = folder / "grid.png"
        if not grid.is_file():
            sources = spread_pick(_images_of(dataset, spec.source_conditions), spec.sources)
            targets = [name for condition in spec.target_conditions
                       for name in spread_pick(_images_of(dataset, (condition,)), spec.targets_per_condition,
                                               offset=1)]
            if not sources or not targets:
                continue  # the dataset lacks one side (e.g. no night images): no grid
            written = translate_images(model_run, [dataset.image_path(n) for n in sources],
                                       [dataset.image_path(n) for n in targets], folder, device=device)
            print(f"{written.translations} translations ({written.sources} sources x {written.appearances} "
                  f"appearances) in {folder}; grid: {written.grid}")
        grids[spec.key] = grid
    return grids

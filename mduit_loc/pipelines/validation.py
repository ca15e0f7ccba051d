"""A validation split of a RobotCar Seasons layout and a fast in-memory recall, for learning curves.

The test split's ground truth is what the published tables report, so choosing settings on it would
flatter them. The validation split is carved from the training split instead: every third training
frame (in each condition, by timestamp), with all cameras of that frame. Those images are kept out
of training entirely (``TrainOptions.exclude_images``, NetVLAD's image list) and scored with the
Table 1 protocol: retrieval restricted to the query's camera and location, the pose of the top-1
database image, recall at the RobotCar Seasons thresholds over day and night.

``ValidationSet.recall(describe, image_size)`` describes the database and the validation queries
with any callable (B, 3, H, W) in [0, 1] -> (B, D), in memory (decoded images are cached per size),
so scoring a checkpoint costs one pass over the images, not an index and a query run.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from mduit_loc.datasets import open_dataset
from mduit_loc.datasets.images import ImageListDataset
from mduit_loc.datasets.layout import day_or_night
from mduit_loc.datasets.types import LocalizationDataset
from mduit_loc.errors import MduitError
from mduit_loc.evaluation.metrics import DEFAULT_THRESHOLDS, recalls
from mduit_loc.poses import pose_errors

Describe = Callable[[torch.Tensor], torch.Tensor]


def validation_frames(dataset: LocalizationDataset, every: int = 3) -> set[str]:
    """Names of the validation images: all cameras of every ``every``-th training frame of each
    condition (frames ordered by timestamp)."""
    frames: dict[str, list[str]] = {}
    for query in dataset.queries:
        if query.split == "train":
            frames.setdefault(query.condition, []).append(query.timestamp)
    chosen = {(condition, stamp) for condition, stamps in frames.items()
              for stamp in sorted(set(stamps), key=int)[every - 1::every]}
    return {q.name for q in dataset.queries if (q.condition, q.timestamp) in chosen}


@dataclass
class ValidationSet:
    dataset: LocalizationDataset
    names: list[str]                          # validation query images with a pose (any camera)
    every: int = 3                            # every this-many-th training frame
    _cache: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, data: str | Path, every: int = 3) -> "ValidationSet":
        dataset = open_dataset(data)
        chosen = validation_frames(dataset, every)
        posed = {image.name for image in dataset.training_images(include_test_queries=False)
                 if image.pose is not None}
        names = sorted(chosen & posed)
        if not names:
            raise MduitError(f"{data}: no training frames with poses to validate on")
        return cls(dataset, names, every)

    @property
    def excluded(self) -> frozenset[str]:
        """Every image of the validation frames (whether or not its pose is known): kept out of training."""
        return frozenset(validation_frames(self.dataset, self.every))

    def _images(self, size: tuple[int, int], batch_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
        if size not in self._cache:
            def decode(names: list[str]) -> torch.Tensor:
                paths = [self.dataset.image_path(n) for n in names]
                loader = DataLoader(ImageListDataset(paths, size), batch_size=batch_size)
                return torch.cat([(images * 255).round().to(torch.uint8) for images, _, _ in loader])
            self._cache[size] = (decode([d.name for d in self.dataset.database]), decode(self.names))
        return self._cache[size]

    def recall(self, describe: Describe, image_size: tuple[int, int], batch_size: int = 64) -> dict[str, list[float]]:
        """{"day": [r1, r2, r3], "night": [...]} in %, at ``DEFAULT_THRESHOLDS``, Table 1 protocol."""
        database_images, query_images = self._images((int(image_size[0]), int(image_size[1])), batch_size)

        def vectors(images: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return torch.cat([F.normalize(describe(images[i:i + batch_size].float() / 255).float(), dim=1)
                                  for i in range(0, len(images), batch_size)])

        similarity = (vectors(query_images) @ vectors(database_images).T).numpy()
        database = self.dataset.database
        queries = self.dataset.training_images(include_test_queries=False)
        by_name = {image.name: image for image in queries}
        cameras = np.array([d.camera for d in database])
        locations = np.array([d.location for d in database])
        query_meta = {q.name: q for q in self.dataset.queries}
        errors: dict[str, list[tuple[float, float]]] = {"day": [], "night": []}
        for row, name in enumerate(self.names):
            meta = query_meta[name]
            allowed = (cameras == meta.camera) & (locations == meta.location)
            scores = np.where(allowed, similarity[row], -np.inf)
            top = database[int(np.argmax(scores))]
            truth = by_name[name].pose
            assert truth is not None and top.pose is not None
            errors[day_or_night(meta.condition)].append(pose_errors(top.pose, truth))
        def percent(values: list[tuple[float, float]]) -> list[float]:
            if not values:
                return [float("nan")] * len(DEFAULT_THRESHOLDS)
            position, rotation = np.array(values).T
            return [100.0 * r for r in recalls(position, rotation, DEFAULT_THRESHOLDS)]

        return {part: percent(values) for part, values in errors.items()}

    def counts(self) -> dict[str, int]:
        meta = {q.name: q for q in self.dataset.queries}
        days = sum(day_or_night(meta[n].condition) == "day" for n in self.names)
        return {"day": days, "night": len(self.names) - days}

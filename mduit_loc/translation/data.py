"""Training data for MDUIT: the image list with domains and poses, decoding, and per-step batches.

Domains are the dataset's conditions (``TrainingImage.domain``). Decoded images are kept in RAM as
uint8 when they fit in ``cache_limit_mb`` (the tiny preset, small datasets); otherwise every step's
images are decoded by DataLoader workers. A step's batch is (B, R, 3, H, W) float in [0, 1] where R
indexes the roles of one sample (see ``pairing``: source, target, target+, target-, negatives).
Global step k of an epoch takes plan rows [k * B * world, (k + 1) * B * world); rank r gets the
r-th slice of B rows, so a data-parallel run sees exactly the samples of a single-process run
with batch B * world.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset

from mduit_loc.datasets import open_dataset
from mduit_loc.datasets.images import ImageListDataset, load_image
from mduit_loc.errors import MduitError
from mduit_loc.translation.config import TranslationConfig
from mduit_loc.translation.places import PlaceTable


@dataclass
class TrainingSet:
    root: Path
    names: list[str]
    paths: list[Path]
    domain_names: list[str]          # sorted; domain_ids index into it
    domain_ids: torch.Tensor         # (N,) int64
    places: PlaceTable | None        # poses and place labels; None when no image has either

    def __len__(self) -> int:
        return len(self.paths)

    def domain_counts(self) -> dict[str, int]:
        counts = torch.bincount(self.domain_ids, minlength=len(self.domain_names)).tolist()
        return dict(zip(self.domain_names, counts))


def load_training_set(data: str | Path, image_root: str | Path | None = None,
                      domains: list[str] | None = None, include_test_queries: bool = True,
                      config: TranslationConfig | None = None, exclude: frozenset[str] = frozenset()) -> TrainingSet:
    """Training images of any dataset ``open_dataset`` reads, optionally restricted to ``domains``.

    Test queries carry no pose; they join training unless ``include_test_queries`` is False (for an
    evaluation that must not have seen the query images, even unlabelled); ``exclude`` names images
    kept out entirely (a validation split). ``config`` gives the
    same-place thresholds (default: 7 m, 8 degrees, place labels compared exactly).
    """
    config = config or TranslationConfig()
    dataset = open_dataset(data, image_root)
    images = sorted((image for image in dataset.training_images(include_test_queries) if image.name not in exclude),
                    key=lambda image: image.name)
    if domains:
        unknown = sorted(set(domains) - {image.domain for image in images})
        if unknown:
            raise MduitError(f"{data}: no training images of domain(s) {unknown}; "
                             f"available: {sorted({image.domain for image in images})}")
        images = [image for image in images if image.domain in set(domains)]
    domain_names = sorted({image.domain for image in images})
    if len(domain_names) < 2:
        raise MduitError(f"{data}: MDUIT needs training images of at least two appearance domains "
                         f"(conditions), found {domain_names or 'none'}")
    index = {name: i for i, name in enumerate(domain_names)}
    poses = [image.pose for image in images]
    labels = [image.place for image in images]
    places = None
    if any(p is not None for p in poses) or any(label is not None for label in labels):
        places = PlaceTable.build(poses, labels, max_distance_m=config.negative_min_distance_m,
                                  max_angle_deg=config.negative_min_angle_deg,
                                  sequence_tolerance=config.place_sequence_tolerance)
    return TrainingSet(Path(data), [image.name for image in images], [Path(image.path) for image in images],
                       domain_names, torch.tensor([index[image.domain] for image in images], dtype=torch.long),
                       places)


class _PlanRowDataset(Dataset):
    """Item i: the uint8 images (R, 3, H, W) of plan row i, decoded in a worker."""

    def __init__(self, paths: list[Path], size: tuple[int, int], rows: torch.Tensor):
        self.paths, self.size, self.rows = paths, size, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, item: int) -> torch.Tensor:
        return torch.stack([torch.from_numpy(load_image(self.paths[j], self.size)).permute(2, 0, 1)
                            for j in self.rows[item].tolist()])


class ImageStore:
    """Decodes training images at the training size; caches them in RAM when they fit."""

    def __init__(self, paths: list[Path], size: tuple[int, int], cache_limit_mb: int, num_workers: int = 0):
        self.paths = list(paths)
        self.size = (size[0], size[1])
        self.num_workers = num_workers
        self.cache: torch.Tensor | None = None
        if len(self.paths) * 3 * self.size[0] * self.size[1] <= cache_limit_mb * 2**20:
            self.cache = self._decode_all()

    def _decode_all(self) -> torch.Tensor:
        cache = torch.empty(len(self.paths), 3, *self.size, dtype=torch.uint8)
        loader = DataLoader(ImageListDataset(self.paths, self.size), batch_size=32, num_workers=self.num_workers)
        for images, indices, _ in loader:
            cache[indices] = images.mul(255).round().to(torch.uint8)
        return cache

    def iter_images(self, indices: torch.Tensor, batch_size: int) -> Iterator[torch.Tensor]:
        """Float (b, 3, H, W) batches of the given image indices, in order."""
        if self.cache is not None:
            for start in range(0, len(indices), batch_size):
                yield self.cache[indices[start:start + batch_size]].float().div_(255)
            return
        paths = [self.paths[i] for i in indices.tolist()]
        loader = DataLoader(ImageListDataset(paths, self.size), batch_size=batch_size, num_workers=self.num_workers)
        for images, _, _ in loader:
            yield images

    def to(self, device: torch.device) -> "ImageStore":
        """Keep the decoded cache on ``device`` (on a GPU: no host-to-device copy per step)."""
        if self.cache is not None:
            self.cache = self.cache.to(device)
        return self

    def iter_steps(self, rows: torch.Tensor, batch_size: int, pin_memory: bool = False,
                   device: torch.device | None = None) -> Iterator[torch.Tensor]:
        """Float (B, R, 3, H, W) batches of consecutive plan ``rows`` (already this rank's), on ``device``
        when given: uint8 travels (pinned, asynchronously), the conversion to float runs there."""
        if self.cache is not None:
            for start in range(0, len(rows), batch_size):
                images = self.cache[rows[start:start + batch_size]]
                yield (images if device is None else images.to(device, non_blocking=True)).float().div_(255)
            return
        loader = DataLoader(_PlanRowDataset(self.paths, self.size, rows), batch_size=batch_size,
                            num_workers=self.num_workers, pin_memory=pin_memory,
                            prefetch_factor=4 if self.num_workers > 0 else None)
        for images in loader:
            yield (images if device is None else images.to(device, non_blocking=True)).float().div_(255)


def steps_per_epoch(num_images: int, batch_size: int, world_size: int) -> int:
    steps = num_images // (batch_size * world_size)
    if steps == 0:
        raise MduitError(f"{num_images} training images are fewer than one global batch "
                         f"({batch_size} x {world_size} processes); lower --batch-size")
    return steps


def rank_rows(plan: torch.Tensor, first_step: int, num_steps: int, batch_size: int, rank: int,
              world_size: int) -> torch.Tensor:
    """This rank's plan rows for steps [first_step, first_step + num_steps) of the epoch, in order."""
    step = torch.arange(first_step, first_step + num_steps)[:, None]
    offsets = (step * world_size + rank) * batch_size + torch.arange(batch_size)[None, :]
    return plan[offsets.flatten()]

"""Data for NetVLAD training: posed images, triplet batches, descriptor caches, k-means, PCA.

All image decoding happens in DataLoader workers; descriptors are computed in batches under
``torch.inference_mode()``.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from mduit_loc.datasets import open_dataset
from mduit_loc.datasets.images import ImageListDataset, load_image, to_tensor
from mduit_loc.datasets.types import TrainingImage
from mduit_loc.errors import MduitError
from mduit_loc.retrieval.netvlad.clustering import kmeans, sample_local_features
from mduit_loc.retrieval.netvlad.model import NetVLADDescriptor
from mduit_loc.runtime import autocast

# Above this many bytes of float32 cache, descriptors are kept as float16 (ranking is unaffected).
_FLOAT32_CACHE_LIMIT = 1 << 30


def load_training_images(data: str | Path) -> list[TrainingImage]:
    """Training images with poses from any dataset ``open_dataset`` reads (test queries excluded)."""
    dataset = open_dataset(data)
    images = [image for image in dataset.training_images(include_test_queries=False) if image.pose is not None]
    if not images:
        raise MduitError(f"{data}: NetVLAD training needs images with poses (a RobotCar Seasons layout or a "
                         "COLMAP map); this dataset has none")
    return images


class TripletDataset(Dataset):
    """Item i: the images of plan row i (anchor, positive, negatives) as (2 + n, 3, H, W) in [0, 1]."""

    def __init__(self, paths: Sequence[Path], plan: np.ndarray, size: tuple[int, int]):
        self.paths = list(paths)
        self.plan = np.asarray(plan, dtype=np.int64)
        self.size = size

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.stack([to_tensor(load_image(self.paths[i], self.size)) for i in self.plan[index]])


def triplet_loader(paths: Sequence[Path], plan: np.ndarray, size: tuple[int, int], batch_size: int,
                   workers: int, pin_memory: bool) -> DataLoader:
    """Batches (B, 2 + n, 3, H, W) in plan order (the plan is already shuffled)."""
    return DataLoader(TripletDataset(paths, plan, size), batch_size=batch_size, shuffle=False,
                      num_workers=workers, pin_memory=pin_memory, persistent_workers=False)


def _image_batches(paths: Sequence[Path], size: tuple[int, int], batch_size: int, workers: int,
                   device: torch.device) -> Iterator[torch.Tensor]:
    loader = DataLoader(ImageListDataset(paths, size), batch_size=batch_size, shuffle=False,
                        num_workers=workers, pin_memory=device.type == "cuda")
    for images, _, _ in loader:
        yield images.to(device, non_blocking=True)


@torch.inference_mode()
def describe_images(model: NetVLADDescriptor, paths: Sequence[Path], size: tuple[int, int], batch_size: int,
                    workers: int, device: torch.device, mixed_precision: bool = True) -> torch.Tensor:
    """(N, dim) descriptors on the CPU (float16 when a float32 cache would exceed 1 GiB)."""
    was_training = model.training
    model.eval()
    dtype = torch.float32 if len(paths) * model.dim * 4 <= _FLOAT32_CACHE_LIMIT else torch.float16
    chunks = []
    for images in _image_batches(paths, size, batch_size, workers, device):
        with autocast(device, mixed_precision):
            chunks.append(model(images).float().to("cpu", dtype))
    model.train(was_training)
    return torch.cat(chunks) if chunks else torch.zeros(0, model.dim, dtype=dtype)


@torch.inference_mode()
def init_clusters(model: NetVLADDescriptor, paths: Sequence[Path], size: tuple[int, int], n_images: int,
                  n_descriptors: int, iterations: int, batch_size: int, workers: int, device: torch.device,
                  seed: int) -> float:
    """k-means of local features of ``n_images`` random images -> NetVLAD centres; returns alpha."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(paths), size=min(n_images, len(paths)), replace=False)
    per_image = max(1, math.ceil(n_descriptors / len(chosen)))
    was_training = model.training
    model.eval()
    maps = (model.local_features(images) for images in
            _image_batches([paths[i] for i in chosen], size, batch_size, workers, device))
    sample = sample_local_features(maps, per_image, n_descriptors, seed).to(device)
    centroids = kmeans(sample, model.netvlad.num_clusters, iterations=iterations, seed=seed)
    model.train(was_training)
    with torch.inference_mode(False):
        return model.netvlad.init_from_clusters(centroids.clone(), sample.clone())


def pca_whitening(descriptors: torch.Tensor, out_dim: int, eps_ratio: float = 1e-6
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """PCA whitening fitted on (N, D) descriptors: (out_dim, D) weight and (out_dim,) bias.

    ``y = W (x - mean)`` with ``W = diag(1 / sqrt(lambda + eps)) U^T`` over the top ``out_dim``
    principal directions, as in the paper's post-training whitening. A centred set of N
    vectors spans at most N - 1 directions, hence ``out_dim < N``.
    """
    data = descriptors.double()
    count = data.shape[0]
    if out_dim > min(count - 1, data.shape[1]):
        raise MduitError(f"PCA whitening to {out_dim} dimensions needs at least {out_dim + 1} images and "
                         f"descriptors of at least that size; have {count} of dimension {data.shape[1]}")
    mean = data.mean(dim=0)
    centred = data - mean
    _, singular, directions = torch.linalg.svd(centred, full_matrices=False)
    variances = singular[:out_dim].pow(2) / max(count - 1, 1)
    eps = eps_ratio * float(variances.max().clamp(min=1e-30))
    weight = directions[:out_dim] / torch.sqrt(variances + eps).unsqueeze(1)
    return weight.float(), (-(weight @ mean)).float()

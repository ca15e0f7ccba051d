"""Cluster initialisation of a NetVLAD layer: k-means of local features, as in the original.

The original samples ~50k conv5_3 descriptors (100 per image) from training images, runs
k-means on the L2-normalised descriptors and derives the soft-assignment from the centres.
"""
from __future__ import annotations

from typing import Iterable

import torch

from mduit_loc.errors import MduitError
from mduit_loc.retrieval.netvlad.layer import matconvnet_l2_normalize


def kmeans(points: torch.Tensor, num_clusters: int, iterations: int = 25, seed: int = 0,
           chunk: int = 65536) -> torch.Tensor:
    """Lloyd's k-means on (N, D) points; returns (K, D) centres.

    Initial centres are K distinct random points; a cluster that empties is re-seeded with the
    point farthest from its centre, so every centre stays meaningful. Distances are computed in
    chunks of ``chunk`` points to bound memory.
    """
    points = points.float()
    count = points.shape[0]
    if count < num_clusters:
        raise MduitError(f"k-means needs at least {num_clusters} local features, got {count}: "
                         "use more or larger training images, or fewer clusters")
    generator = torch.Generator().manual_seed(seed)
    centres = points[torch.randperm(count, generator=generator)[:num_clusters].to(points.device)].clone()
    for _ in range(iterations):
        labels, distances = _assign(points, centres, chunk)
        sums = torch.zeros_like(centres).index_add_(0, labels, points)
        sizes = torch.bincount(labels, minlength=num_clusters).to(points.dtype)
        empty = sizes == 0
        centres = torch.where(empty.unsqueeze(1), centres, sums / sizes.clamp(min=1).unsqueeze(1))
        if empty.any():
            farthest = distances.topk(int(empty.sum())).indices
            centres[empty] = points[farthest]
    return centres


def _assign(points: torch.Tensor, centres: torch.Tensor, chunk: int) -> tuple[torch.Tensor, torch.Tensor]:
    labels, distances = [], []
    for start in range(0, points.shape[0], chunk):
        block = torch.cdist(points[start:start + chunk], centres)
        value, index = block.min(dim=1)
        labels.append(index)
        distances.append(value)
    return torch.cat(labels), torch.cat(distances)


@torch.inference_mode()
def sample_local_features(feature_maps: Iterable[torch.Tensor], per_image: int, limit: int,
                          seed: int = 0) -> torch.Tensor:
    """L2-normalised local features, ``per_image`` random positions per image, at most ``limit``.

    ``feature_maps`` yields (B, D, H, W) batches (the backbone's output on training images).
    """
    generator = torch.Generator().manual_seed(seed)
    collected: list[torch.Tensor] = []
    total = 0
    for maps in feature_maps:
        local = matconvnet_l2_normalize(maps.float(), dim=1).flatten(2).transpose(1, 2)  # (B, N, D)
        positions = local.shape[1]
        take = min(per_image, positions)
        for features in local:
            choice = torch.randperm(positions, generator=generator)[:take].to(features.device)
            collected.append(features[choice].cpu())
        total += take * local.shape[0]
        if total >= limit:
            break
    if not collected:
        raise MduitError("no images to sample local features from for the NetVLAD cluster initialisation")
    return torch.cat(collected)[:limit]

"""Weak supervision from poses: potential positives, definite negatives, hard-negative triplets.

As in NetVLAD: an image's potential positives are the images within 7 m *and* 8 degrees of it
(``mduit_loc.poses.pose_errors``' distance and angle, thresholds inclusive as in kapture);
definite negatives are farther than 25 m. Images in between are ignored. For each anchor the
positive used is the potential positive closest in descriptor space (the "best match" of the
paper's weak-supervision loss) and the negatives are the hardest (closest) definite negatives
in a random pool, both with descriptors cached from the current model.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.spatial import cKDTree

from mduit_loc.poses import Pose


@dataclass(frozen=True, kw_only=True)
class SupervisionThresholds:
    positive_distance_m: float = 7.0
    positive_angle_deg: float = 8.0
    negative_distance_m: float = 25.0


class PoseGraph:
    """Camera centres and rotations of the training images, with neighbour queries."""

    def __init__(self, poses: list[Pose], domains: list[str],
                 thresholds: SupervisionThresholds = SupervisionThresholds()):
        if len(poses) != len(domains):
            raise ValueError("one domain per pose")
        self.centers = np.stack([p.center for p in poses]) if poses else np.zeros((0, 3))
        self.rotations = np.stack([p.R for p in poses]) if poses else np.zeros((0, 3, 3))
        self.domains = np.asarray(domains)
        self.thresholds = thresholds
        self._tree = cKDTree(self.centers) if poses else None

    def __len__(self) -> int:
        return len(self.centers)

    def rotation_errors_deg(self, index: int, others: np.ndarray) -> np.ndarray:
        """Angle of R_i^T R_j for each j in ``others``; trace(R_i^T R_j) = sum of elementwise products."""
        traces = np.einsum("ab,nab->n", self.rotations[index], self.rotations[others])
        return np.degrees(np.arccos(np.clip((traces - 1.0) / 2.0, -1.0, 1.0)))

    def potential_positives(self, cross_domain: bool = True) -> list[np.ndarray]:
        """Per image, the other images within the positive distance and angle.

        With ``cross_domain`` an image keeps only positives of other domains when it has any:
        learning to match across conditions is what the baseline is compared on.
        """
        if self._tree is None:
            return []
        limit = self.thresholds.positive_distance_m
        near = self._tree.query_ball_point(self.centers, r=limit)
        result = []
        for index, candidates in enumerate(near):
            candidates = np.asarray([c for c in candidates if c != index], dtype=np.int64)
            if candidates.size:
                # query_ball_point uses <= r; re-check exactly with the same formula as pose_errors.
                distances = np.linalg.norm(self.centers[candidates] - self.centers[index], axis=1)
                keep = (distances <= limit) & (self.rotation_errors_deg(index, candidates)
                                                <= self.thresholds.positive_angle_deg)
                candidates = candidates[keep]
            if cross_domain and candidates.size:
                other = candidates[self.domains[candidates] != self.domains[index]]
                candidates = other if other.size else candidates
            result.append(candidates)
        return result

    def negative_mask(self, anchors: np.ndarray, pool: np.ndarray) -> np.ndarray:
        """(A, P) booleans: pool image j is a definite negative of anchor i (> 25 m apart)."""
        diff = self.centers[anchors][:, None, :] - self.centers[pool][None, :, :]
        return np.linalg.norm(diff, axis=2) > self.thresholds.negative_distance_m

    def negative_counts(self) -> np.ndarray:
        """Number of definite negatives of every image."""
        if self._tree is None:
            return np.zeros(0, dtype=np.int64)
        within = self._tree.query_ball_point(self.centers, r=self.thresholds.negative_distance_m, return_length=True)
        return len(self) - np.asarray(within, dtype=np.int64)


def eligible_anchors(positives: list[np.ndarray], negative_counts: np.ndarray, n_negatives: int) -> np.ndarray:
    """Images with at least one positive and ``n_negatives`` definite negatives."""
    has_positive = np.array([p.size > 0 for p in positives], dtype=bool)
    return np.flatnonzero(has_positive & (negative_counts >= n_negatives))


def images_to_describe(anchors: np.ndarray, positives: list[np.ndarray], pool: np.ndarray) -> np.ndarray:
    """Sorted union of anchors, their potential positives and the negative pool."""
    parts = [anchors, pool] + [positives[a] for a in anchors]
    return np.unique(np.concatenate(parts).astype(np.int64))


def mine_triplets(graph: PoseGraph, anchors: np.ndarray, positives: list[np.ndarray], pool: np.ndarray,
                  descriptors: torch.Tensor, described: np.ndarray, n_negatives: int,
                  rng: np.random.Generator, chunk: int = 1024) -> np.ndarray:
    """(A, 2 + n_negatives) int64 rows ``[anchor, positive, negative...]`` (dataset indices).

    ``descriptors[r]`` belongs to image ``described[r]`` (sorted). Negatives are the pool's
    hardest definite negatives; when the pool holds too few, random definite negatives fill in.
    Anchors are processed ``chunk`` at a time so that float16 caches of 32k-D descriptors are
    only converted to float32 a slice at a time.
    """
    def rows_of(indices: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.searchsorted(described, indices))

    pool_desc = descriptors[rows_of(pool)].float()
    plan = np.empty((len(anchors), 2 + n_negatives), dtype=np.int64)
    for start in range(0, len(anchors), chunk):
        block = anchors[start:start + chunk]
        block_desc = descriptors[rows_of(block)].float()
        distances = torch.cdist(block_desc, pool_desc).numpy()
        distances[~graph.negative_mask(block, pool)] = np.inf
        hardest = np.argsort(distances, axis=1, kind="stable")[:, :n_negatives]
        for i, anchor in enumerate(block):
            candidates = positives[anchor]
            candidate_desc = descriptors[rows_of(candidates)].float()
            best = int(torch.cdist(block_desc[i:i + 1], candidate_desc).argmin())
            negatives = [int(pool[j]) for j in hardest[i] if np.isfinite(distances[i, j])]
            if len(negatives) < n_negatives:
                negatives += _random_negatives(graph, int(anchor), n_negatives - len(negatives), negatives, rng)
            plan[start + i] = [int(anchor), int(candidates[best]), *negatives]
    return plan


def _random_negatives(graph: PoseGraph, anchor: int, count: int, exclude: list[int],
                      rng: np.random.Generator) -> list[int]:
    everyone = np.arange(len(graph))
    far = everyone[graph.negative_mask(np.array([anchor]), everyone)[0]]
    far = np.setdiff1d(far, np.asarray(exclude, dtype=np.int64))
    return [int(v) for v in rng.choice(far, size=count, replace=far.size < count)]

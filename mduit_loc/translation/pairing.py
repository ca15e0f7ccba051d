"""Per-epoch pairing of training images (paper §3.1) and sampling of NCE negatives.

At the start of every epoch the descriptors z of all training images are computed; every image
is a source once, paired with its most similar image (by z) from another domain as target. Each
row of the epoch plan then lists the image indices one training sample needs:

    [source, target, target+ (same domain as target), target- (another domain), negatives...]

NCE negatives (eq. 5) are drawn at random, excluding the source itself, its target, and, where
both poses are known, every image within 7 m and 8 degrees of the source (same place, same view).
A source with a known pose draws its negatives from images with known poses only, so that an
unlabelled image of the same place cannot become a negative; a source without a pose (or a dataset
without poses, e.g. folders per domain) draws from all other images. ``hard`` mining draws them
from the 4 * N_neg most similar images beyond the thresholds instead (a reading of §3.1).
The first negative doubles as I_{s-}, the "different content" image of the content consistency loss.

Everything is driven by a generator seeded with (seed, epoch): a plan is reproducible, and it is
saved in checkpoints so that a resumed run continues the same epoch exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from mduit_loc.errors import MduitError

SOURCE, TARGET, TARGET_POSITIVE, TARGET_NEGATIVE, FIRST_NEGATIVE = range(5)
_CHUNK = 512  # rows per similarity block: bounded memory for tens of thousands of images


@dataclass
class PoseTable:
    """Camera centres (N, 3), rotations (N, 3, 3) cam_from_world and a known-pose mask (N,)."""

    centers: torch.Tensor
    rotations: torch.Tensor
    known: torch.Tensor

    @classmethod
    def from_poses(cls, poses: list) -> "PoseTable":
        count = len(poses)
        centers, rotations = np.zeros((count, 3)), np.tile(np.eye(3), (count, 1, 1))
        known = np.zeros(count, dtype=bool)
        for index, pose in enumerate(poses):
            if pose is not None:
                centers[index], rotations[index], known[index] = pose.center, pose.R, True
        return cls(torch.from_numpy(centers), torch.from_numpy(rotations), torch.from_numpy(known))

    @property
    def any_known(self) -> bool:
        return bool(self.known.any())


def near_pose_mask(poses: PoseTable, rows: torch.Tensor, max_distance: float, max_angle_deg: float) -> torch.Tensor:
    """(len(rows), N) True where both poses are known and within ``max_distance`` and ``max_angle_deg``."""
    distance = torch.cdist(poses.centers[rows], poses.centers)
    # trace(R_a R_b^T) = sum(R_a * R_b) gives the relative rotation angle without a matrix product per pair.
    trace = torch.einsum("aij,bij->ab", poses.rotations[rows], poses.rotations)
    cos_angle_limit = math.cos(math.radians(max_angle_deg))
    close_rotation = (trace - 1.0) / 2.0 > cos_angle_limit
    both_known = poses.known[rows][:, None] & poses.known[None, :]
    return both_known & (distance < max_distance) & close_rotation


def most_similar_other_domain(descriptors: torch.Tensor, domain_ids: torch.Tensor) -> torch.Tensor:
    """For every image, the index of the most similar image (dot product of z) of another domain."""
    targets = torch.empty(len(descriptors), dtype=torch.long)
    for start in range(0, len(descriptors), _CHUNK):
        rows = torch.arange(start, min(start + _CHUNK, len(descriptors)))
        similarity = descriptors[rows] @ descriptors.T
        similarity[domain_ids[rows][:, None] == domain_ids[None, :]] = -math.inf
        targets[rows] = similarity.argmax(dim=1)
    return targets


def sample_negatives(descriptors: torch.Tensor, targets: torch.Tensor, poses: PoseTable | None, count: int,
                     generator: torch.Generator, mining: str = "random", max_distance: float = 7.0,
                     max_angle_deg: float = 8.0) -> torch.Tensor:
    """(N, count) negative indices per source (see the module docstring for the rules)."""
    total = len(descriptors)
    if total < count + 2:
        raise MduitError(f"{total} training images are too few for {count} NCE negatives per image "
                         f"(need at least {count + 2}); lower n_negatives")
    negatives = torch.empty(total, count, dtype=torch.long)
    for start in range(0, total, _CHUNK):
        rows = torch.arange(start, min(start + _CHUNK, total))
        allowed = torch.ones(len(rows), total, dtype=torch.bool)
        if poses is not None and poses.any_known:
            allowed &= ~near_pose_mask(poses, rows, max_distance, max_angle_deg)
            allowed &= ~(poses.known[rows][:, None] & ~poses.known[None, :])
        if mining == "hard":
            scores = (descriptors[rows] @ descriptors.T).float()
            pool = max(count, min(total - 2, 4 * count))
            scores = torch.where(allowed, scores, scores - 10.0)  # cosine in [-1, 1]: disallowed rank last
        else:
            scores = torch.rand(len(rows), total, generator=generator)
            pool = count
            scores = torch.where(allowed, scores, scores - 2.0)  # disallowed only if too few allowed
        local = torch.arange(len(rows))
        scores[local, rows] = -math.inf
        scores[local, targets[rows]] = -math.inf
        candidates = scores.topk(pool, dim=1).indices
        if pool > count:  # hard: a random subset of the most similar allowed images
            pick = torch.rand(len(rows), pool, generator=generator).argsort(dim=1)[:, :count]
            candidates = candidates.gather(1, pick)
        negatives[rows] = candidates
    return negatives


def sample_in_domains(domain_ids: torch.Tensor, anchors: torch.Tensor, same: bool,
                      generator: torch.Generator) -> torch.Tensor:
    """For each anchor index, a random image of the anchor's domain (``same``, not the anchor
    itself when the domain has another image) or of any other domain."""
    chosen = torch.empty_like(anchors)
    anchor_domains = domain_ids[anchors]
    for domain in torch.unique(anchor_domains).tolist():
        where = torch.nonzero(anchor_domains == domain).flatten()
        pool = torch.nonzero((domain_ids == domain) if same else (domain_ids != domain)).flatten()
        if len(pool) == 0:
            raise MduitError("pairing needs images from at least two domains")
        picks = pool[torch.randint(len(pool), (len(where),), generator=generator)]
        if same and len(pool) > 1:  # step past the anchor itself to the next image of the domain
            position = torch.searchsorted(pool, anchors[where])
            clash = picks == anchors[where]
            picks[clash] = pool[(position[clash] + 1) % len(pool)]
        chosen[where] = picks
    return chosen


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + int(epoch))


def build_epoch_plan(descriptors: torch.Tensor, domain_ids: torch.Tensor, poses: PoseTable | None,
                     n_negatives: int, seed: int, epoch: int, mining: str = "random",
                     max_distance: float = 7.0, max_angle_deg: float = 8.0) -> torch.Tensor:
    """(N, 4 + n_negatives) int64 rows in the epoch's (shuffled) source order."""
    descriptors = descriptors.detach().float().cpu()
    domain_ids = domain_ids.cpu()
    if len(torch.unique(domain_ids)) < 2:
        raise MduitError("MDUIT training needs images from at least two appearance domains")
    generator = epoch_generator(seed, epoch)
    sources = torch.arange(len(descriptors))
    targets = most_similar_other_domain(descriptors, domain_ids)
    target_positive = sample_in_domains(domain_ids, targets, True, generator)
    target_negative = sample_in_domains(domain_ids, targets, False, generator)
    negatives = sample_negatives(descriptors, targets, poses, n_negatives, generator, mining,
                                 max_distance, max_angle_deg)
    plan = torch.cat([sources[:, None], targets[:, None], target_positive[:, None],
                      target_negative[:, None], negatives], dim=1)
    order = torch.randperm(len(plan), generator=generator)
    return plan[order].contiguous()

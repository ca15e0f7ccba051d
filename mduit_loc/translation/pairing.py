"""Per-epoch plan of training samples (paper §3.1): targets, real positives and NCE negatives.

At the start of every epoch the descriptors z of all training images are computed; every image is a
source once. A row of the epoch plan lists the image indices one training sample needs:

    [source, target, target+ (same domain as target), target- (another domain), real positive, negatives...]

- **target** (the appearance for the translation module): "we paired the source and target image
  pair for the image translation module in the same way" (§3.1): the most similar image (by z) of
  another domain among the images of the same place (``PlaceTable``); without one, the most similar
  image of another domain. ``target_choice="pose"`` (beyond the paper) takes the nearest posed view of
  the same place instead, so that the layout loss compares two views as alike as the data allow.
- **real positive** (the contrastive module's pose-supervised positive, §3.1): an image of the same
  place, from another domain when there is one (that is what teaches invariance to appearance),
  drawn at random. A source without any (no label, or alone at its place) has itself here, and the
  loss masks that positive out: it then learns from the translated (or jittered) positive only.
- **negatives**: images that ``PlaceTable.may_be_negative`` allows (not the same place; a labelled
  source takes labelled negatives only), excluding the source's target. ``random`` draws them
  uniformly; ``hard`` draws them among the 4 x N_neg most similar by z ("among the most similar
  images, those beyond the thresholds are negatives", §3.1); ``mixed`` (the default) takes half of
  each, so hard negatives sharpen the descriptor while random ones keep the whole map in view.
  The first negative doubles as I_{s-}, the "different content" image of the content consistency loss.

Everything is driven by a generator seeded with (seed, epoch): a plan is reproducible, and it is
saved in checkpoints so that a resumed run continues the same epoch exactly.
"""
from __future__ import annotations

import math

import torch

from mduit_loc.errors import MduitError
from mduit_loc.translation.config import TARGET_CHOICES
from mduit_loc.translation.places import PlaceTable

SOURCE, TARGET, TARGET_POSITIVE, TARGET_NEGATIVE, REAL_POSITIVE, FIRST_NEGATIVE = range(6)
_CHUNK = 512  # rows per similarity block: bounded memory for tens of thousands of images


def _blocks(total: int):
    for start in range(0, total, _CHUNK):
        yield torch.arange(start, min(start + _CHUNK, total))


def choose_targets(descriptors: torch.Tensor, domain_ids: torch.Tensor, places: PlaceTable | None,
                   by: str = "z") -> torch.Tensor:
    """Per image, the most similar image (dot product of z) of another domain, preferring images of
    the same place. ``by="pose"``: among the same-place images of another domain that have a pose,
    the nearest view (``PlaceTable.pose_gap``) instead; images without one fall back to z."""
    if by not in TARGET_CHOICES:
        raise MduitError(f"target choice must be one of {TARGET_CHOICES}, got {by!r}")
    targets = torch.empty(len(descriptors), dtype=torch.long)
    for rows in _blocks(len(descriptors)):
        similarity = descriptors[rows] @ descriptors.T
        other_domain = domain_ids[rows][:, None] != domain_ids[None, :]
        similarity = similarity.masked_fill(~other_domain, -math.inf)
        if places is not None and places.any_labelled:
            same_place = places.same_place(rows) & other_domain
            # same-place images rank above all others (cosines lie in [-1, 1])
            similarity = similarity + 4.0 * same_place
            if by == "pose":
                # a pose gap lies in [0, 2] inside the thresholds: nearer views rank above all z scores
                gap = places.pose_gap(rows).masked_fill(~same_place, math.inf)
                similarity = torch.where(torch.isfinite(gap), 16.0 - gap, similarity)
        targets[rows] = similarity.argmax(dim=1)
    return targets


def most_similar_other_domain(descriptors: torch.Tensor, domain_ids: torch.Tensor) -> torch.Tensor:
    """For every image, the index of the most similar image (dot product of z) of another domain."""
    return choose_targets(descriptors, domain_ids, None)


def sample_real_positives(places: PlaceTable | None, domain_ids: torch.Tensor,
                          generator: torch.Generator) -> torch.Tensor:
    """Per image, a random other image of the same place, from another domain when there is one;
    the image itself when there is none."""
    total = len(domain_ids)
    positives = torch.arange(total)
    if places is None or not places.any_labelled:
        return positives
    for rows in _blocks(total):
        same = places.same_place(rows)
        same[torch.arange(len(rows)), rows] = False
        cross = same & (domain_ids[rows][:, None] != domain_ids[None, :])
        pool = torch.where(cross.any(dim=1, keepdim=True), cross, same)
        scores = torch.rand(len(rows), total, generator=generator).masked_fill(~pool, -1.0)
        best = scores.argmax(dim=1)
        has = pool.any(dim=1)
        positives[rows[has]] = best[has]
    return positives


def sample_negatives(descriptors: torch.Tensor, targets: torch.Tensor, places: PlaceTable | None, count: int,
                     generator: torch.Generator, mining: str = "mixed") -> torch.Tensor:
    """(N, count) negative indices per source (see the module docstring for the rules)."""
    total = len(descriptors)
    if total < count + 2:
        raise MduitError(f"{total} training images are too few for {count} NCE negatives per image "
                         f"(need at least {count + 2}); lower n_negatives")
    n_hard = {"random": 0, "hard": count, "mixed": count // 2}[mining]
    negatives = torch.empty(total, count, dtype=torch.long)
    for rows in _blocks(total):
        local = torch.arange(len(rows))
        if places is not None and places.any_labelled:
            allowed = places.may_be_negative(rows)
        else:
            allowed = torch.ones(len(rows), total, dtype=torch.bool)
            allowed[local, rows] = False
        allowed[local, targets[rows]] = False
        # disallowed images rank last and are only used when too few are allowed
        random_scores = torch.rand(len(rows), total, generator=generator) + 2.0 * allowed
        random_scores[local, rows] = -math.inf
        chosen = []
        if n_hard:
            similarity = (descriptors[rows] @ descriptors.T).float() + 4.0 * allowed
            similarity[local, rows] = -math.inf
            pool = similarity.topk(max(n_hard, min(total - 1, 4 * count)), dim=1).indices
            pick = torch.rand(pool.shape, generator=generator).argsort(dim=1)[:, :n_hard]
            hard = pool.gather(1, pick)
            random_scores.scatter_(1, hard, -math.inf)  # never the same image twice in one row
            chosen.append(hard)
        if count - n_hard:
            chosen.append(random_scores.topk(count - n_hard, dim=1).indices)
        negatives[rows] = torch.cat(chosen, dim=1)
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


def build_epoch_plan(descriptors: torch.Tensor, domain_ids: torch.Tensor, places: PlaceTable | None,
                     n_negatives: int, seed: int, epoch: int, mining: str = "mixed",
                     real_positives: bool = True, target_choice: str = "z") -> torch.Tensor:
    """(N, FIRST_NEGATIVE + n_negatives) int64 rows in the epoch's (shuffled) source order.
    ``real_positives=False``: eq. 5 as written (every real-positive slot holds the source itself)."""
    descriptors = descriptors.detach().float().cpu()
    domain_ids = domain_ids.cpu()
    if len(torch.unique(domain_ids)) < 2:
        raise MduitError("MDUIT training needs images from at least two appearance domains")
    generator = epoch_generator(seed, epoch)
    sources = torch.arange(len(descriptors))
    targets = choose_targets(descriptors, domain_ids, places, target_choice)
    target_positive = sample_in_domains(domain_ids, targets, True, generator)
    target_negative = sample_in_domains(domain_ids, targets, False, generator)
    real_positive = sample_real_positives(places if real_positives else None, domain_ids, generator)
    negatives = sample_negatives(descriptors, targets, places, n_negatives, generator, mining)
    plan = torch.cat([sources[:, None], targets[:, None], target_positive[:, None],
                      target_negative[:, None], real_positive[:, None], negatives], dim=1)
    order = torch.randperm(len(plan), generator=generator)
    return plan[order].contiguous()

"""MDUIT losses (paper eq. 2-6), each averaged over the batch.

Adversarial (eq. 2): ``nonsaturating`` is eq. 2's log form for the discriminators,
``-[log D(real) + log(1 - D(fake))]`` computed with ``softplus`` on logits, and the usual
non-saturating ``-log D(fake)`` for the generator; ``lsgan`` is the least-squares variant
(real -> 1, fake -> 0). Logit maps (PatchGAN) are averaged over positions.

Consistency (eq. 4): distances between content features are mean squared differences per element
(``||.||_2^2 / (c h w)``), so the margin m_c = 0.1 keeps its meaning whatever the feature size
(content features are instance-normalised: unit variance per channel). Filter similarity is the
cosine of the flattened filters.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from mduit_loc.translation.config import PAIRED_NORMS


def _real_term(logits: torch.Tensor, mode: str) -> torch.Tensor:
    if mode == "lsgan":
        return (logits.float() - 1.0).pow(2).mean()
    return F.softplus(-logits.float()).mean()  # -log sigmoid(logit)


def _fake_term(logits: torch.Tensor, mode: str) -> torch.Tensor:
    if mode == "lsgan":
        return logits.float().pow(2).mean()
    return F.softplus(logits.float()).mean()  # -log(1 - sigmoid(logit))


def discriminator_loss(real_logits: Sequence[torch.Tensor], fake_logits: Sequence[torch.Tensor],
                       mode: str = "nonsaturating") -> torch.Tensor:
    """Sum over the real inputs (e.g. I_s and I_t) and the fake ones (I_{s->t}), as in eq. 2."""
    terms = [_real_term(r, mode) for r in real_logits] + [_fake_term(f, mode) for f in fake_logits]
    return torch.stack(terms).sum()


def generator_adversarial_loss(fake_logits: torch.Tensor, mode: str = "nonsaturating") -> torch.Tensor:
    """The generator's side: make D call the translated input real."""
    return _real_term(fake_logits, mode)


def reconstruction_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error (eq. 3, self- and cycle-reconstruction)."""
    return (output.float() - target.float()).abs().mean()


def paired_layout_loss(translated: torch.Tensor, target: torch.Tensor, same_place: torch.Tensor,
                       grid: tuple[int, int], norm: str = "l1") -> torch.Tensor:
    """Mean absolute (``norm="l1"``) or squared (``"l2"``) difference of the two images average-pooled onto
    ``grid`` cells, over the samples whose target shows the same place (``same_place`` (B,)); 0 when there
    is none."""
    if norm not in PAIRED_NORMS:
        raise ValueError(f"norm must be {' or '.join(map(repr, PAIRED_NORMS))}, got {norm!r}")
    difference = F.adaptive_avg_pool2d(translated.float(), grid) - F.adaptive_avg_pool2d(target.float(), grid)
    pooled = difference.abs() if norm == "l1" else difference.square()
    weights = same_place.to(pooled.device, pooled.dtype)
    return (pooled.flatten(1).mean(dim=1) * weights).sum() / weights.sum().clamp(min=1.0)


def mean_squared_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-sample ``||a - b||^2 / numel``: (B,)."""
    return (a.float() - b.float()).pow(2).flatten(1).mean(dim=1)


def content_consistency_loss(content: torch.Tensor, translated_content: torch.Tensor,
                             negative_content: torch.Tensor, margin: float) -> torch.Tensor:
    """max(0, d(f_s, f_{s->t}) - d(f_s, f_{s-}) + m_c), eq. 4 top."""
    positive = mean_squared_distance(content, translated_content)
    negative = mean_squared_distance(content, negative_content)
    return F.relu(positive - negative + margin).mean()


def filter_consistency_loss(target_filters: torch.Tensor, translated_filters: torch.Tensor,
                            negative_filters: torch.Tensor) -> torch.Tensor:
    """max(0, 1 - cos(W_t, W_{s->t}) + cos(W_t, W_{t-})), eq. 4 bottom."""
    anchor = target_filters.float().flatten(1)
    positive = F.cosine_similarity(anchor, translated_filters.float().flatten(1), dim=1)
    negative = F.cosine_similarity(anchor, negative_filters.float().flatten(1), dim=1)
    return F.relu(1.0 - positive + negative).mean()


def nce_loss(query: torch.Tensor, positive: torch.Tensor, negatives: torch.Tensor,
             temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 5 for unit vectors: query (B, K), positive (B, K), negatives (B, N, K).

    Returns (loss, accuracy) where accuracy is the fraction of queries whose positive is more
    similar than every negative (chance: 1 / (N + 1)).
    """
    query, negatives = query.float(), negatives.float()
    negative_logits = torch.einsum("bk,bnk->bn", query, negatives)
    mask = torch.ones(len(query), 1, dtype=torch.bool, device=query.device)
    return multi_positive_nce(query, positive[:, None], mask, negative_logits, temperature)


def negative_similarities(query: torch.Tensor, negatives: torch.Tensor, out: dict[str, torch.Tensor],
                          in_batch_negative: torch.Tensor | None) -> torch.Tensor:
    """(B, M) cosine similarities of each query to its negatives, -inf where a candidate is not one.

    Without ``in_batch_negative``: the sample's own N mined negatives (eq. 5). With it (B, M): every
    real image of the step (sources, real positives, all mined negatives) that the mask allows, so
    each source meets B (2 + N) candidates for the price of its own N.
    """
    query = query.float()
    if in_batch_negative is None:
        return torch.einsum("bk,bnk->bn", query, negatives.float())
    candidates = torch.cat([out["z_source"], out["z_positives"][:, 0], negatives.flatten(0, 1)]).float()
    similarity = query @ candidates.T
    return similarity.masked_fill(~in_batch_negative.to(similarity.device), -math.inf)


def multi_positive_nce(query: torch.Tensor, positives: torch.Tensor, positive_mask: torch.Tensor,
                       negative_logits: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 5 once per positive, averaged over the valid ones: query (B, K), positives (B, P, K),
    positive_mask (B, P), negative_logits (B, M) cosine similarities (-inf: not a negative).

    Each positive competes with the same negatives (not with the other positives):
    ``-log(e^{s.p/t} / (e^{s.p/t} + sum_n e^{s.n/t})) = softplus(logsumexp_n(s.n/t) - s.p/t)``.
    Returns (loss, accuracy): accuracy is the share of valid positives more similar than every negative.
    """
    positive_logits = torch.einsum("bk,bpk->bp", query.float(), positives.float()) / temperature
    negatives = negative_logits.float() / temperature
    per_positive = F.softplus(torch.logsumexp(negatives, dim=1, keepdim=True) - positive_logits)
    weights = positive_mask.to(per_positive.dtype)
    count = weights.sum().clamp(min=1.0)
    loss = (per_positive * weights).sum() / count
    beaten = positive_logits > negatives.max(dim=1, keepdim=True).values
    accuracy = (beaten.to(weights.dtype) * weights).sum() / count
    return loss, accuracy.detach()


def positive_l1_loss(query: torch.Tensor, positives: torch.Tensor,
                     positive_mask: torch.Tensor | None = None) -> torch.Tensor:
    """The ``w/o L_NCE`` ablation: ``||z_s - z_p||_1`` per valid positive, averaged (no negatives).

    ``positives`` (B, K) or (B, P, K); ``positive_mask`` (B, P) marks the valid ones (default: all)."""
    if positives.dim() == 2:
        positives = positives[:, None]
    distances = (query.float()[:, None] - positives.float()).abs().sum(dim=2)
    if positive_mask is None:
        return distances.mean()
    weights = positive_mask.to(distances.dtype)
    return (distances * weights).sum() / weights.sum().clamp(min=1.0)


def positive_margin_loss(query: torch.Tensor, positives: torch.Tensor, positive_mask: torch.Tensor,
                         negative_logits: torch.Tensor, margin: float) -> torch.Tensor:
    """The ``w/o L_NCE`` ablation in eq. 4's form: ``max(0, D(z_s, z_p) - D(z_s, z_n) + m)`` with D the cosine
    distance, for every valid positive (B, P) and negative (B, M; -inf logits: not a negative).

    Averaged over the active (non-zero) pairs, as batch-all triplet losses are, so that the many easy in-batch
    negatives do not dilute the few that still rank above a positive."""
    positive_similarity = torch.einsum("bk,bpk->bp", query.float(), positives.float())
    negative_similarity = negative_logits.float()
    # D(s, p) - D(s, n) = cos(s, n) - cos(s, p)
    hinge = F.relu(negative_similarity[:, None, :] - positive_similarity[:, :, None] + margin)
    # -inf logits already give 0; the mask drops the invalid positives
    hinge = hinge * positive_mask[:, :, None].to(hinge.dtype)
    active = (hinge > 0).sum().clamp(min=1)
    return hinge.sum() / active

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

from typing import Sequence

import torch
import torch.nn.functional as F


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
    return sum(_real_term(r, mode) for r in real_logits) + sum(_fake_term(f, mode) for f in fake_logits)


def generator_adversarial_loss(fake_logits: torch.Tensor, mode: str = "nonsaturating") -> torch.Tensor:
    """The generator's side: make D call the translated input real."""
    return _real_term(fake_logits, mode)


def reconstruction_loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error (eq. 3, self- and cycle-reconstruction)."""
    return (output.float() - target.float()).abs().mean()


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
    query, positive, negatives = query.float(), positive.float(), negatives.float()
    positive_logit = (query * positive).sum(dim=1, keepdim=True)
    negative_logits = torch.einsum("bk,bnk->bn", query, negatives)
    logits = torch.cat([positive_logit, negative_logits], dim=1) / temperature
    labels = torch.zeros(len(logits), dtype=torch.long, device=logits.device)
    loss = F.cross_entropy(logits, labels)
    accuracy = (logits.argmax(dim=1) == 0).float().mean()
    return loss, accuracy.detach()


def positive_l1_loss(query: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """The ``w/o L_NCE`` ablation: ``||z_s - z_{s->t}||_1`` per sample, averaged over the batch."""
    return (query.float() - positive.float()).abs().sum(dim=1).mean()

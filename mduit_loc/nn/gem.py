"""Generalised-mean (GeM) pooling with a trainable exponent (Radenović et al.)."""
from __future__ import annotations

import torch
from torch import nn


class GeM(nn.Module):
    """``(mean(x^p))^(1/p)`` over the spatial dimensions; p is learned, p=1 is average pooling."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6, trainable: bool = True):
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)), requires_grad=trainable)
        self.eps = eps

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        pooled = features.clamp(min=self.eps).pow(self.p).mean(dim=(-2, -1))
        return pooled.pow(1.0 / self.p)

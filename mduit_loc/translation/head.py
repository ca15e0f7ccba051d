"""Projection head H (paper §2.2): trainable GeM pooling, a two-layer MLP, L2 normalisation.

``z = H(E_c(I))`` is MDUIT's global descriptor. A ReLU precedes GeM because the content feature
(the output of residual blocks) can be negative and GeM's ``x**p`` needs non-negative input.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mduit_loc.nn.gem import GeM


class ProjectionHead(nn.Module):
    """Content feature (B, c, h, w) of any spatial size -> z (B, K), unit L2 norm."""

    def __init__(self, in_channels: int, hidden: int, out_dim: int, gem_p: float = 3.0):
        super().__init__()
        self.pool = GeM(p=gem_p, trainable=True)
        self.mlp = nn.Sequential(nn.Linear(in_channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_dim))
        self.out_dim = out_dim

    def forward(self, content: torch.Tensor) -> torch.Tensor:
        pooled = self.pool(F.relu(content.float()))  # GeM's pow is unstable in half precision
        return F.normalize(self.mlp(pooled), dim=1)

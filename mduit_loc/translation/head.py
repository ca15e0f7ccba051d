"""Projection heads H: content feature E_c(I) (B, c, h, w) -> descriptor z (B, K), unit L2 norm.

- ``gem-mlp`` (the paper's H, §2.2): trainable GeM pooling, a two-layer MLP, L2 normalisation. A
  ReLU precedes GeM because the content feature (the output of residual blocks) can be negative and
  GeM's ``x**p`` needs non-negative input. Global pooling keeps *what* is in the image but not
  *where*: on the synthetic benchmark it learned slowly and stayed below an untrained thumbnail.
- ``grid``: average pooling onto a ``head_grid`` of cells (4 x 4 by default), each cell's feature
  vector L2-normalised (so a bright lamp in one cell cannot drown the others), flattened, an optional
  linear projection to ``descriptor_dim`` (0 keeps c * cells), L2 normalisation. The layout of the
  scene (facades left, road below, sky above) is what tells nearby places apart; measured on the
  synthetic benchmark and on Nordland it is the better descriptor, hence the default.
- ``netvlad``: NetVLAD aggregation (``retrieval.netvlad.layer``) of the content feature into
  ``head_clusters`` learned clusters (soft assignment with a bias, random initial centres: E_c is
  trained from scratch, so there are no features to cluster beforehand), an optional linear
  projection to ``descriptor_dim``, L2 normalisation. Orderless like GeM but with many local
  "words"; compared with the others in ``benchmarks/descriptor_design.py``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mduit_loc.nn.gem import GeM
from mduit_loc.retrieval.netvlad.layer import NetVLAD

HEADS = ("grid", "gem-mlp", "netvlad")


class ProjectionHead(nn.Module):
    """The paper's H: GeM, MLP, L2 (any spatial size)."""

    def __init__(self, in_channels: int, hidden: int, out_dim: int, gem_p: float = 3.0):
        super().__init__()
        self.pool = GeM(p=gem_p, trainable=True)
        self.mlp = nn.Sequential(nn.Linear(in_channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_dim))
        self.out_dim = out_dim

    def forward(self, content: torch.Tensor) -> torch.Tensor:
        pooled = self.pool(F.relu(content.float()))  # GeM's pow is unstable in half precision
        return F.normalize(self.mlp(pooled), dim=1)


class GridHead(nn.Module):
    """Spatial grid pooling: cells of E_c(I), each normalised, flattened, optionally projected, L2."""

    def __init__(self, in_channels: int, grid: tuple[int, int], out_dim: int = 0):
        super().__init__()
        self.grid = (int(grid[0]), int(grid[1]))
        pooled_dim = in_channels * self.grid[0] * self.grid[1]
        self.projection = nn.Linear(pooled_dim, out_dim) if out_dim else None
        self.out_dim = out_dim or pooled_dim

    def forward(self, content: torch.Tensor) -> torch.Tensor:
        cells = F.adaptive_avg_pool2d(content.float(), self.grid)
        pooled = F.normalize(cells, dim=1).flatten(1)
        if self.projection is not None:
            pooled = self.projection(pooled)
        return F.normalize(pooled, dim=1)


class NetVLADHead(nn.Module):
    """NetVLAD pooling of E_c(I) into ``clusters`` clusters, optionally projected, L2."""

    def __init__(self, in_channels: int, clusters: int, out_dim: int = 0):
        super().__init__()
        self.vlad = NetVLAD(in_channels, clusters, assignment_bias=True)
        self.projection = nn.Linear(self.vlad.output_dim, out_dim) if out_dim else None
        self.out_dim = out_dim or self.vlad.output_dim

    def forward(self, content: torch.Tensor) -> torch.Tensor:
        pooled = self.vlad(content)
        if self.projection is not None:
            pooled = self.projection(pooled)
        return F.normalize(pooled, dim=1)


def make_head(kind: str, in_channels: int, *, hidden: int, out_dim: int, gem_p: float,
              grid: tuple[int, int], clusters: int = 16) -> nn.Module:
    if kind == "gem-mlp":
        return ProjectionHead(in_channels, hidden, out_dim, gem_p)
    if kind == "grid":
        return GridHead(in_channels, grid, out_dim)
    if kind == "netvlad":
        return NetVLADHead(in_channels, clusters, out_dim)
    raise ValueError(f"unknown head {kind!r}; one of {', '.join(HEADS)}")

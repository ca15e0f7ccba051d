"""Appearance-adaptive convolution ``f ⊗ W``: every image convolved with its own filters.

The batch is folded into the channel axis so that one grouped ``conv2d`` with
``groups = batch * groups`` applies each sample's filters to that sample only; no Python
loop over the batch. With ``groups = c`` (the paper's 256 groups for c = 256) each channel
gets its own 1 x k x k filter, which is what makes the 256 x 256 x 5 x 5 filter affordable.

A folded batch is a single sample to the kernels, which cannot split it: a batch whose folded tensors
would pass ``mduit_loc.nn.chunking``'s element limit (32-bit index math) is convolved in pieces of
whole samples, with the same result.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mduit_loc.nn.chunking import chunk_limit, rows_per_chunk


def appearance_adaptive_conv(features: torch.Tensor, filters: torch.Tensor, groups: int,
                             padding_mode: str = "reflect", max_elements: int | None = None) -> torch.Tensor:
    """Convolve ``features`` (B, C, H, W) with per-sample ``filters`` (B or 1, C', C/groups, k, k).

    Returns (B, C', H, W): same spatial size (``k // 2`` padding, reflect by default).
    ``max_elements``: the largest folded tensor (default: ``chunking.chunk_limit()``).
    """
    batch, channels, height, width = features.shape
    if filters.dim() != 5:
        raise ValueError(f"filters must be (B, C', C/groups, k, k), got shape {tuple(filters.shape)}")
    if filters.shape[0] == 1 and batch > 1:
        filters = filters.expand(batch, *filters.shape[1:])
    if filters.shape[0] != batch:
        raise ValueError(f"{filters.shape[0]} filter sets for a batch of {batch} feature maps")
    out_channels, in_per_group, k_h, k_w = filters.shape[1:]
    if channels % groups or in_per_group != channels // groups or out_channels % groups:
        raise ValueError(f"filters {tuple(filters.shape)} do not fit {channels} channels in {groups} groups")
    if k_h % 2 == 0 or k_w % 2 == 0:
        raise ValueError(f"filter size must be odd, got {k_h}x{k_w}")
    pad_h, pad_w = k_h // 2, k_w // 2
    per_sample = max(channels * (height + 2 * pad_h) * (width + 2 * pad_w), out_channels * height * width,
                     filters[0].numel())
    step = rows_per_chunk(per_sample, chunk_limit(max_elements))
    if step < batch:
        return torch.cat([_folded_conv(f, w, groups, padding_mode)
                          for f, w in zip(features.split(step), filters.split(step))])
    return _folded_conv(features, filters, groups, padding_mode)


def _folded_conv(features: torch.Tensor, filters: torch.Tensor, groups: int, padding_mode: str) -> torch.Tensor:
    """One grouped conv2d over the batch folded into the channels (shapes checked by the caller)."""
    batch, channels, height, width = features.shape
    out_channels, in_per_group, k_h, k_w = filters.shape[1:]
    pad_h, pad_w = k_h // 2, k_w // 2
    folded = features.reshape(1, batch * channels, height, width)
    if pad_h or pad_w:
        mode = padding_mode if min(height, width) > max(pad_h, pad_w) else "replicate"
        folded = F.pad(folded, (pad_w, pad_w, pad_h, pad_h), mode=mode)
    weight = filters.reshape(batch * out_channels, in_per_group, k_h, k_w).to(folded.dtype)
    out = F.conv2d(folded, weight, groups=batch * groups)
    return out.reshape(batch, out_channels, height, width)


class AppearanceAdaptiveConv(nn.Module):
    """Module form of :func:`appearance_adaptive_conv` with a fixed number of groups."""

    def __init__(self, groups: int, padding_mode: str = "reflect"):
        super().__init__()
        self.groups = groups
        self.padding_mode = padding_mode

    def forward(self, features: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
        return appearance_adaptive_conv(features, filters, self.groups, self.padding_mode)

    def extra_repr(self) -> str:
        return f"groups={self.groups}, padding_mode={self.padding_mode}"

"""The NetVLAD aggregation layer (Arandjelović et al., CVPR 2016), vectorised.

Given local features ``x`` (B, D, H, W):

1. L2-normalise every local feature over its D channels ("preL2");
2. soft-assign it to K clusters: ``a = softmax_k(w_k . x + b_k)`` (1x1 conv; bias optional);
3. aggregate residuals: ``V[d, k] = sum_n a_k(x_n) (x_n[d] - c_k[d])``;
4. intra-normalise each cluster's residual over d, flatten (D x K), L2-normalise.

The flattened vector is D-major (index ``d * K + k``), the order of the official MATLAB
network's output, so that its PCA-whitening matrix applies unchanged (hloc and
netvlad_tf_open flatten the same (B, D, K) tensor).

Normalisations follow MatConvNet (``x / sqrt(sum x^2 + eps)``), which keeps the loaded
official weights numerically faithful and is smooth at zero.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

NORM_EPS = 1e-12


def matconvnet_l2_normalize(x: torch.Tensor, dim: int, eps: float = NORM_EPS) -> torch.Tensor:
    """``x / sqrt(sum(x^2) + eps)`` along ``dim`` (MatConvNet's vl_nnnormalize with L2 params)."""
    return x * torch.rsqrt(x.pow(2).sum(dim=dim, keepdim=True) + eps)


class NetVLAD(nn.Module):
    """NetVLAD pooling: (B, D, H, W) local features -> (B, D * K) L2-normalised vector."""

    def __init__(self, feature_dim: int, num_clusters: int, assignment_bias: bool = False,
                 normalize_input: bool = True):
        super().__init__()
        if feature_dim < 1 or num_clusters < 1:
            raise ValueError(f"NetVLAD needs feature_dim, num_clusters >= 1, got {feature_dim}, {num_clusters}")
        self.feature_dim = int(feature_dim)
        self.num_clusters = int(num_clusters)
        self.normalize_input = normalize_input
        # Soft-assignment as a 1x1 convolution: scores (B, K, H, W).
        self.assignment = nn.Conv2d(self.feature_dim, self.num_clusters, kernel_size=1, bias=assignment_bias)
        # Cluster centres c_k, one row per cluster (K, D).
        self.centroids = nn.Parameter(torch.empty(self.num_clusters, self.feature_dim))
        nn.init.xavier_uniform_(self.centroids)

    @property
    def output_dim(self) -> int:
        return self.feature_dim * self.num_clusters

    def residuals(self, features: torch.Tensor) -> torch.Tensor:
        """Unnormalised aggregated residuals V, shape (B, D, K)."""
        if features.dim() != 4 or features.shape[1] != self.feature_dim:
            raise ValueError(f"NetVLAD expects (B, {self.feature_dim}, H, W) features, got {tuple(features.shape)}")
        # Computed in float32 even under autocast: the normalisations are precision-sensitive.
        with torch.autocast(features.device.type, enabled=False):
            x = features.float()
            if self.normalize_input:
                x = matconvnet_l2_normalize(x, dim=1)
            weight = self.assignment.weight.float()
            bias = self.assignment.bias.float() if self.assignment.bias is not None else None
            soft_assign = F.softmax(F.conv2d(x, weight, bias).flatten(2), dim=1)   # (B, K, N)
            x = x.flatten(2)                                                           # (B, D, N)
            # sum_n a_kn (x_dn - c_kd) = sum_n a_kn x_dn - c_kd sum_n a_kn: no (B, D, K, N) tensor.
            weighted_sum = torch.einsum("bkn,bdn->bdk", soft_assign, x)
            assignment_mass = soft_assign.sum(dim=2)                                   # (B, K)
            return weighted_sum - self.centroids.float().t().unsqueeze(0) * assignment_mass.unsqueeze(1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        vlad = self.residuals(features)
        vlad = matconvnet_l2_normalize(vlad, dim=1)          # intra-normalisation, per cluster
        return matconvnet_l2_normalize(vlad.flatten(1), dim=1)

    @torch.no_grad()
    def init_from_clusters(self, centroids: torch.Tensor, sample_features: torch.Tensor) -> float:
        """Initialise from k-means centres as the original code does; returns the sharpness alpha.

        ``centroids`` (K, D) come from k-means of L2-normalised local features, ``sample_features``
        (N, D) are (some of) those features. Without a bias the assignment weights are
        ``alpha * c_k / |c_k|``, with alpha set so that the best cluster gets ~100x the weight of
        the second-best one on average; with a bias, ``w_k = 2 alpha c_k, b_k = -alpha |c_k|^2``
        (the soft version of nearest-centre assignment).
        """
        centroids = centroids.to(self.centroids.device, torch.float32)
        if tuple(centroids.shape) != (self.num_clusters, self.feature_dim):
            raise ValueError(f"centroids must be ({self.num_clusters}, {self.feature_dim}), "
                             f"got {tuple(centroids.shape)}")
        sample = matconvnet_l2_normalize(sample_features.to(centroids.device, torch.float32), dim=1)
        unit_centroids = matconvnet_l2_normalize(centroids, dim=1)
        if self.num_clusters > 1:
            top2 = (sample @ unit_centroids.t()).topk(2, dim=1).values
            gap = float((top2[:, 0] - top2[:, 1]).mean())
            alpha = -math.log(0.01) / max(gap, 1e-6)
        else:
            alpha = 1.0
        self.centroids.copy_(centroids)
        if self.assignment.bias is None:
            weight = alpha * unit_centroids
        else:
            weight = 2.0 * alpha * centroids
            self.assignment.bias.copy_(-alpha * centroids.pow(2).sum(dim=1))
        self.assignment.weight.copy_(weight.view(self.num_clusters, self.feature_dim, 1, 1))
        return alpha

"""Backbones producing the local features NetVLAD aggregates.

- ``vgg16``: the in-project VGG-16 trunk cut at conv5_3 (before its ReLU), 512 channels,
  stride 16, as in the paper; ImageNet weights come from a torchvision checkpoint
  (``--vgg-weights``), the official NetVLAD weights from a ``*_struct.mat``.
- ``light``: a 5-layer conv net (stride 8, 128 channels, ~0.28 M parameters) that trains
  from scratch on CPU in minutes, for comparisons on the same data and budget.

Backbones take *normalised* images; ``InputNormalization`` turns our [0, 1] RGB into what the
weights expect: ImageNet mean/std for torchvision weights, ``255 * x - averageImage`` for
the MatConvNet checkpoint.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from mduit_loc.errors import MduitError
from mduit_loc.nn.vgg import IMAGENET_MEAN, IMAGENET_STD, VGG16Trunk

BACKBONES = ("vgg16", "light")
LIGHT_CHANNELS = (32, 64, 64, 128, 128)


class InputNormalization(nn.Module):
    """``(scale * x - mean) / std`` per channel; the buffers travel in the state dict."""

    def __init__(self, scale: float, mean: Sequence[float], std: Sequence[float]):
        super().__init__()
        self.scale = float(scale)
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.tensor([float(v) for v in mean]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([float(v) for v in std]).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (images * self.scale - self.mean) / self.std


def imagenet_normalization() -> InputNormalization:
    return InputNormalization(1.0, IMAGENET_MEAN, IMAGENET_STD)


def matconvnet_normalization(average_rgb: Sequence[float]) -> InputNormalization:
    """MatConvNet nets see RGB in [0, 255] minus the average colour, no std division."""
    return InputNormalization(255.0, average_rgb, (1.0, 1.0, 1.0))


class LightBackbone(nn.Module):
    """Small conv net for CPU training: stride 8, ``channels[-1]`` output channels.

    The last conv has no ReLU, like conv5_3 in the paper's network: NetVLAD works on signed
    features, which the L2 pre-normalisation handles.
    """

    def __init__(self, channels: Sequence[int] = LIGHT_CHANNELS):
        super().__init__()
        channels = [int(c) for c in channels]
        if len(channels) != 5 or min(channels) < 1:
            raise MduitError(f"the light backbone needs 5 positive channel counts, got {channels}")
        strides = (2, 2, 1, 2, 1)
        kernels = (5, 3, 3, 3, 3)
        layers: list[nn.Module] = []
        in_channels = 3
        for index, (out_channels, stride, kernel) in enumerate(zip(channels, strides, kernels)):
            layers.append(nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2))
            if index < len(channels) - 1:
                layers.append(nn.ReLU(inplace=True))
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self.out_channels = channels[-1]
        self.stride = 8
        for module in self.features:
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.features(images)


def vgg16_conv5_3() -> VGG16Trunk:
    """VGG-16 up to conv5_3 (last ReLU and pool dropped); normalisation is done outside."""
    return VGG16Trunk("conv5_3", imagenet_normalize=False)


def make_backbone(name: str, light_channels: Sequence[int] = LIGHT_CHANNELS) -> LightBackbone | VGG16Trunk:
    """An untrained backbone by name; it exposes ``out_channels``."""
    if name == "vgg16":
        return vgg16_conv5_3()
    if name == "light":
        return LightBackbone(light_channels)
    raise MduitError(f"unknown NetVLAD backbone {name!r}; one of {', '.join(BACKBONES)}")

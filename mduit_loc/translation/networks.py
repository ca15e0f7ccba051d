"""The MDUIT networks (paper §2.1, Fig. 2): E_c, E_a, G, D_i and D_a.

Sizes follow MUNIT (the paper's translation baseline, ref. [5]) where the paper is silent:
- ``ContentEncoder`` E_c: 7x7 stem, ``n_downsample`` stride-2 4x4 convs doubling the width,
  residual blocks; instance normalisation; f has c = base * 2**n_downsample channels at 1/2**n.
- ``AppearanceEncoder`` E_a: VGG-16 up to ``relu3_3`` (paper) -> stride-2 3x3 convs with ReLU ->
  global average pooling -> a linear map reshaped to W (c', c/groups, k, k).
- ``Generator`` G: residual blocks, nearest upsampling + 5x5 convs, 7x7 output conv, tanh mapped
  to [0, 1]. Layer normalisation (GroupNorm with one group) rather than instance normalisation,
  because IN would erase the per-channel scales that ``f ⊗ W`` writes the appearance into
  (``generator_norm="none"`` drops normalisation from G altogether). ``generator_coordinates``
  (beyond the paper) gives G the pixel position as two extra input channels.
- ``PatchDiscriminator``: stride-2 4x4 convs with LeakyReLU(0.2), a 1-channel logit map. D_i sees
  an image (3 channels), D_a two images concatenated along channels (6 channels).
All networks take RGB in [0, 1]; they normalise internally.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mduit_loc.nn.vgg import VGG16Trunk
from mduit_loc.translation.config import TranslationConfig


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "in":
        return nn.InstanceNorm2d(channels, affine=False)
    if kind == "ln":
        return nn.GroupNorm(1, channels)  # layer norm over (C, H, W) with per-channel affine
    return nn.Identity()


def conv_block(in_channels: int, out_channels: int, kernel: int, stride: int = 1, norm: str = "none",
               activation: str = "relu") -> nn.Sequential:
    """Reflect-padded conv -> norm -> activation."""
    padding = (kernel - stride + 1) // 2  # keeps H / stride for 3x3, 5x5, 7x7 (s=1) and 4x4 (s=2)
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, kernel, stride, padding=padding,
                                         padding_mode="reflect")]
    layers.append(_norm(norm, out_channels))
    if activation == "relu":
        layers.append(nn.ReLU(inplace=True))
    elif activation == "lrelu":
        layers.append(nn.LeakyReLU(0.2, inplace=True))
    return nn.Sequential(*layers)


class ResBlock(nn.Module):
    def __init__(self, channels: int, norm: str):
        super().__init__()
        self.body = nn.Sequential(conv_block(channels, channels, 3, norm=norm),
                                  conv_block(channels, channels, 3, norm=norm, activation="none"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ContentEncoder(nn.Module):
    """E_c: image (B, 3, H, W) in [0, 1] -> content feature f (B, c, H / 2**n, W / 2**n)."""

    def __init__(self, base_channels: int, n_downsample: int, res_blocks: int):
        super().__init__()
        layers: list[nn.Module] = [conv_block(3, base_channels, 7, norm="in")]
        channels = base_channels
        for _ in range(n_downsample):
            layers.append(conv_block(channels, channels * 2, 4, stride=2, norm="in"))
            channels *= 2
        layers += [ResBlock(channels, "in") for _ in range(res_blocks)]
        self.layers = nn.Sequential(*layers)
        self.out_channels = channels
        self.downsample_factor = 2 ** n_downsample

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(images * 2.0 - 1.0)


class AppearanceEncoder(nn.Module):
    """E_a: image -> appearance filter W (B, c', c/groups, k, k) from VGG-16 activations."""

    def __init__(self, trunk: VGG16Trunk, hidden: int, n_convs: int,
                 filter_shape: tuple[int, int, int, int], input_size: int | None = None):
        super().__init__()
        self.trunk = trunk
        self.input_size = input_size
        layers: list[nn.Module] = []
        channels = trunk.out_channels
        for _ in range(n_convs):
            layers += [nn.Conv2d(channels, hidden, 3, stride=2, padding=1), nn.ReLU(inplace=True)]
            channels = hidden
        self.convs = nn.Sequential(*layers)
        self.to_filter = nn.Linear(channels, int(torch.Size(filter_shape).numel()))
        self.filter_shape = tuple(filter_shape)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.input_size is not None and tuple(images.shape[-2:]) != (self.input_size, self.input_size):
            # in float32: the antialiased resize has no bf16 CPU kernel (a translated image under autocast)
            images = F.interpolate(images.float(), size=(self.input_size, self.input_size), mode="bilinear",
                                   align_corners=False, antialias=True)
        pooled = self.convs(self.trunk(images)).mean(dim=(2, 3))
        return self.to_filter(pooled).view(-1, *self.filter_shape)


class CoordinateChannels(nn.Module):
    """Appends two channels, the row and column of each pixel in [-1, 1] (CoordConv, Liu et al. 2018).

    A reflect-padded fully convolutional network cannot tell the top of an image from its bottom;
    with these channels it can put light where a condition puts it (sky, lamps, headlight cone)."""

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = features.shape
        rows = torch.linspace(-1.0, 1.0, height, device=features.device, dtype=features.dtype)
        columns = torch.linspace(-1.0, 1.0, width, device=features.device, dtype=features.dtype)
        grid = torch.stack(torch.meshgrid(rows, columns, indexing="ij"))
        return torch.cat([features, grid.expand(batch, -1, -1, -1)], dim=1)


class Generator(nn.Module):
    """G: appearance-representative content f ⊗ W (B, c', h, w) -> image (B, 3, h * 2**n, w * 2**n).

    ``coordinates=True`` first mixes two position channels into f ⊗ W (``CoordinateChannels``);
    ``width`` (0, the default: the input's channels) widens G with a 3x3 entry conv."""

    def __init__(self, in_channels: int, n_upsample: int, res_blocks: int, norm: str = "ln",
                 coordinates: bool = False, width: int = 0):
        super().__init__()
        channels = width or in_channels
        layers: list[nn.Module] = [CoordinateChannels()] if coordinates else []
        if coordinates or channels != in_channels:
            layers.append(conv_block(in_channels + 2 * coordinates, channels, 3, norm=norm))
        layers += [ResBlock(channels, norm) for _ in range(res_blocks)]
        for _ in range(n_upsample):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"),
                       conv_block(channels, channels // 2, 5, norm=norm)]
            channels //= 2
        layers.append(nn.Conv2d(channels, 3, 7, padding=3, padding_mode="reflect"))
        self.layers = nn.Sequential(*layers)

    def forward(self, stylised_content: torch.Tensor) -> torch.Tensor:
        return (torch.tanh(self.layers(stylised_content)) + 1.0) * 0.5


class PatchDiscriminator(nn.Module):
    """D_i (3 input channels) or D_a (6: two images along channels): logit map (B, 1, h, w)."""

    def __init__(self, in_channels: int, base_channels: int, n_layers: int):
        super().__init__()
        layers: list[nn.Module] = []
        channels, width = in_channels, base_channels
        for _ in range(n_layers):
            layers += [nn.Conv2d(channels, width, 4, stride=2, padding=1, padding_mode="reflect"),
                       nn.LeakyReLU(0.2, inplace=True)]
            channels, width = width, width * 2
        layers.append(nn.Conv2d(channels, 1, 3, padding=1, padding_mode="reflect"))
        self.layers = nn.Sequential(*layers)
        self.in_channels = in_channels

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.layers(images * 2.0 - 1.0)


def init_weights(module: nn.Module, std: float | None) -> None:
    """N(0, std) conv/linear weights, zero biases (paper: std 0.001). ``None`` keeps PyTorch's init.

    Norm layers keep their identity initialisation; a pretrained or untrained VGG trunk is not
    touched (std 0.001 through seven un-normalised VGG layers would make its output vanish).
    """
    if std is None:
        return
    trunks = [name + "." for name, child in module.named_modules() if isinstance(child, VGG16Trunk)]
    for name, child in module.named_modules():
        if any((name + ".").startswith(prefix) for prefix in trunks):
            continue
        if isinstance(child, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(child.weight, 0.0, std)
            if child.bias is not None:
                nn.init.zeros_(child.bias)


def image_discriminator(config: TranslationConfig) -> PatchDiscriminator:
    return PatchDiscriminator(3, config.disc_base_channels, config.disc_layers)


def appearance_discriminator(config: TranslationConfig) -> PatchDiscriminator:
    return PatchDiscriminator(6, config.disc_base_channels, config.disc_layers)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())

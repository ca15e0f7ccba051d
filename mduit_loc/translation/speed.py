"""The training run's speed settings (``channels_last``, ``compile_model``) applied to its networks.

Both are speed only (``mduit_loc.nn.speed``): a step gives the same losses and gradients up to float
rounding. ``--set channels_last=true`` stores weights and activations NHWC; ``--set
compile_model=true`` routes E_c, E_a, G, H, D_i and D_a through ``torch.compile`` one by one (the
appearance-adaptive convolution and the chunking between them stay eager), with a warning and the
eager networks when compiling fails. Mixed precision (bf16 autocast on CUDA) is ``mixed_precision``.
"""
from __future__ import annotations

from torch import nn

from mduit_loc.nn.speed import compile_networks, to_channels_last
from mduit_loc.translation.config import TranslationConfig


def speed_networks(model: nn.Module, discriminators: nn.Module | None = None) -> dict[str, nn.Module]:
    """The separately compiled networks of an MDUIT model (and its discriminators)."""
    networks = {name: getattr(model, name) for name in ("content_encoder", "appearance_encoder", "generator", "head")}
    if discriminators is not None:
        networks.update({"image_discriminator": discriminators.image,
                         "appearance_discriminator": discriminators.appearance})
    return networks


def apply_speed_options(config: TranslationConfig, model: nn.Module, discriminators: nn.Module | None = None,
                        ) -> list[str]:
    """Apply ``config.channels_last`` and ``config.compile_model``; returns the networks compiled."""
    networks = speed_networks(model, discriminators)
    if config.channels_last:
        to_channels_last(*networks.values())
    if config.compile_model:
        return compile_networks(networks)
    return []

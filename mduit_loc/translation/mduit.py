"""The MDUIT model used at inference: E_c, E_a, G and H behind one small interface.

What retrieval (``mduit_loc.retrieval.descriptor_models``) and translation use:

- ``describe(images) -> z`` (B, K), L2-normalised: ``H(E_c(I))``, the retrieval descriptor.
- ``appearance_filters(images) -> W`` (B, c', c/groups, k, k).
- ``translate(images, filters) -> images`` in [0, 1]: ``G(E_c(I) ⊗ W)``; ``filters`` has B or 1 rows.
- ``domain_filters() -> {domain: W (1, c', c/groups, k, k)}``: the mean appearance filter of each
  training domain (saved by training in ``RUN/appearances.pt``), for translating a database into
  every domain's appearance without choosing exemplar images.
Images are float RGB in [0, 1], (B, 3, H, W). Networks are fully convolutional: ``describe`` works
at any size >= 4 * downsample_factor; ``translate`` pads to a multiple of the factor and crops back.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mduit_loc.errors import MduitError
from mduit_loc.nn.vgg import VGG16Trunk, make_vgg16_trunk
from mduit_loc.translation.adaptive_conv import appearance_adaptive_conv
from mduit_loc.translation.config import TranslationConfig
from mduit_loc.translation.head import make_head
from mduit_loc.translation.networks import AppearanceEncoder, ContentEncoder, Generator, count_parameters, init_weights


class MDUIT(nn.Module):
    def __init__(self, config: TranslationConfig, vgg_trunk: VGG16Trunk | None = None):
        super().__init__()
        self.config = config
        c = config.content_channels
        self.content_encoder = ContentEncoder(config.encoder_base_channels, config.n_downsample,
                                              config.encoder_res_blocks)
        trunk = vgg_trunk if vgg_trunk is not None else VGG16Trunk(config.vgg_layer)
        self.appearance_encoder = AppearanceEncoder(trunk, config.appearance_hidden, config.appearance_convs,
                                                    config.filter_shape, config.appearance_input_size)
        self.generator = Generator(c, config.n_downsample, config.generator_res_blocks, config.generator_norm,
                                   coordinates=config.generator_coordinates,
                                   width=config.generator_width)
        self.head = make_head(config.head, c, hidden=config.head_hidden, out_dim=config.descriptor_dim,
                              gem_p=config.gem_p, grid=config.head_grid,
                              clusters=config.head_clusters)
        self.checksum = ""
        self._domain_filters: dict[str, torch.Tensor] = {}
        self.domain_exemplars: dict[str, list[str]] = {}

    # --- the contract ----------------------------------------------------------------------
    @property
    def image_size(self) -> tuple[int, int]:
        return self.config.image_size

    @property
    def descriptor_dim(self) -> int:
        out_dim = self.head.out_dim
        assert isinstance(out_dim, int)
        return out_dim

    @property
    def downsample_factor(self) -> int:
        return self.config.downsample_factor

    @property
    def can_translate(self) -> bool:
        """False for the ``--no-i2i`` ablation, whose E_a and G were never trained."""
        return bool(self.config.use_i2i)

    def content(self, images: torch.Tensor) -> torch.Tensor:
        return self.content_encoder(images)

    def describe(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.content_encoder(images))

    def appearance_filters(self, images: torch.Tensor) -> torch.Tensor:
        return self.appearance_encoder(images)

    def generate(self, content: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
        """G(f ⊗ W)."""
        stylised = appearance_adaptive_conv(content, filters.to(content.device), self.config.filter_groups)
        return self.generator(stylised)

    def translate(self, images: torch.Tensor, filters: torch.Tensor) -> torch.Tensor:
        if not self.can_translate:
            raise MduitError("this MDUIT model was trained without the translation module (--no-i2i); "
                             "it gives descriptors only")
        height, width = images.shape[-2:]
        factor = self.downsample_factor
        pad_h, pad_w = (-height) % factor, (-width) % factor
        if pad_h or pad_w:
            mode = "reflect" if min(height, width) > max(pad_h, pad_w) else "replicate"
            images = F.pad(images, (0, pad_w, 0, pad_h), mode=mode)
        out = self.generate(self.content_encoder(images), filters)
        return out[..., :height, :width]

    def domain_filters(self) -> dict[str, torch.Tensor]:
        """{domain: mean appearance filter (1, c', c/groups, k, k)} on the model's device."""
        if not self._domain_filters:
            raise MduitError("no per-domain appearance filters with this model (RUN/appearances.pt missing)")
        device = next(self.parameters()).device
        return {name: w.to(device) for name, w in self._domain_filters.items()}

    def set_domain_filters(self, filters: dict[str, torch.Tensor], exemplars: dict[str, list[str]]) -> None:
        self._domain_filters = {name: w.detach().reshape(1, *self.config.filter_shape).float().cpu()
                                for name, w in filters.items()}
        self.domain_exemplars = dict(exemplars)

    @property
    def domains(self) -> list[str]:
        return sorted(self._domain_filters)

    def parameter_counts(self) -> dict[str, int]:
        """Parameters per network; ``appearance_encoder`` includes its VGG trunk, and
        ``appearance_filter_head`` is the rest of E_a (convs + the map to W); f ⊗ W itself has none."""
        trunk = count_parameters(self.appearance_encoder.trunk)
        total_appearance = count_parameters(self.appearance_encoder)
        return {"content_encoder": count_parameters(self.content_encoder),
                "appearance_encoder": total_appearance,
                "appearance_encoder_vgg_trunk": trunk,
                "appearance_filter_head": total_appearance - trunk,
                "generator": count_parameters(self.generator), "head": count_parameters(self.head)}


def build_mduit(config: TranslationConfig, vgg_weights: str | None = None, warn_untrained_vgg: bool = True) -> MDUIT:
    """A freshly initialised model (N(0, init_std) weights; VGG trunk pretrained when weights given)."""
    if vgg_weights or warn_untrained_vgg:
        trunk = make_vgg16_trunk(config.vgg_layer, vgg_weights, "MDUIT appearance encoder")
    else:
        trunk = VGG16Trunk(config.vgg_layer)
    model = MDUIT(config, trunk)
    init_weights(model, config.init_std)
    return model

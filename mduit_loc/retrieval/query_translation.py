"""Query-side translation (issue 10 item 3, beyond the paper; as ToDayGAN did for night queries).

Each query is translated into one condition's appearance (the map's, e.g. ``overcast-reference``)
before it is described, so a descriptor that is not invariant to appearance (raw pixels, NetVLAD)
compares a query with the map in the map's own appearance. The appearance is the condition's
domain-mean filter W of an MDUIT run (``MDUIT.domain_filters()``: no exemplar choice). The
translator is any MDUIT run (``translator``); by default the index's own model when that is one.

``TranslatingDescriptor`` wraps the query descriptor: images are read at the translator's size,
translated, resized to the descriptor's size (bilinear, antialiased, as the translated database) and
described. Its vectors live in the descriptor's space, so it has the descriptor's identity and the
index accepts it. Only retrieval sees the translation: PnP refinement matches the original image.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mduit_loc.errors import MduitError
from mduit_loc.retrieval.descriptor_models import GlobalDescriptor, load_translator
from mduit_loc.runtime import autocast


@dataclass(frozen=True, kw_only=True)
class QueryTranslationOptions:
    condition: str                  # --translate-queries-to: the target condition (a domain of the translator)
    translator: str | None = None   # --translator RUN (default: the index's model, when it is an MDUIT run)


class TranslatingDescriptor(GlobalDescriptor):
    """``descriptor`` applied to images first translated by ``translator`` with the filter ``filters``."""

    def __init__(self, descriptor: GlobalDescriptor, translator, filters: torch.Tensor, condition: str):
        self.inner, self.translator_module, self.condition = descriptor, translator, condition
        self.filters = filters
        self.name, self.dim, self.checksum, self.spec = descriptor.name, descriptor.dim, descriptor.checksum, \
            descriptor.spec
        self.device = descriptor.device
        height, width = translator.image_size
        self.image_size = (int(height), int(width))   # queries are read at the translator's size

    def describe_identity(self) -> dict:
        """The wrapped descriptor's: the vectors are in its space (the index checks this)."""
        return self.inner.describe_identity()

    def translate(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W) in [0, 1] -> translated, at the descriptor's size."""
        device = self.filters.device
        with torch.inference_mode(), autocast(device):   # bf16 on CUDA, as the database's translations
            batch = images.to(device).float()
            translated = self.translator_module.translate(batch, self.filters.expand(len(batch),
                                                                                    *self.filters.shape[1:]))
            translated = translated.float().clamp(0, 1)
        if tuple(translated.shape[-2:]) != tuple(self.inner.image_size):
            translated = F.interpolate(translated, size=tuple(self.inner.image_size), mode="bilinear",
                                       align_corners=False, antialias=True)
        return translated

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        return self.inner(self.translate(images))


def translating_descriptor(descriptor: GlobalDescriptor, options: QueryTranslationOptions,
                           device: torch.device) -> TranslatingDescriptor:
    """Wrap the query ``descriptor``; the translator is ``options.translator`` or the descriptor's own MDUIT."""
    if options.translator is not None:
        translator = load_translator(options.translator, device)
    else:
        translator = descriptor.translator
        if translator is None:
            raise MduitError(f"--translate-queries-to {options.condition}: the index's descriptor "
                             f"({descriptor.spec}) cannot translate; give an MDUIT run with --translator RUN")
    filters = translator.domain_filters()   # raises when the run has no appearances.pt
    if options.condition not in filters:
        raise MduitError(f"--translate-queries-to {options.condition}: the translator has no such domain; "
                         f"it has {', '.join(sorted(filters))}")
    return TranslatingDescriptor(descriptor, translator, filters[options.condition], options.condition)

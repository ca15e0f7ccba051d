"""Query-side translation (issue 10 item 3, beyond the paper; as ToDayGAN did for night queries).

Each query is translated into one condition's appearance (the map's, e.g. ``overcast-reference``)
before it is described, so a descriptor that is not invariant to appearance (raw pixels, NetVLAD)
compares a query with the map in the map's own appearance. The appearance is the condition's
domain-mean filter W of an MDUIT run (``MDUIT.domain_filters()``: no exemplar choice). The
translator is any MDUIT run (``translator``); by default the index's own model when that is one.

``TranslatingDescriptor`` wraps the query descriptor: images are read at the translator's size,
translated, resized to the descriptor's size (bilinear, antialiased, as the translated database) and
described. Its vectors live in the descriptor's space, so it has the descriptor's identity and the
index accepts it. Only retrieval sees the translation: PnP refinement matches the original image. With
``keep_original`` w > 0 the query's vector is the normalised blend ``(1 - w) d(translated) + w d(original)``,
so a translator that draws the condition's average street does not erase what only the original shows.
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
    keep_original: float = 0.0      # --keep-original W: weight of the untranslated query's vector in the blend

    def __post_init__(self) -> None:
        if not 0.0 <= self.keep_original < 1.0:
            raise MduitError(f"--keep-original must be in [0, 1), got {self.keep_original}")


class TranslatingDescriptor(GlobalDescriptor):
    """``descriptor`` applied to images first translated by ``translator`` with the filter ``filters``."""

    def __init__(self, descriptor: GlobalDescriptor, translator, filters: torch.Tensor, condition: str,
                 keep_original: float = 0.0):
        self.inner, self.translator_module, self.condition = descriptor, translator, condition
        self.filters, self.keep_original = filters, keep_original
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
        return self._at_descriptor_size(translated)

    def _at_descriptor_size(self, images: torch.Tensor) -> torch.Tensor:
        if tuple(images.shape[-2:]) != tuple(self.inner.image_size):
            images = F.interpolate(images, size=tuple(self.inner.image_size), mode="bilinear",
                                   align_corners=False, antialias=True)
        return images

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        translated = self.inner(self.translate(images))
        if self.keep_original <= 0:
            return translated
        original = self.inner(self._at_descriptor_size(images.to(translated.device).float()))
        blend = ((1 - self.keep_original) * F.normalize(translated.float(), dim=-1)
                 + self.keep_original * F.normalize(original.float(), dim=-1))
        return F.normalize(blend, dim=-1).to(translated.dtype)


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
    return TranslatingDescriptor(descriptor, translator, filters[options.condition], options.condition,
                                 options.keep_original)

"""One training step's computations: the generator-side forward, and both objectives (eq. 6).

``TrainForward`` runs E_c, E_a, G and H on a step's batch in one call, so that a single
DistributedDataParallel wrapper synchronises all their gradients. The contrastive module sees, per
source, two positives: the real image of the same place from the epoch plan (§3.1's pose-supervised
positive; masked out when the source has none) and the translated image I_{s->t} (eq. 5). With the
``--no-i2i`` ablation only E_c and H run, and a randomly colour-jittered copy of the source replaces
I_{s->t} (Table 1, footnote 1); ``jitter_positive`` keeps that copy as a third positive beside I_{s->t}.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
from torch import nn
from torch.func import functional_call

from mduit_loc.nn.chunking import apply_in_chunks, elements_per_sample
from mduit_loc.translation import losses
from mduit_loc.translation.adaptive_conv import appearance_adaptive_conv
from mduit_loc.translation.config import TranslationConfig
from mduit_loc.translation.mduit import MDUIT
from mduit_loc.translation.networks import appearance_discriminator, image_discriminator
from mduit_loc.translation.pairing import (
    FIRST_NEGATIVE,
    REAL_POSITIVE,
    SOURCE,
    TARGET,
    TARGET_NEGATIVE,
    TARGET_POSITIVE,
)


def color_jitter(images: torch.Tensor) -> torch.Tensor:
    """Random brightness, contrast, saturation and per-channel gain per image (torch's global RNG)."""
    batch = len(images)
    factors = torch.rand(batch, 6).to(images.device)
    brightness = (0.3 + 1.2 * factors[:, 0]).view(-1, 1, 1, 1)          # dark (night-like) to bright
    contrast = (0.5 + factors[:, 1]).view(-1, 1, 1, 1)
    saturation = (0.3 + 1.2 * factors[:, 2]).view(-1, 1, 1, 1)
    gains = (0.8 + 0.4 * factors[:, 3:6]).view(-1, 3, 1, 1)               # a colour cast
    grey = (images * torch.tensor([0.299, 0.587, 0.114], device=images.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
    out = grey + saturation * (images - grey)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    out = mean + contrast * (out - mean)
    return (out * brightness * gains).clamp(0, 1)


@dataclass(frozen=True)
class StepLabels:
    """What the plan says about a step's samples beyond their pixels (the images carry no indices).

    ``real_positive`` (B,): the sample's real positive is another image of its place (else masked).
    ``in_batch_negative`` (B, M) or None: which of the step's M real images (sources, real positives,
    negatives, in that order) may serve as extra negatives of each source (not the same place).
    """

    real_positive: torch.Tensor
    in_batch_negative: torch.Tensor | None = None
    target_same_place: torch.Tensor | None = None   # (B,): the target shows the source's place


class Discriminators(nn.Module):
    """D_i and D_a; ``forward`` is the discriminators' own step (real vs translated)."""

    def __init__(self, config: TranslationConfig):
        super().__init__()
        self.image = image_discriminator(config)
        self.appearance = appearance_discriminator(config)

    def forward(self, batch: torch.Tensor, translated: torch.Tensor) -> dict[str, torch.Tensor]:
        source, target, target_positive = batch[:, SOURCE], batch[:, TARGET], batch[:, TARGET_POSITIVE]
        count = len(source)
        image_logits = apply_in_chunks(self.image, torch.cat([source, target, translated]))
        pairs = torch.cat([torch.cat([target, target_positive], 1), torch.cat([target, translated], 1)])
        pair_logits = apply_in_chunks(self.appearance, pairs)
        return {"real_source": image_logits[:count], "real_target": image_logits[count:2 * count],
                "fake": image_logits[2 * count:], "same_domain": pair_logits[:count],
                "translated_pair": pair_logits[count:]}


def with_frozen_weights(module: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``module(images)`` whose weights get no gradient; the gradient still flows back into ``images``."""
    state = {name: value.detach() for name, value in module.named_parameters()}
    return functional_call(module, {**state, **dict(module.named_buffers())}, (images,))


class TrainForward(nn.Module):
    def __init__(self, model: MDUIT):
        super().__init__()
        self.model = model
        self.config = model.config

    def forward(self, batch: torch.Tensor) -> dict[str, torch.Tensor]:
        """``batch`` (B, R, 3, H, W) with R = FIRST_NEGATIVE + N_neg roles (see ``pairing``)."""
        count, n_neg = batch.shape[0], batch.shape[1] - FIRST_NEGATIVE
        source, real_positive = batch[:, SOURCE], batch[:, REAL_POSITIVE]
        negatives = batch[:, FIRST_NEGATIVE:].flatten(0, 1)
        model = self.model
        if not self.config.use_i2i:
            jittered = color_jitter(source)
            z = apply_in_chunks(model.head, apply_in_chunks(model.content_encoder,
                                                            torch.cat([source, real_positive, jittered, negatives])))
            return {"z_source": z[:count], "z_positives": torch.stack([z[count:2 * count], z[2 * count:3 * count]], 1),
                    "z_negatives": z[3 * count:].view(count, n_neg, -1), "positive": jittered}
        # jitter_positive: the jittered copies go through E_c and H with the real images, after the negatives
        jitter_images = [color_jitter(source)] if self.config.jitter_positive else []
        content = apply_in_chunks(model.content_encoder, torch.cat([source, real_positive, negatives, *jitter_images]))
        end_negatives = 2 * count + len(negatives)
        content_source, content_real = content[:count], content[count:2 * count]
        content_negatives, content_jittered = content[2 * count:end_negatives], content[end_negatives:]
        # the first `t` samples also train the translation module; all of them train the descriptor
        t = min(self.config.translation_batch_size or count, count)
        appearance_images = [source[:t], batch[:t, TARGET], batch[:t, TARGET_NEGATIVE]]
        if self.config.weight_domain_filters > 0:
            appearance_images.append(batch[:t, TARGET_POSITIVE])
        filters = apply_in_chunks(model.appearance_encoder, torch.cat(appearance_images)).split(t)
        filters_source, filters_target, filters_target_negative = filters[:3]
        groups = self.config.filter_groups
        # f_s ⊗ W_t (translation) and f_s ⊗ W_s (self-reconstruction) in one grouped conv and one G pass
        # without translation_trains_content, no translation loss reaches E_c's weights (see config)
        trains_content = self.config.translation_trains_content
        content_for_g = content_source[:t] if trains_content else content_source[:t].detach()
        stylised = appearance_adaptive_conv(torch.cat([content_for_g, content_for_g]),
                                            torch.cat([filters_target, filters_source]), groups)
        translated, self_reconstruction = apply_in_chunks(model.generator, stylised).split(t)
        encoder = model.content_encoder
        encode_translated = encoder if trains_content else partial(with_frozen_weights, encoder)
        content_translated = apply_in_chunks(encode_translated, translated,   # E_c's measurement, cached per module
                                             per_sample=elements_per_sample(encoder, translated))
        filters_translated = apply_in_chunks(model.appearance_encoder, translated)
        cycle = apply_in_chunks(model.generator, appearance_adaptive_conv(content_translated, filters_source, groups))
        if self.config.translated_positive == "detached":  # an augmented copy: NCE does not train G through it
            content_for_z = apply_in_chunks(model.content_encoder, translated.detach())
        else:
            content_for_z = content_translated if trains_content else apply_in_chunks(encoder, translated)
        z = apply_in_chunks(model.head, torch.cat([content_source, content_real, content_for_z, content_negatives,
                                                   content_jittered]))
        z_source, z_real, z_translated = z[:count], z[count:2 * count], z[2 * count:2 * count + t]
        z_negatives, z_jittered = z[2 * count + t:end_negatives + t], z[end_negatives + t:]
        # samples beyond the translation batch have no I_{s->t}: a placeholder, masked in the loss
        z_translated = torch.cat([z_translated, z_source[t:].detach()])
        positives = [z_real, z_translated, *([z_jittered] if self.config.jitter_positive else [])]
        negative_for_g = content_negatives.view(count, n_neg, *content_source.shape[1:])[:t, 0]
        return {
            "translated": translated, "self_reconstruction": self_reconstruction, "cycle_reconstruction": cycle,
            "content_source": content_for_g, "content_translated": content_translated,
            "content_negative": negative_for_g if trains_content else negative_for_g.detach(),
            "filters_target": filters_target, "filters_translated": filters_translated,
            "filters_target_negative": filters_target_negative,
            **({"filters_target_positive": filters[3]} if len(filters) > 3 else {}),
            "z_source": z_source, "z_positives": torch.stack(positives, 1),
            "z_negatives": z_negatives.view(count, n_neg, -1),
        }


def contrastive_term_name(config: TranslationConfig) -> str:
    """The logged name of the contrastive module's loss: eq. 5 or the ablation that replaces it."""
    if config.use_nce:
        return "nce"
    return "positive_margin" if config.nce_ablation_loss == "margin" else "positive_l1"


def contrastive_terms(out: dict[str, torch.Tensor], labels: StepLabels,
                      config: TranslationConfig) -> dict[str, torch.Tensor]:
    """The contrastive module's loss (eq. 5 over both positives, or the ablation that replaces it) and its
    accuracy."""
    z_source, z_positives, z_negatives = out["z_source"], out["z_positives"], out["z_negatives"]
    count = len(z_source)
    translated_rows = len(out["translated"]) if "translated" in out else count
    if config.translated_positive == "off":  # (without I2I its stand-in, the jittered copy, is off too)
        translated_rows = 0
    columns = [labels.real_positive.to(z_source.device), torch.arange(count, device=z_source.device) < translated_rows]
    if config.use_i2i and config.jitter_positive:  # the jittered copy beside I_{s->t}
        columns.append(torch.ones(count, dtype=torch.bool, device=z_source.device))
    mask = torch.stack(columns, 1)
    negative_logits = losses.negative_similarities(z_source, z_negatives, out, labels.in_batch_negative)
    nce, accuracy = losses.multi_positive_nce(z_source, z_positives, mask, negative_logits, config.nce_temperature)
    name = contrastive_term_name(config)
    if name == "positive_margin":
        loss = losses.positive_margin_loss(z_source, z_positives, mask, negative_logits, config.content_margin)
    elif name == "positive_l1":
        loss = losses.positive_l1_loss(z_source, z_positives, mask)
    else:
        loss = nce
    return {name: loss, "nce_acc": accuracy}


def generator_objective(out: dict[str, torch.Tensor], batch: torch.Tensor, discriminators: Discriminators,
                        config: TranslationConfig, labels: StepLabels) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Eq. 6 for E_c, E_a, G and H (discriminators fixed). Returns (total, named terms)."""
    terms = contrastive_terms(out, labels, config)
    total = config.weight_nce * terms[contrastive_term_name(config)]
    if config.use_i2i:
        translated = out["translated"]
        source, target = batch[:len(translated), SOURCE], batch[:len(translated), TARGET]
        terms["adv_image"] = losses.generator_adversarial_loss(apply_in_chunks(discriminators.image, translated),
                                                               config.gan_mode)
        terms["adv_appearance"] = losses.generator_adversarial_loss(
            apply_in_chunks(discriminators.appearance, torch.cat([target, translated], 1)), config.gan_mode)
        terms["rec_self"] = losses.reconstruction_loss(out["self_reconstruction"], source)
        terms["rec_cycle"] = losses.reconstruction_loss(out["cycle_reconstruction"], source)
        terms["con_content"] = losses.content_consistency_loss(out["content_source"], out["content_translated"],
                                                               out["content_negative"], config.content_margin)
        terms["con_appearance"] = losses.filter_consistency_loss(out["filters_target"], out["filters_translated"],
                                                                 out["filters_target_negative"])
        if config.weight_paired > 0 and labels.target_same_place is not None:
            terms["paired"] = losses.paired_layout_loss(translated, target, labels.target_same_place[:len(translated)],
                                                        config.paired_grid, config.paired_norm)
            total = total + config.weight_paired * terms["paired"]
        if config.weight_domain_filters > 0:
            terms["con_domain"] = losses.filter_consistency_loss(out["filters_target"], out["filters_target_positive"],
                                                                 out["filters_target_negative"])
            total = total + config.weight_domain_filters * terms["con_domain"]
        total = (total + config.weight_adv_image * terms["adv_image"]
                 + config.weight_adv_appearance * terms["adv_appearance"]
                 + config.weight_rec_self * terms["rec_self"] + config.weight_rec_cycle * terms["rec_cycle"]
                 + config.weight_con_content * terms["con_content"]
                 + config.weight_con_appearance * terms["con_appearance"])
    terms["total_g"] = total
    return total, terms


def discriminator_objective(logits: dict[str, torch.Tensor], config: TranslationConfig) -> torch.Tensor:
    """Eq. 2 for D_i (I_s, I_t real; I_{s->t} fake) plus D_a ((I_t, I_t+) vs (I_t, I_{s->t}))."""
    image = losses.discriminator_loss([logits["real_source"], logits["real_target"]], [logits["fake"]],
                                      config.gan_mode)
    appearance = losses.discriminator_loss([logits["same_domain"]], [logits["translated_pair"]], config.gan_mode)
    return config.weight_adv_image * image + config.weight_adv_appearance * appearance

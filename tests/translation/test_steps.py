"""The contrastive module's positives: real image, I_{s->t} and, with ``jitter_positive``, the jittered copy;
the generator's objective terms."""
import pytest
import torch

from mduit_loc.translation import losses
from mduit_loc.translation.mduit import build_mduit
from mduit_loc.translation.pairing import TARGET
from mduit_loc.translation.steps import Discriminators, StepLabels, TrainForward, contrastive_terms, generator_objective

from .conftest import small_config


def _forward(config):
    torch.manual_seed(0)
    model = build_mduit(config, warn_untrained_vgg=False)
    batch = torch.rand(3, config.rows_per_sample, 3, *config.image_size)
    torch.manual_seed(1)
    with torch.no_grad():
        return TrainForward(model)(batch)


def test_full_model_has_two_positives_by_default():
    out = _forward(small_config(batch_size=3))
    assert out["z_positives"].shape[:2] == (3, 2)


def test_jitter_positive_is_a_third_positive_of_every_sample():
    config = small_config(batch_size=3, translation_batch_size=3, jitter_positive=True)
    out = _forward(config)
    assert out["z_positives"].shape[:2] == (3, 3)
    # the second sample has no real positive; its I_{s->t} and jittered copy still count
    labels = StepLabels(real_positive=torch.tensor([True, False, True]))
    nce = contrastive_terms(out, labels, config)["nce"]
    negatives = losses.negative_similarities(out["z_source"], out["z_negatives"], out, None)
    three = torch.tensor([[True, True, True], [False, True, True], [True, True, True]])
    expected = losses.multi_positive_nce(out["z_source"], out["z_positives"], three, negatives,
                                         config.nce_temperature)[0]
    torch.testing.assert_close(nce, expected)
    without_jitter = losses.multi_positive_nce(out["z_source"], out["z_positives"][:, :2], three[:, :2], negatives,
                                               config.nce_temperature)[0]
    assert not torch.isclose(nce, without_jitter)


@pytest.mark.parametrize("norm", ["l1", "l2"])
def test_generator_objective_scores_the_layout_with_the_configured_norm(norm):
    config = small_config(batch_size=3, translation_batch_size=2, weight_paired=50.0, paired_grid=(2, 2),
                          paired_norm=norm)
    torch.manual_seed(0)
    batch = torch.rand(3, config.rows_per_sample, 3, *config.image_size)
    model = build_mduit(config, warn_untrained_vgg=False)
    with torch.no_grad():
        out = TrainForward(model)(batch)
        labels = StepLabels(real_positive=torch.ones(3, dtype=torch.bool),
                            target_same_place=torch.tensor([True, False, True]))
        _, terms = generator_objective(out, batch, Discriminators(config), config, labels)
    translated, target = out["translated"], batch[:2, TARGET]
    expected = losses.paired_layout_loss(translated, target, torch.tensor([True, False]), (2, 2), norm)
    torch.testing.assert_close(terms["paired"], expected)
    other = losses.paired_layout_loss(translated, target, torch.tensor([True, False]), (2, 2),
                                      "l2" if norm == "l1" else "l1")
    assert not torch.isclose(terms["paired"], other)


def _gradients(config, terms_used):
    """Gradients of E_c's and G's weights under the sum of the named generator terms."""
    torch.manual_seed(0)
    batch = torch.rand(3, config.rows_per_sample, 3, *config.image_size)
    model = build_mduit(config, warn_untrained_vgg=False)
    out = TrainForward(model)(batch)
    labels = StepLabels(real_positive=torch.ones(3, dtype=torch.bool))
    _, terms = generator_objective(out, batch, Discriminators(config), config, labels)
    sum(terms[name] for name in terms_used).backward()

    def flat(module):
        return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten()
                          for p in module.parameters()])
    return flat(model.content_encoder), flat(model.generator)


TRANSLATION_TERMS = ("adv_image", "rec_self", "rec_cycle", "con_content")


@pytest.mark.parametrize("trains_content", [True, False])
def test_translation_losses_reach_the_content_encoder_only_when_configured(trains_content):
    config = small_config(batch_size=3, translation_batch_size=2, translation_trains_content=trains_content)
    content_encoder, generator = _gradients(config, TRANSLATION_TERMS)
    assert generator.abs().sum() > 0
    assert bool(content_encoder.abs().sum() > 0) == trains_content
    assert _gradients(config, ("nce",))[0].abs().sum() > 0      # the contrastive term trains E_c either way


def test_freezing_the_content_encoder_leaves_the_generators_gradient_unchanged():
    # E_c(I_{s->t}) with frozen weights still passes the cycle and content losses' gradient back to G.
    with_content = _gradients(small_config(batch_size=3, translation_batch_size=2), TRANSLATION_TERMS)[1]
    frozen = small_config(batch_size=3, translation_batch_size=2, translation_trains_content=False)
    torch.testing.assert_close(_gradients(frozen, TRANSLATION_TERMS)[1], with_content)

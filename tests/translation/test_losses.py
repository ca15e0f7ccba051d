"""Each loss against a case computed by hand."""
import math

import pytest
import torch

from mduit_loc.translation import losses


def test_nce_matches_hand_computation():
    query = torch.tensor([[1.0, 0.0]])
    positive = torch.tensor([[1.0, 0.0]])
    negatives = torch.tensor([[[0.0, 1.0], [-1.0, 0.0]]])
    loss, accuracy = losses.nce_loss(query, positive, negatives, temperature=0.5)
    # logits: 1/0.5 = 2, 0/0.5 = 0, -1/0.5 = -2
    expected = -math.log(math.exp(2) / (math.exp(2) + math.exp(0) + math.exp(-2)))
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert accuracy.item() == 1.0


def test_nce_accuracy_counts_queries_whose_positive_wins():
    query = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    positive = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    negatives = torch.tensor([[[0.0, 1.0]], [[1.0, 0.0]]])
    loss, accuracy = losses.nce_loss(query, positive, negatives, temperature=1.0)
    # sample 1: -log(e/(e+1)); sample 2: -log(1/(1+e))
    expected = (-math.log(math.e / (math.e + 1)) - math.log(1 / (1 + math.e))) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert accuracy.item() == 0.5


def test_content_consistency_hinge():
    f_s = torch.zeros(1, 2, 1, 1)
    f_st = torch.tensor([1.0, 1.0]).view(1, 2, 1, 1)      # mean squared distance 1
    far = torch.tensor([2.0, 0.0]).view(1, 2, 1, 1)       # mean squared distance 2
    near = torch.tensor([0.5, 0.5]).view(1, 2, 1, 1)      # mean squared distance 0.25
    assert losses.content_consistency_loss(f_s, f_st, far, margin=0.1).item() == 0.0
    assert losses.content_consistency_loss(f_s, f_st, near, 0.1).item() == pytest.approx(1 - 0.25 + 0.1)
    batch = losses.content_consistency_loss(torch.cat([f_s, f_s]), torch.cat([f_st, f_st]),
                                            torch.cat([far, near]), 0.1)
    assert batch.item() == pytest.approx((0 + 0.85) / 2)


def test_filter_consistency_hinge():
    w_t = torch.tensor([[1.0, 0.0]])
    w_st = torch.tensor([[1.0, 1.0]])
    w_neg = torch.tensor([[0.0, 1.0]])
    expected = 1 - 1 / math.sqrt(2) + 0.0
    assert losses.filter_consistency_loss(w_t, w_st, w_neg).item() == pytest.approx(expected, rel=1e-6)
    # filters of any shape are compared flattened; a perfect positive and opposite negative give 0
    w = torch.randn(2, 3, 1, 5, 5)
    assert losses.filter_consistency_loss(w, 2 * w, -w).item() == pytest.approx(0.0, abs=1e-6)


def test_adversarial_losses_nonsaturating_and_lsgan():
    zero = torch.zeros(1, 1, 4, 4)
    # D(x) = sigmoid(0) = 1/2 everywhere: each term is -log(1/2)
    assert losses.discriminator_loss([zero, zero], [zero]).item() == pytest.approx(3 * math.log(2))
    assert losses.generator_adversarial_loss(zero).item() == pytest.approx(math.log(2))
    big = torch.full((1, 1, 2, 2), 3.0)
    assert losses.generator_adversarial_loss(big).item() == pytest.approx(math.log1p(math.exp(-3.0)), rel=1e-6)
    one = torch.ones(1, 1, 2, 2)
    assert losses.discriminator_loss([one], [zero], "lsgan").item() == 0.0
    assert losses.discriminator_loss([zero], [one], "lsgan").item() == 2.0
    assert losses.generator_adversarial_loss(zero, "lsgan").item() == 1.0


def test_reconstruction_and_positive_l1():
    a = torch.tensor([[0.0, 1.0], [0.5, 0.5]])
    b = torch.tensor([[1.0, 1.0], [0.0, 0.5]])
    assert losses.reconstruction_loss(a, b).item() == pytest.approx((1 + 0 + 0.5 + 0) / 4)
    assert losses.positive_l1_loss(a, b).item() == pytest.approx((1.0 + 0.5) / 2)


def test_positive_margin_loss_hand_computed():
    # unit vectors: the query s, one positive p (cos 0.8) and negatives n1 (cos 0.9), n2 (cos 0.0), n3 masked
    s = torch.tensor([[1.0, 0.0]])
    p = torch.tensor([[[0.8, 0.6]]])
    negative_logits = torch.tensor([[0.9, 0.0, -math.inf]])
    mask = torch.tensor([[True]])
    # pairs: max(0, 0.9 - 0.8 + 0.1) = 0.2 (active), max(0, 0.0 - 0.8 + 0.1) = 0: mean over the active one
    loss = losses.positive_margin_loss(s, p, mask, negative_logits, margin=0.1)
    assert loss.item() == pytest.approx(0.2, abs=1e-6)
    # an invalid positive contributes nothing; no active pair gives 0, not NaN
    assert losses.positive_margin_loss(s, p, torch.tensor([[False]]), negative_logits, 0.1).item() == 0.0


def test_positive_margin_loss_cannot_be_met_by_a_constant_descriptor():
    # the plain L1 pull is 0 when every z is the same vector; the margin form is not
    z = torch.tensor([[0.6, 0.8]])
    same = z[:, None].clone()
    assert losses.positive_l1_loss(z, same).item() == 0.0
    constant_negative = (z * z).sum(1, keepdim=True)            # cos(z, z) = 1 for every negative
    margin = losses.positive_margin_loss(z, same, torch.tensor([[True]]), constant_negative, margin=0.1)
    assert margin.item() == pytest.approx(0.1, abs=1e-6)


def test_paired_layout_loss_on_cells_hand_computed():
    # 1 channel, 4 x 4 px on a 2 x 2 grid: the translation's cells are 0 / 0 / 0 / 0, the target's
    # 0.4 / 0 / 0 / -0.2 (each cell constant, so pooling keeps it)
    translated = torch.zeros(2, 1, 4, 4)
    target = torch.zeros(2, 1, 4, 4)
    target[:, :, :2, :2], target[:, :, 2:, 2:] = 0.4, -0.2
    target[1] = 5.0  # the second sample's target is another place: ignored
    same_place = torch.tensor([True, False])
    l1 = losses.paired_layout_loss(translated, target, same_place, (2, 2))
    l2 = losses.paired_layout_loss(translated, target, same_place, (2, 2), norm="l2")
    assert l1.item() == pytest.approx((0.4 + 0.2) / 4)
    assert l2.item() == pytest.approx((0.16 + 0.04) / 4)
    # pooling: a 2 x 2 cell with +1 and -1 pixels matches a zero cell exactly
    checker = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(2, 2)[None, None]
    assert losses.paired_layout_loss(checker, torch.zeros_like(checker), torch.tensor([True]), (2, 2)).item() == 0.0
    nobody = losses.paired_layout_loss(translated, target, torch.tensor([False, False]), (2, 2), norm="l2")
    assert nobody.item() == 0.0
    with pytest.raises(ValueError, match="norm must be 'l1' or 'l2'"):
        losses.paired_layout_loss(translated, target, same_place, (2, 2), norm="huber")


def test_paired_norm_l2_pulls_towards_the_mean_l1_towards_the_median():
    # one cell met by three views 0, 0 and 0.9: the L2 optimum is their mean 0.3, the L1 optimum the median 0
    views = torch.tensor([0.0, 0.0, 0.9]).view(3, 1, 1, 1)
    same = torch.ones(3, dtype=torch.bool)

    def cost(value: float, norm: str) -> float:
        return losses.paired_layout_loss(torch.full((3, 1, 1, 1), value), views, same, (1, 1), norm).item()

    candidates = [i / 100 for i in range(91)]
    assert min(candidates, key=lambda v: cost(v, "l2")) == pytest.approx(0.3)
    assert min(candidates, key=lambda v: cost(v, "l1")) == 0.0

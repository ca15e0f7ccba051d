"""GeM pooling: p = 1 is average pooling, large p approaches max pooling; p is learnable."""
import pytest
import torch

from mduit_loc.nn.gem import GeM


def test_p_one_is_the_mean():
    features = torch.rand(2, 5, 4, 3, dtype=torch.float64) + 0.1
    pooled = GeM(p=1).double()(features)
    assert pooled.shape == (2, 5)
    torch.testing.assert_close(pooled, features.mean(dim=(-2, -1)))


def test_large_p_approaches_the_max():
    features = torch.rand(3, 4, 6, 6, dtype=torch.float64) * 0.5 + 0.5
    maximum = features.amax(dim=(-2, -1))
    errors = []
    for p in (3, 30, 300):
        with torch.no_grad():
            pooled = GeM(p=p).double()(features)
        assert torch.all(pooled <= maximum + 1e-12)
        # (mean x^p)^(1/p) >= (x_max^p / N)^(1/p) = x_max * N^(-1/p)
        assert torch.all(pooled >= maximum * 36 ** (-1 / p) - 1e-12)
        errors.append(float((maximum - pooled).abs().max()))
    assert errors[0] > errors[1] > errors[2] and errors[2] < 0.02


def test_p_is_trainable_or_fixed():
    gem = GeM(p=3)
    gem(torch.rand(1, 2, 3, 3)).sum().backward()
    assert gem.p.grad is not None and gem.p.requires_grad
    assert not GeM(p=3, trainable=False).p.requires_grad
    assert GeM(p=3).p.item() == pytest.approx(3.0)
    assert set(GeM().state_dict()) == {"p"}

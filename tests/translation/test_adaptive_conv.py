import pytest
import torch
import torch.nn.functional as F

from mduit_loc.translation.adaptive_conv import AppearanceAdaptiveConv, appearance_adaptive_conv


def per_sample_reference(features, filters, groups):
    """The definition: convolve each sample with its own filters, one conv2d per sample."""
    outputs = []
    pad = filters.shape[-1] // 2
    for feature, weight in zip(features, filters):
        padded = F.pad(feature[None], (pad, pad, pad, pad), mode="reflect")
        outputs.append(F.conv2d(padded, weight, groups=groups))
    return torch.cat(outputs)


@pytest.mark.parametrize("batch, channels, groups, out_channels, kernel, size", [
    (1, 8, 8, 8, 5, (9, 9)),      # the paper's layout: one 1xkxk filter per channel (groups = c)
    (3, 8, 8, 8, 5, (7, 11)),
    (4, 6, 2, 4, 3, (5, 6)),      # several channels per group, c' != c
    (2, 4, 1, 4, 1, (3, 3)),      # a dense 1x1 filter (AdaIN-like)
])
def test_grouped_conv_equals_per_sample_loop(batch, channels, groups, out_channels, kernel, size):
    generator = torch.Generator().manual_seed(batch * 100 + channels)
    features = torch.randn(batch, channels, *size, generator=generator)
    filters = torch.randn(batch, out_channels, channels // groups, kernel, kernel, generator=generator)
    expected = per_sample_reference(features, filters, groups)
    got = appearance_adaptive_conv(features, filters, groups)
    assert got.shape == (batch, out_channels, *size)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_each_sample_only_sees_its_own_filters():
    features = torch.randn(3, 4, 8, 8)
    filters = torch.randn(3, 4, 1, 3, 3)
    changed = filters.clone()
    changed[1] += 1.0
    before = appearance_adaptive_conv(features, filters, 4)
    after = appearance_adaptive_conv(features, changed, 4)
    torch.testing.assert_close(before[[0, 2]], after[[0, 2]])
    assert not torch.allclose(before[1], after[1])


def test_single_filter_set_is_broadcast_over_the_batch():
    features = torch.randn(4, 4, 6, 6)
    filters = torch.randn(1, 4, 1, 5, 5)
    got = AppearanceAdaptiveConv(groups=4)(features, filters)
    torch.testing.assert_close(got, per_sample_reference(features, filters.expand(4, -1, -1, -1, -1), 4))


def test_gradients_reach_features_and_filters():
    features = torch.randn(2, 4, 6, 6, dtype=torch.double, requires_grad=True)
    filters = torch.randn(2, 4, 2, 3, 3, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda f, w: appearance_adaptive_conv(f, w, 2), (features, filters))


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="filter sets"):
        appearance_adaptive_conv(torch.randn(3, 4, 6, 6), torch.randn(2, 4, 1, 3, 3), 4)
    with pytest.raises(ValueError, match="do not fit"):
        appearance_adaptive_conv(torch.randn(1, 4, 6, 6), torch.randn(1, 4, 2, 3, 3), 4)
    with pytest.raises(ValueError, match="odd"):
        appearance_adaptive_conv(torch.randn(1, 4, 6, 6), torch.randn(1, 4, 1, 2, 2), 4)

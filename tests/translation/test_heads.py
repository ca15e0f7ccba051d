"""The projection heads H: output sizes, unit norm, what each keeps of the image layout."""
import pytest
import torch

from mduit_loc.errors import MduitError
from mduit_loc.translation.config import TranslationConfig
from mduit_loc.translation.head import GridHead, NetVLADHead, make_head


def _shuffled_positions(content: torch.Tensor, seed: int = 0) -> torch.Tensor:
    batch, channels, height, width = content.shape
    order = torch.randperm(height * width, generator=torch.Generator().manual_seed(seed))
    return content.flatten(2)[:, :, order].view(batch, channels, height, width)


def test_netvlad_head_size_norm_and_order_invariance():
    torch.manual_seed(0)
    head = NetVLADHead(in_channels=6, clusters=4)
    content = torch.randn(3, 6, 8, 8)
    z = head(content)
    assert z.shape == (3, 24) and head.out_dim == 24
    torch.testing.assert_close(z.norm(dim=1), torch.ones(3))
    # orderless: the same local features at other positions give the same descriptor
    torch.testing.assert_close(head(_shuffled_positions(content)), z, atol=1e-5, rtol=1e-5)
    # ... but not the same for other features
    assert (head(torch.randn(3, 6, 8, 8)) - z).abs().max() > 1e-2


def test_netvlad_head_projection_and_gradients():
    torch.manual_seed(0)
    head = make_head("netvlad", 6, hidden=0, out_dim=10, gem_p=3.0, grid=(4, 4), clusters=4)
    content = torch.randn(2, 6, 8, 8, requires_grad=True)
    z = head(content)
    assert z.shape == (2, 10)
    z[:, 0].sum().backward()
    assert content.grad is not None and content.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())


def test_grid_head_keeps_layout():
    torch.manual_seed(0)
    head = GridHead(6, (2, 2))
    content = torch.randn(1, 6, 8, 8)
    # swapping the left and right halves swaps cells: another descriptor
    swapped = torch.cat([content[..., 4:], content[..., :4]], dim=-1)
    assert (head(swapped) - head(content)).abs().max() > 1e-2


def test_head_settings_are_validated():
    assert TranslationConfig(head="netvlad", descriptor_dim=0, head_clusters=8).head_clusters == 8
    with pytest.raises(MduitError, match="head_clusters"):
        TranslationConfig(head="netvlad", head_clusters=0)
    with pytest.raises(MduitError, match="descriptor_dim"):
        TranslationConfig(head="gem-mlp", descriptor_dim=0)
    with pytest.raises(ValueError, match="unknown head"):
        make_head("vlad", 6, hidden=0, out_dim=0, gem_p=3.0, grid=(4, 4))

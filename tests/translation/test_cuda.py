"""The GPU path on a GPU (skipped without CUDA; benchmarks/gpu_check.sh runs them): the 32-bit index limit
that stopped batch 32 of the paper preset, chunked steps, the CUDA step against the CPU step, bf16."""
import copy

import pytest
import torch

from mduit_loc.nn import chunking
from mduit_loc.nn.chunking import apply_in_chunks
from mduit_loc.translation.adaptive_conv import appearance_adaptive_conv
from mduit_loc.translation.config import preset
from mduit_loc.translation.mduit import build_mduit
from mduit_loc.translation.networks import ContentEncoder
from mduit_loc.translation.steps import Discriminators

from .conftest import small_config
from .test_chunked_step import one_step

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
CUDA = torch.device("cuda")


@pytest.fixture(autouse=True)
def _exact_float32():
    """No TF32: the CUDA step is compared with the CPU's float32 step."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def test_paper_content_encoder_past_32_bit_index_math_runs_in_pieces():
    """520 images at 256 x 256: the stem makes 520 x 64 x 256 x 256 > 2**31 elements, which reflection
    padding refuses in one piece ("input tensor must fit into 32-bit index math")."""
    config = preset("paper")
    encoder = ContentEncoder(config.encoder_base_channels, config.n_downsample, config.encoder_res_blocks).to(CUDA)
    images = torch.rand(520, 3, 256, 256, device=CUDA)
    with torch.inference_mode(), torch.autocast("cuda", dtype=torch.bfloat16):
        assert chunking.elements_per_sample(encoder, images) * len(images) > 2**31
        out = apply_in_chunks(encoder, images)
        assert out.shape == (520, 256, 64, 64) and torch.isfinite(out).all()
        torch.testing.assert_close(out[-3:].float(), encoder(images[-3:]).float(), rtol=2e-2, atol=2e-2)


def test_folded_adaptive_conv_past_32_bit_index_math_runs_in_pieces():
    batch, channels, size = 2100, 256, 64          # the folded padded input: 2100 x 256 x 68 x 68 > 2**31
    features = torch.randn(batch, channels, size, size, device=CUDA, dtype=torch.bfloat16)
    filters = torch.randn(batch, channels, 1, 5, 5, device=CUDA, dtype=torch.bfloat16)
    with torch.inference_mode():
        out = appearance_adaptive_conv(features, filters, channels)
        assert out.shape == features.shape and torch.isfinite(out).all()
        torch.testing.assert_close(out[-2:], appearance_adaptive_conv(features[-2:], filters[-2:], channels))
    del features, filters, out
    torch.cuda.empty_cache()


def _step(device, config, batch, limit=None, monkeypatch=None, bf16=False):
    torch.manual_seed(0)
    model = build_mduit(config, warn_untrained_vgg=False)
    discriminators = Discriminators(config)
    if limit is not None:
        monkeypatch.setattr(chunking, "MAX_ELEMENTS", limit)
    model, discriminators = copy.deepcopy(model).to(device), copy.deepcopy(discriminators).to(device)
    torch.manual_seed(1)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
        terms, grads = one_step(model, discriminators, batch.to(device), config)
    return {k: v.float().cpu() for k, v in terms.items()}, {k: v.float().cpu() for k, v in grads.items()}


def _assert_close(got, expected, rtol, grad_cosine):
    (terms, grads), (ref_terms, ref_grads) = got, expected
    for name in ref_terms:
        torch.testing.assert_close(terms[name], ref_terms[name], rtol=rtol, atol=rtol * 1e-2, msg=name)
    for network in {name.split(".")[0] for name in ref_grads}:
        names = [name for name in ref_grads if name.split(".")[0] == network]
        a = torch.cat([grads[n].flatten() for n in names])
        b = torch.cat([ref_grads[n].flatten() for n in names])
        assert torch.isfinite(a).all(), network
        assert torch.nn.functional.cosine_similarity(a, b, dim=0) > grad_cosine, network


def test_cuda_step_in_pieces_equals_the_cuda_step_and_the_cpu_step(monkeypatch):
    config = small_config(batch_size=3)
    batch = torch.rand(3, config.rows_per_sample, 3, *config.image_size, generator=torch.Generator().manual_seed(2))
    whole = _step(CUDA, config, batch)
    pieces = _step(CUDA, config, batch, limit=1, monkeypatch=monkeypatch)
    monkeypatch.undo()
    cpu = _step(torch.device("cpu"), config, batch)
    _assert_close(pieces, whole, rtol=1e-3, grad_cosine=0.999)
    _assert_close(whole, cpu, rtol=1e-3, grad_cosine=0.999)


def test_bf16_cuda_step_is_finite_and_close_to_float32():
    config = small_config(batch_size=2)
    batch = torch.rand(2, config.rows_per_sample, 3, *config.image_size, generator=torch.Generator().manual_seed(3))
    _assert_close(_step(CUDA, config, batch, bf16=True), _step(CUDA, config, batch), rtol=0.03, grad_cosine=0.9)

"""apply_in_chunks: pieces within the element limit, same results as one call (forward and backward)."""
import pytest
import torch
from torch import nn

from mduit_loc.nn import chunking
from mduit_loc.nn.chunking import ENV_VAR, apply_in_chunks, chunk_limit, elements_per_sample, largest_tensor_elements
from mduit_loc.translation.adaptive_conv import appearance_adaptive_conv
from mduit_loc.translation.config import apply_overrides, preset
from mduit_loc.translation.mduit import build_mduit
from mduit_loc.translation.networks import appearance_discriminator, image_discriminator

pytestmark = pytest.mark.filterwarnings("ignore:TF32 acceleration")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    config = apply_overrides(preset("tiny"), {"image_size": (32, 32), "appearance_input_size": 16})
    return build_mduit(config, warn_untrained_vgg=False)


class Recorder:
    """Calls of ``fn`` with their batch sizes."""

    def __init__(self, fn):
        self.fn, self.rows = fn, []

    def __call__(self, x):
        self.rows.append(len(x))
        return self.fn(x)


def test_limit_comes_from_the_argument_the_environment_or_the_module_constant(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    assert chunk_limit() == chunking.MAX_ELEMENTS == 2**31 - 1
    monkeypatch.setattr(chunking, "MAX_ELEMENTS", 1000)
    assert chunk_limit() == 1000
    monkeypatch.setenv(ENV_VAR, "123")
    assert chunk_limit() == 123
    assert chunk_limit(7) == 7
    with pytest.raises(ValueError):
        chunk_limit(0)


def test_pieces_hold_at_most_the_limit_and_the_measure_sees_padded_intermediates():
    conv = nn.Conv2d(2, 6, 3, padding=1, padding_mode="reflect")
    x = torch.randn(10, 2, 8, 8)
    # reflect padding makes a 2 x 10 x 10 input; the output is 6 x 8 x 8 = 384: the largest
    assert largest_tensor_elements(conv, x[:1]) == 384
    recorder = Recorder(conv)
    out = apply_in_chunks(recorder, x, max_elements=3 * 384, per_sample=384)
    assert recorder.rows == [3, 3, 3, 1]
    torch.testing.assert_close(out, conv(x), rtol=0, atol=1e-6)
    recorder.rows.clear()
    apply_in_chunks(recorder, x, max_elements=10**9, per_sample=384)   # fits: one call, untouched
    assert recorder.rows == [10]


def test_measurement_is_kept_per_module_and_sample_shape():
    conv = nn.Conv2d(3, 4, 3, padding=1)
    calls = []
    conv.register_forward_hook(lambda module, args, out: calls.append(len(args[0])))
    assert elements_per_sample(conv, torch.randn(5, 3, 6, 6)) == 4 * 36
    assert elements_per_sample(conv, torch.randn(9, 3, 6, 6)) == 4 * 36
    assert calls == []   # measured through forward (no hooks, as a compiled module's eager forward)
    assert elements_per_sample(conv, torch.randn(2, 3, 8, 8)) == 4 * 64


@pytest.mark.parametrize("network", ["content_encoder", "generator", "image_discriminator",
                                     "appearance_discriminator"])
def test_convolutional_networks_in_pieces_equal_one_call_bit_for_bit(model, network):
    """With the batch-independent CPU kernels (oneDNN off), pieces give the very same bits."""
    torch.manual_seed(1)
    config = model.config
    images = torch.rand(7, 3, *config.image_size)
    if network == "content_encoder":
        fn, x = model.content_encoder, images
    elif network == "generator":
        fn, x = model.generator, model.content_encoder(images).detach()
    elif network == "image_discriminator":
        fn, x = image_discriminator(config), images
    else:
        fn, x = appearance_discriminator(config), torch.cat([images, images.flip(0)], 1)
    with torch.backends.mkldnn.flags(enabled=False):
        whole = fn(x)
        pieces = apply_in_chunks(fn, x, max_elements=2 * elements_per_sample(fn, x))
        single = apply_in_chunks(fn, x, max_elements=1)
    assert torch.equal(whole, pieces) and torch.equal(whole, single)


@pytest.mark.parametrize("network", ["appearance_encoder", "head"])
def test_networks_with_matrix_products_in_pieces_equal_one_call(model, network):
    """A GEMM's blocking depends on the number of rows: equal up to float rounding."""
    torch.manual_seed(2)
    images = torch.rand(6, 3, *model.config.image_size)
    fn = getattr(model, network)
    x = images if network == "appearance_encoder" else model.content_encoder(images).detach()
    torch.testing.assert_close(apply_in_chunks(fn, x, max_elements=1), fn(x), rtol=1e-5, atol=1e-6)


def test_gradients_through_pieces_equal_one_call(model):
    torch.manual_seed(3)
    images = torch.rand(5, 3, *model.config.image_size, requires_grad=True)
    grads = []
    for limit in (None, 1):
        model.zero_grad()
        images.grad = None
        out = apply_in_chunks(model.content_encoder, images, max_elements=limit)
        (out.square().mean()).backward()
        grads.append([images.grad.clone()] + [p.grad.clone() for p in model.content_encoder.parameters()])
    for whole, pieces in zip(*grads):
        torch.testing.assert_close(pieces, whole, rtol=1e-4, atol=1e-7)


def test_adaptive_conv_in_pieces_equals_one_folded_conv_bit_for_bit():
    torch.manual_seed(4)
    features = torch.randn(9, 16, 12, 12)
    for groups, in_per_group in ((16, 1), (4, 4)):
        filters = torch.randn(9, 16, in_per_group, 5, 5)
        whole = appearance_adaptive_conv(features, filters, groups)
        per_sample = 16 * 16 * 16   # the padded input of one sample
        for limit in (1, per_sample, 4 * per_sample):
            assert torch.equal(appearance_adaptive_conv(features, filters, groups, max_elements=limit), whole)
    # one filter set broadcast over the batch, pieces and all
    shared = torch.randn(1, 16, 1, 3, 3)
    assert torch.equal(appearance_adaptive_conv(features, shared, 16, max_elements=1),
                       appearance_adaptive_conv(features, shared, 16))


def test_adaptive_conv_limit_from_the_environment(monkeypatch):
    features, filters = torch.randn(4, 8, 6, 6), torch.randn(4, 8, 1, 3, 3)
    calls = []
    original = torch.nn.functional.conv2d
    monkeypatch.setattr(torch.nn.functional, "conv2d", lambda *a, **k: calls.append(a[0].shape) or original(*a, **k))
    monkeypatch.setenv(ENV_VAR, str(2 * 8 * 8 * 8))      # two samples' padded input
    appearance_adaptive_conv(features, filters, 8)
    assert [tuple(shape) for shape in calls] == [(1, 16, 8, 8), (1, 16, 8, 8)]

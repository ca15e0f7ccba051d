"""Speed options (channels-last, torch.compile, bf16 autocast, the step data path) give the plain step's results."""
import copy
import csv
import warnings

import pytest
import torch

from mduit_loc.nn import speed
from mduit_loc.nn.speed import CompiledForward, compile_networks, uncompile
from mduit_loc.translation.data import ImageStore
from mduit_loc.translation.mduit import build_mduit
from mduit_loc.translation.speed import apply_speed_options
from mduit_loc.translation.steps import Discriminators
from mduit_loc.translation.trainer import Trainer, TrainOptions

from .conftest import small_config
from .test_chunked_step import one_step


def step_results(config, batch, *, channels_last=False, compile_model=False, bf16=False):
    torch.manual_seed(0)
    model = build_mduit(config, warn_untrained_vgg=False)
    discriminators = Discriminators(config)
    options = small_config(channels_last=channels_last, compile_model=compile_model)
    compiled = apply_speed_options(options, model, discriminators)
    torch.manual_seed(1)
    if bf16:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            terms, grads = one_step(model, discriminators, batch, config)
    else:
        terms, grads = one_step(model, discriminators, batch, config)
    return terms, grads, model, compiled


def assert_close_results(got, expected, rtol, grad_tol):
    (terms, grads), (ref_terms, ref_grads) = got, expected
    assert terms.keys() == ref_terms.keys() and grads.keys() == ref_grads.keys()
    for name in ref_terms:
        torch.testing.assert_close(terms[name].float(), ref_terms[name], rtol=rtol, atol=rtol * 1e-2, msg=name)
    # gradients relative to each network's largest (biases before instance norm: zero up to rounding)
    scales: dict[str, float] = {}
    for name, grad in ref_grads.items():
        network = name.split(".")[0]
        scales[network] = max(scales.get(network, 0.0), grad.abs().max().item())
    for name, grad in ref_grads.items():
        assert torch.isfinite(grads[name]).all(), name
        tolerance = grad_tol * scales[name.split(".")[0]] + 1e-6
        torch.testing.assert_close(grads[name].float(), grad, rtol=0, atol=tolerance, msg=name)


@pytest.fixture(scope="module")
def setup():
    config = small_config(batch_size=2)
    batch = torch.rand(2, config.rows_per_sample, 3, *config.image_size, generator=torch.Generator().manual_seed(5))
    terms, grads, _, _ = step_results(config, batch)
    return config, batch, (terms, grads)


def test_channels_last_step_equals_the_plain_step(setup):
    config, batch, reference = setup
    terms, grads, model, _ = step_results(config, batch, channels_last=True)
    assert model.content_encoder.layers[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    assert_close_results((terms, grads), reference, rtol=1e-4, grad_tol=3e-3)


@pytest.mark.slow
def test_compiled_step_equals_the_plain_step(setup, monkeypatch):
    monkeypatch.setenv(speed.COMPILE_BACKEND_ENV, "aot_eager")   # inductor works too, but compiles for minutes here
    config, batch, reference = setup
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)   # no fallback
        terms, grads, model, compiled = step_results(config, batch, compile_model=True)
    assert compiled == ["content_encoder", "appearance_encoder", "generator", "head", "image_discriminator",
                        "appearance_discriminator"]
    assert isinstance(model.generator.forward, CompiledForward) and not model.generator.forward.failed
    assert_close_results((terms, grads), reference, rtol=1e-4, grad_tol=3e-3)
    # checkpoints are unchanged by compiling: same keys as a plain model
    assert model.state_dict().keys() == build_mduit(config, warn_untrained_vgg=False).state_dict().keys()
    uncompile(model)
    assert not any(isinstance(m.__dict__.get("forward"), CompiledForward) for m in model.modules())


def test_bf16_autocast_step_is_finite_and_close_to_float32(setup):
    """bf16 end to end where autocast allows it (heads and losses upcast): what CUDA runs, checked on the CPU."""
    config, batch, (ref_terms, ref_grads) = setup
    terms, grads, _, _ = step_results(config, batch, bf16=True)
    for name in ref_terms:
        torch.testing.assert_close(terms[name].float(), ref_terms[name], rtol=0.02, atol=1e-3, msg=name)
    # bf16's 8-bit mantissa through the translation cycle: each network's gradient points the same way
    for network in ("content_encoder", "appearance_encoder", "generator", "head", "image", "appearance"):
        names = [name for name in ref_grads if name.split(".")[0] == network]
        got = torch.cat([grads[name].float().flatten() for name in names])
        expected = torch.cat([ref_grads[name].flatten() for name in names])
        assert torch.isfinite(got).all()
        assert torch.nn.functional.cosine_similarity(got, expected, dim=0) > 0.9, network


def test_a_failing_compiler_falls_back_to_eager_with_a_warning(monkeypatch):
    def broken_compile(fn, **kwargs):
        def run(*args, **kw):
            raise RuntimeError("no C compiler found\nmore details")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    conv = torch.nn.Conv2d(3, 4, 3)
    x = torch.rand(2, 3, 8, 8)
    expected = conv(x)
    assert compile_networks({"conv": conv}) == ["conv"]
    with pytest.warns(RuntimeWarning, match=r"torch.compile of conv failed \(RuntimeError: no C compiler found\)"):
        got = conv(x)
    assert torch.equal(got, expected) and conv.forward.failed
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert torch.equal(conv(x), expected)     # eager from then on, no more warnings


def test_without_torch_compile_the_networks_run_eagerly(monkeypatch):
    monkeypatch.delattr(torch, "compile")
    conv = torch.nn.Conv2d(3, 4, 3)
    with pytest.warns(RuntimeWarning, match="no torch.compile"):
        assert compile_networks({"conv": conv}) == []

    monkeypatch.setattr(torch, "compile", lambda fn, **kw: (_ for _ in ()).throw(RuntimeError("Python 3.99")),
                        raising=False)
    with pytest.warns(RuntimeWarning, match="unavailable"):
        assert compile_networks({"conv": conv}) == []
    assert "forward" not in conv.__dict__


def test_step_batches_on_a_device_equal_the_host_batches(domain_data):
    """Cached or decoded by workers, moved as uint8 and converted there: the same floats."""
    from mduit_loc.translation.data import load_training_set

    config = small_config()
    training_set = load_training_set(domain_data, config=config)
    rows = torch.arange(4 * config.rows_per_sample).view(4, -1) % len(training_set)
    cached = ImageStore(training_set.paths, config.image_size, cache_limit_mb=64)
    decoded = ImageStore(training_set.paths, config.image_size, cache_limit_mb=0, num_workers=1)
    assert cached.cache is not None and decoded.cache is None
    host = list(cached.iter_steps(rows, 2))
    cpu = torch.device("cpu")
    for batches in (cached.to(cpu).iter_steps(rows, 2, device=cpu), decoded.iter_steps(rows, 2, device=cpu)):
        for got, expected in zip(batches, host, strict=True):
            assert got.dtype == torch.float32 and torch.equal(got, expected)


@pytest.mark.slow
def test_training_with_the_speed_options_matches_plain_training(domain_data, tmp_path, monkeypatch):
    monkeypatch.setenv(speed.COMPILE_BACKEND_ENV, "eager")   # dynamo's tracing (the unit test above: aot_eager)
    rows = {}
    for name, settings in (("plain", {}), ("fast", {"channels_last": True, "compile_model": True})):
        config = small_config(max_steps=2, in_batch_negatives=False, **settings)
        options = TrainOptions(data=domain_data, out=tmp_path / name, device=torch.device("cpu"), num_workers=0,
                               progress=False, explicit_settings=settings)
        trainer = Trainer(copy.deepcopy(config), options)
        trainer.run()
        with open(tmp_path / name / "losses.csv", newline="") as handle:
            rows[name] = list(csv.DictReader(handle))
    assert len(rows["fast"]) == len(rows["plain"]) == 2
    for plain, fast in zip(rows["plain"], rows["fast"]):
        for key in ("rec_self", "rec_cycle", "nce", "loss_d"):
            assert float(fast[key]) == pytest.approx(float(plain[key]), rel=2e-3, abs=1e-5), key

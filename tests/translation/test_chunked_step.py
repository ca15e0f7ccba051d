"""A training step in pieces (tiny element limits) equals the step in one piece; no kernel sees more."""
import copy

import pytest
import torch
from torch.overrides import TorchFunctionMode

from mduit_loc.nn import chunking
from mduit_loc.translation.mduit import build_mduit
from mduit_loc.translation.steps import (
    Discriminators,
    StepLabels,
    TrainForward,
    discriminator_objective,
    generator_objective,
)

from .conftest import small_config

# the kernels that refuse tensors past 32-bit index math (cat/split/indexing of whole batches do not)
HEAVY = {"conv2d", "pad", "instance_norm", "group_norm", "interpolate", "batch_norm", "layer_norm"}


class HeavyKernels(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        if getattr(func, "__name__", "") in HEAVY:
            for value in (*args, result):
                if isinstance(value, torch.Tensor) and not isinstance(value, torch.nn.Parameter):
                    self.largest = max(self.largest, value.numel())
        return result


def one_step(model, discriminators, batch, config):
    """Both objectives and their gradients (no optimiser: the gradients are compared)."""
    out = TrainForward(model)(batch)
    labels = StepLabels(real_positive=torch.ones(len(batch), dtype=torch.bool))
    total_g, terms = generator_objective(out, batch, discriminators, config, labels)
    loss_d = torch.zeros(())
    if config.use_i2i:
        loss_d = discriminator_objective(discriminators(batch, out["translated"].detach()), config)
    (total_g + loss_d).backward()
    grads = {name: p.grad.clone() for name, p in [*model.named_parameters(), *discriminators.named_parameters()]
             if p.grad is not None}
    return {**{k: v.detach() for k, v in terms.items()}, "loss_d": loss_d.detach()}, grads


@pytest.mark.parametrize("use_i2i", [True, False])
def test_step_in_pieces_equals_the_step_in_one_piece(monkeypatch, use_i2i):
    config = small_config(use_i2i=use_i2i, batch_size=3)
    torch.manual_seed(0)
    model = build_mduit(config, warn_untrained_vgg=False)
    discriminators = Discriminators(config)
    batch = torch.rand(3, config.rows_per_sample, 3, *config.image_size)
    results = []
    for limit in (None, 1):      # 1: every network runs sample by sample
        if limit is not None:
            monkeypatch.setattr(chunking, "MAX_ELEMENTS", limit)
        torch.manual_seed(1)     # the --no-i2i jitter draws random numbers
        results.append(one_step(copy.deepcopy(model), copy.deepcopy(discriminators), batch, config))
    (terms, grads), (chunked_terms, chunked_grads) = results
    assert terms.keys() == chunked_terms.keys() and grads.keys() == chunked_grads.keys()
    for name in terms:
        torch.testing.assert_close(chunked_terms[name], terms[name], rtol=1e-4, atol=1e-6, msg=name)
    # float32 sums in another order, through losses weighted 100: rounding, relative to each network's
    # largest gradient (the biases before instance norm have a zero gradient up to rounding)
    scales: dict[str, float] = {}
    for name, grad in grads.items():
        network = name.split(".")[0]
        scales[network] = max(scales.get(network, 0.0), grad.abs().max().item())
    for name in grads:
        scale = scales[name.split(".")[0]]
        torch.testing.assert_close(chunked_grads[name], grads[name], rtol=0, atol=3e-3 * scale + 1e-6, msg=name)


def test_no_kernel_of_a_step_sees_a_tensor_past_the_limit(monkeypatch):
    """The step of a batch whose stacked roles pass the limit stays within it (forward and backward)."""
    config = small_config(batch_size=4)
    torch.manual_seed(0)
    model = build_mduit(config, warn_untrained_vgg=False)
    discriminators = Discriminators(config)
    batch = torch.rand(4, config.rows_per_sample, 3, *config.image_size)
    unlimited = HeavyKernels()
    with unlimited:
        one_step(copy.deepcopy(model), copy.deepcopy(discriminators), batch, config)
    # the largest kernel tensor of one sample's E_c, G, E_a or D pass
    per_sample = max(chunking.elements_per_sample(network, x) for network, x in (
        (model.content_encoder, batch[:, 0]), (model.appearance_encoder, batch[:, 0]),
        (discriminators.image, batch[:, 0]), (discriminators.appearance, batch[:, :2].flatten(1, 2)),
        (model.generator, model.content_encoder(batch[:1, 0]).detach())))
    limit = 3 * per_sample
    assert unlimited.largest > 2 * limit      # without pieces, the stacked roles pass it
    monkeypatch.setenv(chunking.ENV_VAR, str(limit))
    limited = HeavyKernels()
    with limited:
        one_step(copy.deepcopy(model), copy.deepcopy(discriminators), batch, config)
    assert 0 < limited.largest <= limit

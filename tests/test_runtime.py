"""Device resolution (clear errors), seeding and autocast helpers."""
import argparse
import contextlib
import random

import numpy as np
import pytest
import torch

from mduit_loc import runtime
from mduit_loc.errors import MduitError


@pytest.fixture()
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


@pytest.fixture()
def one_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)


def test_auto_and_cpu(no_cuda):
    assert runtime.resolve_device("auto") == torch.device("cpu")
    assert runtime.resolve_device("cpu") == torch.device("cpu")


def test_auto_picks_cuda_when_available(one_gpu):
    assert runtime.resolve_device("auto") == torch.device("cuda")
    assert runtime.resolve_device("cuda:0") == torch.device("cuda:0")


def test_cuda_without_cuda_says_what_to_do(no_cuda):
    with pytest.raises(MduitError, match="CUDA is not available on this machine; use --device cpu"):
        runtime.resolve_device("cuda")


def test_cuda_index_beyond_the_devices(one_gpu):
    with pytest.raises(MduitError, match=r"has 1 CUDA device\(s\) \(cuda:0 .. cuda:0\)"):
        runtime.resolve_device("cuda:3")


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "", "meta"])
def test_unknown_devices(name):
    with pytest.raises(MduitError, match="use auto, cpu, cuda or cuda:N"):
        runtime.resolve_device(name)


def test_device_argument_defaults_to_auto():
    parser = argparse.ArgumentParser()
    runtime.add_device_argument(parser)
    assert parser.parse_args([]).device == "auto"
    assert parser.parse_args(["--device", "cpu"]).device == "cpu"


def test_seed_everything_repeats_all_generators():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    runtime.seed_everything(2**40 + 3)  # larger than numpy's 32-bit seed range
    first = draw()
    runtime.seed_everything(2**40 + 3)
    assert draw() == first


def test_autocast_is_a_no_op_on_cpu():
    context = runtime.autocast(torch.device("cpu"))
    assert isinstance(context, contextlib.nullcontext)
    with context:
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_default_num_workers_is_bounded():
    assert 0 <= runtime.default_num_workers() <= 4

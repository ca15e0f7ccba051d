"""Run a network on a batch in pieces small enough for 32-bit index math.

Many CUDA kernels (reflection padding, cuDNN convolutions of a single folded sample, normalisation
over a reshaped batch) refuse a tensor of more than 2**31 - 1 elements ("input tensor must fit into
32-bit index math"). A training step stacks all image roles of a batch into one tensor, so the
largest activation grows with batch x roles: the paper preset's E_c stem alone makes 4.2 M elements
per 256 x 256 image, past the limit at 512 images (batch 32 with 16 negatives).

``apply_in_chunks(fn, x)`` splits ``x`` along dim 0 so that every tensor ``fn`` makes for one piece
has at most ``max_elements`` elements, and concatenates the results. ``fn`` must treat samples
independently (no batch statistics), which holds for every network here (instance / layer norm,
no batch norm): the result equals ``fn(x)`` (bit for bit where the kernels do not depend on the batch
size), and autograd runs through the pieces as through one call.

How many elements ``fn`` makes per sample is measured once per (module, sample shape, dtype) on a
single sample with a ``TorchFunctionMode`` that sees every intermediate tensor (padded inputs
included); a batch that fits runs in one call, untouched. The limit is ``max_elements`` when given,
else the environment variable ``MDUIT_MAX_CHUNK_ELEMENTS``, else ``MAX_ELEMENTS`` (tests lower it to
force many pieces).
"""
from __future__ import annotations

import os
import weakref
from typing import Any, Callable

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

ENV_VAR = "MDUIT_MAX_CHUNK_ELEMENTS"
MAX_ELEMENTS = 2**31 - 1   # int32's maximum: the largest tensor that 32-bit index math addresses

_probed: "weakref.WeakKeyDictionary[nn.Module, dict[tuple, int]]" = weakref.WeakKeyDictionary()


def chunk_limit(override: int | None = None) -> int:
    """The limit in force: ``override``, else ``$MDUIT_MAX_CHUNK_ELEMENTS``, else ``MAX_ELEMENTS``."""
    if override is not None:
        limit = int(override)
    else:
        text = os.environ.get(ENV_VAR, "").strip()
        limit = int(text) if text else MAX_ELEMENTS
    if limit < 1:
        raise ValueError(f"the chunk limit must be >= 1 element, got {limit}")
    return limit


class _LargestTensor(TorchFunctionMode):
    """Records the element count of the largest tensor (parameters aside) any torch function takes or returns."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def _see(self, value: Any) -> None:
        if isinstance(value, nn.Parameter):   # weights do not grow with the batch
            return
        if isinstance(value, torch.Tensor):
            self.largest = max(self.largest, value.numel())
        elif isinstance(value, (list, tuple)):
            for item in value:
                self._see(item)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        self._see(args)
        self._see(result)
        return result


def largest_tensor_elements(fn: Callable[[torch.Tensor], Any], sample: torch.Tensor) -> int:
    """Elements of the largest tensor that ``fn(sample)`` takes, makes or returns (no gradients kept)."""
    # A module is measured through its class's eager ``forward`` (not a compiled one set on the instance)
    call = (lambda x: type(fn).forward(fn, x)) if isinstance(fn, nn.Module) else fn
    mode = _LargestTensor()
    with torch.no_grad(), mode:
        mode._see(call(sample))
    return max(mode.largest, sample.numel())


def elements_per_sample(fn: Callable[[torch.Tensor], Any], tensor: torch.Tensor,
                        cache: dict[tuple, int] | None = None) -> int:
    """The largest tensor ``fn`` makes for one sample of ``tensor``, measured once per sample shape
    and kept in ``cache`` (default: per module when ``fn`` is one, else measured at every call)."""
    key = (tuple(tensor.shape[1:]), tensor.dtype, tensor.device.type)
    if cache is None:
        cache = _probed.setdefault(fn, {}) if isinstance(fn, nn.Module) else {}
    if key not in cache:
        cache[key] = largest_tensor_elements(fn, tensor[:1])
    return cache[key]


def rows_per_chunk(per_sample: int, limit: int) -> int:
    """Samples per piece so that ``rows * per_sample <= limit`` (at least one)."""
    return max(1, limit // max(1, per_sample))


def apply_in_chunks(fn: Callable[[torch.Tensor], torch.Tensor], tensor: torch.Tensor,
                    max_elements: int | None = None, *, per_sample: int | None = None,
                    cache: dict[tuple, int] | None = None) -> torch.Tensor:
    """``fn(tensor)``, run on pieces of ``tensor`` along dim 0 whose tensors stay within the limit.

    ``per_sample``: the largest tensor ``fn`` makes per sample, when the caller knows it (skips the
    measurement); ``cache``: where measurements of a callable that is no module are kept (see
    ``elements_per_sample``). ``fn`` must return one tensor with the samples along dim 0.
    """
    rows = tensor.shape[0]
    if rows <= 1:
        return fn(tensor)
    limit = chunk_limit(max_elements)
    if per_sample is None:
        per_sample = elements_per_sample(fn, tensor, cache)
    step = rows_per_chunk(per_sample, limit)
    if step >= rows:
        return fn(tensor)
    pieces = [fn(piece) for piece in tensor.split(step)]
    if not all(isinstance(piece, torch.Tensor) for piece in pieces):
        raise TypeError("apply_in_chunks: fn must return a tensor")
    return torch.cat(pieces)

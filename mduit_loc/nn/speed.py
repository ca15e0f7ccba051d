"""Speed options for convolutional networks: channels-last memory format and ``torch.compile``.

Both change how the arithmetic is laid out, not what is computed: results equal the plain eager
networks up to float rounding (tested on the CPU). They pay off on a GPU, where cuDNN's NHWC
kernels feed the tensor cores in bf16 and compiled graphs fuse the element-wise work between
convolutions (normalisation, activations, residual additions).

- ``to_channels_last(*modules)``: 4-D weights in NHWC; a convolution with an NHWC weight makes NHWC
  activations, so the layout propagates from the first layer without converting the inputs.
- ``compile_networks({name: module})``: each module's ``forward`` goes through ``torch.compile``
  (state dicts, checkpoints and the module type are unchanged). A missing or failing compiler
  (no ``torch.compile``, an unsupported Python, no C compiler or Triton, a graph it cannot trace)
  costs a warning and the eager forward, never the run: failures surface at the first call (the
  compilation), which falls back and keeps the eager forward from then on. The backend is
  ``$MDUIT_COMPILE_BACKEND`` (default ``inductor``; the tests use ``aot_eager``).
"""
from __future__ import annotations

import os
import warnings
from typing import Any, Callable

import torch
from torch import nn

COMPILE_BACKEND_ENV = "MDUIT_COMPILE_BACKEND"


def to_channels_last(*modules: nn.Module) -> None:
    for module in modules:
        module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"[:300]


class CompiledForward:
    """A module's forward through ``torch.compile``, falling back to the eager forward on failure."""

    def __init__(self, name: str, eager: Callable[..., Any], compiled: Callable[..., Any]):
        self.name, self.eager, self.compiled = name, eager, compiled
        self.failed = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not self.failed:
            try:
                return self.compiled(*args, **kwargs)
            except torch.cuda.OutOfMemoryError:
                raise   # not the compiler's fault: the eager forward would not fit either
            except Exception as err:  # noqa: BLE001 - any compiler failure means: run eagerly
                self.failed = True
                warnings.warn(f"torch.compile of {self.name} failed ({_first_line(err)}); running it eagerly",
                              RuntimeWarning, stacklevel=2)
        return self.eager(*args, **kwargs)


def compile_networks(networks: dict[str, nn.Module], backend: str | None = None) -> list[str]:
    """Route each module's ``forward`` through ``torch.compile``; returns the names set up.

    Nothing is compiled (a warning says why) when this torch has no usable ``torch.compile``.
    """
    backend = backend or os.environ.get(COMPILE_BACKEND_ENV, "").strip() or "inductor"
    compile_fn = getattr(torch, "compile", None)
    if compile_fn is None:
        warnings.warn("this torch has no torch.compile; the networks run eagerly", RuntimeWarning, stacklevel=2)
        return []
    done: list[str] = []
    for name, module in networks.items():
        eager = type(module).forward.__get__(module)   # the class's forward, bound (not a compiled one)
        try:
            compiled = compile_fn(eager, backend=backend)
        except Exception as err:  # noqa: BLE001 - e.g. "Dynamo is not supported on Python 3.x"
            warnings.warn(f"torch.compile is unavailable ({_first_line(err)}); the networks run eagerly",
                          RuntimeWarning, stacklevel=2)
            return done
        module.forward = CompiledForward(name, eager, compiled)
        done.append(name)
    return done


def uncompile(module: nn.Module) -> None:
    """Undo ``compile_networks`` on ``module`` and its children (their class's forward again)."""
    for child in module.modules():
        if isinstance(child.__dict__.get("forward"), CompiledForward):
            del child.__dict__["forward"]

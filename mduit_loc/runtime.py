"""Device selection, seeding and mixed-precision helpers shared by every command."""
from __future__ import annotations

import contextlib
import os
import random

import numpy as np
import torch

from mduit_loc.errors import MduitError


def add_device_argument(parser) -> None:
    parser.add_argument("--device", default="auto",
                        help="'auto' (CUDA if available, else CPU), 'cpu', 'cuda' or 'cuda:N' (default: auto)")


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``auto`` (CUDA if available, else CPU), ``cpu``, ``cuda`` or ``cuda:N`` -> a usable ``torch.device``.

    Commands resolve their ``--device`` once with it; an API taking ``str | torch.device`` resolves
    its argument with it once at entry. A ``torch.device`` is checked and returned.
    """
    if isinstance(name, torch.device):
        name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise MduitError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N") from err
    if device.type not in ("cpu", "cuda"):
        raise MduitError(f"unsupported device {name!r}: use auto, cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise MduitError(f"device {name!r} requested but CUDA is not available on this machine; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise MduitError(f"device {name!r} requested but this machine has {torch.cuda.device_count()} CUDA "
                         f"device(s) (cuda:0 .. cuda:{torch.cuda.device_count() - 1})")
    return device


def default_device() -> torch.device:
    """The default of every device option: CUDA if available, else CPU."""
    return resolve_device("auto")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def autocast(device: torch.device, enabled: bool = True):
    """bf16/fp16 autocast on CUDA; a no-op on CPU (where it rarely pays off)."""
    if enabled and device.type == "cuda":
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return contextlib.nullcontext()


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform tells it)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def default_num_workers() -> int:
    """DataLoader workers: leave one core for the model."""
    return max(0, min(4, (os.cpu_count() or 1) - 1))

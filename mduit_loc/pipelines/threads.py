"""Torch's intra-op thread count for every stage of a pipeline."""
from __future__ import annotations

import os

import torch

from mduit_loc.errors import MduitError


def configure_threads(threads: int | None) -> int:
    """Set torch's intra-op threads for every stage; ``None``: automatic. Returns the number used.

    Automatic: all cores on an idle machine, but one thread when the machine is already busy (load
    average >= cores), because oversubscribed OpenMP threads spin and wait: measured here on a
    shared 2-core machine, an MDUIT tiny step took ~20 s with 2 threads and ~4 s with 1.
    """
    cores = os.cpu_count() or 1
    if threads is None:
        try:
            busy = os.getloadavg()[0] >= cores
        except OSError:  # not available on this platform
            busy = False
        threads = 1 if busy else cores
    if threads < 1:
        raise MduitError(f"--threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)
    return threads

"""Torch's intra-op thread count for every stage of a pipeline.

The count is part of what makes a run reproducible: it sets the order in which float sums are taken,
so the same seed and steps give another model under another count. The automatic choice therefore
depends on the machine only (its usable cores), never on how busy it is; a busy machine gets a hint.
"""
from __future__ import annotations

import os
import sys

import torch

from mduit_loc.errors import MduitError
from mduit_loc.runtime import usable_cores

THREADS_HELP = ("torch threads (default: the usable cores; the model depends on it, so pass the same value to "
                "reproduce a run; 1 is much faster on a machine busy with other jobs)")


def busy_hint(threads: int, cores: int) -> str | None:
    """A one-line hint when ``threads`` > 1 on a machine whose load already fills its cores, else None."""
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):  # not available on this platform
        return None
    if threads == 1 or load < cores:
        return None
    # oversubscribed OpenMP threads spin and wait: on a shared 2-core machine an MDUIT tiny step took
    # ~20 s with 2 threads and ~4 s with 1 (measured)
    return (f"note: the machine is busy (load {load:.1f} on {cores} cores); --threads 1 is usually much faster "
            f"here, and gives another (equally valid) model than {threads} threads")


def configure_threads(threads: int | None) -> int:
    """Set torch's intra-op threads for every stage; ``None``: the usable cores. Returns the number used."""
    cores = usable_cores()
    chosen = cores if threads is None else threads
    if chosen < 1:
        raise MduitError(f"--threads must be >= 1, got {chosen}")
    if threads is None and (hint := busy_hint(chosen, cores)):
        print(hint, file=sys.stderr)
    torch.set_num_threads(chosen)
    return chosen

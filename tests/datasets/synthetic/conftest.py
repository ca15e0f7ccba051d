"""One small synthetic benchmark per test run (2 locations at 64 px: a few seconds), and its town.

Under pytest-xdist the workers share it: the first renders it into the run's common temporary
folder while holding a lock, the others wait and then read it (the tests never write into it).
"""
from __future__ import annotations

import fcntl
import os

import pytest

from mduit_loc.datasets.synthetic import Town, generate, get_preset

SEED = 3
SIZE = 64
LOCATIONS = 2


def small_preset():
    """The tiny preset, reduced so that a render takes seconds."""
    return get_preset("tiny", image_size=SIZE, n_locations=LOCATIONS)


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory):
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # common to the workers of this run
    root = base / f"synth-tiny-seed{SEED}-{SIZE}px-{LOCATIONS}loc"
    with open(base / f"{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "synth.json").is_file():  # absent, or a render interrupted by a crashed worker
            generate(root, small_preset(), seed=SEED, workers=1, progress=False, overwrite=True)
    return root


@pytest.fixture(scope="session")
def synth_town():
    return Town.build(small_preset(), SEED)

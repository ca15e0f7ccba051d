"""The pipelines' thread count: chosen from the machine, never from its load; a busy machine gets a hint."""
import os

import pytest
import torch

from mduit_loc.errors import MduitError
from mduit_loc.pipelines import threads as threads_module
from mduit_loc.pipelines.threads import busy_hint, configure_threads


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_the_automatic_count_is_the_usable_cores_however_busy(monkeypatch, restore_threads, capsys):
    monkeypatch.setattr(threads_module, "usable_cores", lambda: 2)
    for load in (0.1, 7.5):   # idle, then busy: the same count (the model depends on it)
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, load, load))
        assert configure_threads(None) == 2 and torch.get_num_threads() == 2
    assert "--threads 1 is usually much faster" in capsys.readouterr().err


def test_an_explicit_count_is_used_and_never_hinted(monkeypatch, restore_threads, capsys):
    monkeypatch.setattr(os, "getloadavg", lambda: (9.0, 9.0, 9.0))
    assert configure_threads(1) == 1 and torch.get_num_threads() == 1
    assert capsys.readouterr().err == ""
    with pytest.raises(MduitError, match="--threads must be >= 1"):
        configure_threads(0)


def test_the_hint_speaks_only_when_several_threads_meet_a_full_machine(monkeypatch):
    monkeypatch.setattr(os, "getloadavg", lambda: (2.0, 2.0, 2.0))
    assert "load 2.0 on 2 cores" in busy_hint(2, 2)
    assert busy_hint(1, 2) is None
    monkeypatch.setattr(os, "getloadavg", lambda: (1.9, 1.9, 1.9))
    assert busy_hint(2, 2) is None

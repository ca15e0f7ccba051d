"""The wall-clock training budget: the step estimate by hand, and a budgeted run end to end."""
import json

import pytest

from mduit_loc.translation.api import load_mduit, train
from mduit_loc.translation.budget import PROBE_STEPS, StepBudget

from .conftest import small_config


def test_length_is_fixed_after_the_probe_steps():
    budget = StepBudget(budget_s=100.0, max_total_steps=1000)
    assert budget.observe(step=1, elapsed_s=5.0, pairing_s=2.0, steps_per_epoch=10) is None  # warm-up step
    for step in range(2, 1 + PROBE_STEPS):  # 1 s per step; the probe lasts 8 steps (< 10 % of 100 s)
        assert budget.observe(step, 5.0 + (step - 1), 2.0, 10) is None
    # step 9 at 13 s: 1 s/step + 2 s pairing / 10 steps = 1.2 s/step; 100 - 13 - 2 (reserve) = 85 s left
    assert budget.observe(9, 13.0, 2.0, 10) == 9 + 70
    assert budget.observe(10, 50.0, 30.0, 10) == 79, "once fixed, the length no longer changes"
    assert not budget.exhausted(99.9) and budget.exhausted(100.0)


def test_length_is_refitted_to_the_measured_pace_while_allowed():
    budget = StepBudget(budget_s=100.0, max_total_steps=1000)
    budget.observe(1, 0.0, 0.0, 10)
    # a slow probe: 10 s for one step (>= 10 % of the budget) -> 2 + floor(90 / 10) = 11 steps
    assert budget.observe(2, 10.0, 0.0, 10) == 11
    # 5 s later (< 10 % of the budget since the fit): no re-fit even if allowed
    assert budget.observe(7, 15.0, 0.0, 10, may_refit=True) == 11
    # at 20 s, 10 steps were done at 1 s/step since the fit at 10 s: 12 + floor((100 - 20 - 2) / 1) = 90
    assert budget.observe(12, 20.0, 2.0, 10, may_refit=False) == 11, "not allowed: the length stays"
    assert budget.observe(12, 20.0, 2.0, 10, may_refit=True) == 90
    assert budget.fit_step == 12 and budget.fit_s == 20.0


def test_a_short_budget_ends_the_probe_early_and_caps_apply():
    budget = StepBudget(budget_s=20.0, max_total_steps=1000)
    budget.observe(1, 5.0, 2.0, 10)
    # one probed step took 3 s >= 10 % of 20 s: 3.2 s/step, 20 - 8 - 2 = 10 s left -> 3 more steps
    assert budget.observe(2, 8.0, 2.0, 10) == 5
    capped = StepBudget(budget_s=1000.0, max_total_steps=50)
    capped.observe(1, 1.0, 0.0, 10)
    assert capped.observe(2, 2.0, 0.0, 10) is None
    assert [capped.observe(s, float(s), 0.0, 10) for s in range(3, 10)][-1] == 50
    late = StepBudget(budget_s=10.0, max_total_steps=1000)
    late.observe(1, 1.0, 0.0, 10)
    assert late.observe(2, 12.0, 0.0, 10) == 3, "over budget already: at least one more step is planned"


def test_budgeted_run_stops_in_time_and_writes_a_model(domain_data, tmp_path):
    config = small_config(max_steps=2000, checkpoint_every=50)
    summary = train(config, domain_data, tmp_path / "run", time_budget_min=0.04, num_workers=0, progress=False)
    assert 1 <= summary.steps < 2000 and summary.total_steps == summary.steps
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["config"]["time_budget_min"] == 0.04
    assert meta["training"]["steps"] == summary.steps
    assert meta["training"]["stopped_by_budget"] == summary.stopped_by_budget
    # 2.4 s of budget; one step of this config takes well under a second even on a busy machine
    assert summary.seconds < 2.4 + 5.0
    model = load_mduit(tmp_path / "run")
    assert sorted(model.domain_filters()) == ["day", "night", "snow"]


def test_train_api_applies_presets_overrides_and_ablation_switches(domain_data, tmp_path):
    from .conftest import TEST_SETTINGS

    summary = train("tiny", domain_data, tmp_path / "run", overrides=TEST_SETTINGS, max_steps=2, use_nce=False,
                    device="cpu", num_workers=0, progress=False)
    assert summary.steps == 2 and not summary.stopped_early
    config = json.loads((tmp_path / "run" / "run.json").read_text())["config"]
    assert config["preset"] == "tiny" and config["use_nce"] is False and config["image_size"] == [32, 32]
    with pytest.raises(Exception, match="--resume"):
        train("tiny", domain_data, tmp_path / "run", overrides=TEST_SETTINGS, max_steps=2, progress=False)

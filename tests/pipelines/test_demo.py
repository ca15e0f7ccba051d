"""``mduit-loc demo`` end to end at miniature size (32 px benchmark, 2 training steps), its re-run
that skips every finished stage, and the budget planning of the MDUIT training."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from mduit_loc import cli
from mduit_loc.errors import MduitError
from mduit_loc.pipelines import grids, stages, training
from mduit_loc.pipelines.methods import MethodSpec
from mduit_loc.pipelines.stages import render_synthetic
from mduit_loc.pipelines.training import TrainingBudget, plan_path

# Miniature settings: every stage runs for real, on 16-32 px images, for one or two steps.
MINI_FLAGS = ["--mduit-steps", "2", "--netvlad-steps", "1", "--mduit-set", "image_size=16x16",
              "--mduit-set", "appearance_input_size=16", "--netvlad-image-size", "32", "--num-workers", "0",
              "--threads", "1", "--no-progress"]


def render_mini_benchmark(root: Path) -> Path:
    """The tiny synthetic benchmark shrunk to 2 locations of 32 px images (a few seconds)."""
    return render_synthetic(root, "tiny", seed=0, size=32, locations=2, quiet=True)


@pytest.fixture(scope="module")
def mini_benchmark(tmp_path_factory) -> Path:
    return render_mini_benchmark(tmp_path_factory.mktemp("demo") / "data")


def _forbid(name: str):
    def fail(*args, **kwargs):
        raise AssertionError(f"{name} was called on a re-run although its output exists")
    return fail


@pytest.mark.slow
def test_demo_runs_end_to_end_then_skips_every_stage(mini_benchmark, tmp_path, capsys, monkeypatch):
    out = tmp_path / "demo"
    assert cli.main(["demo", "--out", str(out), "--data", str(mini_benchmark), *MINI_FLAGS]) == 0
    printed = capsys.readouterr().out

    report = (out / "report.md").read_text(encoding="utf-8")
    for expected in ("MDUIT z (translated db)", "NetVLAD", "Raw pixels", "Day 0.25m/2°", "Night 5m/10°",
                     "recall_curves.png", "MDUIT 2 steps",
                     "night to day", "day to night", "Translation quality", "colour transfer (Lab)",
                     "Self-reconstruction"):
        assert expected in report
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 3          # recall plot + two translation grids
    for path in (out / "translations" / "night_to_day" / "grid.png", out / "translations" / "day_to_night" / "grid.png",
                 out / "recall_curves.png", out / "eval_queries.csv", out / "translation_quality" / "quality.csv",
                 out / "translation_quality" / "summary.json"):
        assert path.is_file(), path
    with open(out / "eval.csv", encoding="utf-8") as handle:
        methods = {row["method"] for row in csv.DictReader(handle)}
    assert methods == {"Raw pixels (no training)", "NetVLAD", "MDUIT z (translated db)",
                       "MDUIT z, queries translated"}
    # Raw pixels train nothing; the query-translation row reuses the MDUIT model and its index.
    assert not (out / "runs" / "raw-pixels").exists() and not (out / "runs" / "mduit-queries-translated").exists()
    assert sorted(p.name for p in (out / "index").iterdir() if p.is_dir()) == [
        "mduit-translated-db-fused0.5", "netvlad", "raw-pixels"]
    summary = json.loads((out / "results" / "mduit-queries-translated" / "summary.json").read_text())
    assert "overcast-reference" in json.dumps(summary)

    # One submission line per rear test query, world->camera, without the condition.
    test_list = (mini_benchmark / "robotcar_v2_test.txt").read_text().split()
    rear_tests = {Path(n).stem for n in test_list if "rear/" in n}
    for key in ("mduit", "netvlad", "raw-pixels", "mduit-queries-translated"):
        lines = (out / "submission" / f"submission_{key}.txt").read_text().splitlines()
        assert {Path(line.split()[0]).stem for line in lines} == rear_tests
        assert all(line.startswith("rear/") and len(line.split()) == 8 for line in lines)

    # The summary names every output.
    for expected in ("report.md", "report.html", "submission_mduit.txt", "grid.png", "timings.json"):
        assert expected in printed

    # Re-run: nothing is rendered, trained, translated or indexed again.
    monkeypatch.setattr(stages, "generate", _forbid("generate"))
    monkeypatch.setattr(training, "train_mduit", _forbid("train_mduit"))
    monkeypatch.setattr(training, "train_netvlad", _forbid("train_netvlad"))
    monkeypatch.setattr(grids, "translate_images", _forbid("translate_images"))
    monkeypatch.setattr(grids, "translation_quality", _forbid("translation_quality"))
    monkeypatch.setattr(stages, "build_index", _forbid("build_index"))
    monkeypatch.setattr(stages, "localize", _forbid("localize"))
    assert cli.main(["demo", "--out", str(out), "--data", str(mini_benchmark), *MINI_FLAGS]) == 0
    assert "skipped: already trained" in capsys.readouterr().err
    assert "Translation quality" in (out / "report.md").read_text(encoding="utf-8")   # read back from summary.json
    timings = json.loads((out / "timings.json").read_text())
    assert {"render", "train-mduit", "train-netvlad", "localize-mduit", "localize-mduit-queries-translated",
            "localize-raw-pixels", "report"} <= set(timings)


def test_demo_refuses_a_non_positive_budget(tmp_path, capsys):
    assert cli.main(["demo", "--out", str(tmp_path / "x"), "--budget-min", "0"]) == 2
    assert "--budget-min must be > 0" in capsys.readouterr().err


def test_render_refuses_a_foreign_non_empty_folder(tmp_path):
    target = tmp_path / "data"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(MduitError, match="no synthetic benchmark"):
        render_synthetic(target, "tiny", size=32, locations=2, quiet=True)


# --- budget planning ----------------------------------------------------------------------------
def _recording_trainer(calls: list):
    """Stands in for ``translation.api.train``: records its arguments."""
    return lambda preset, data, out, **kwargs: calls.append((preset, kwargs))


def test_mduit_gets_the_time_budget_and_keeps_its_plan_for_resume(mini_benchmark, tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setattr(training, "train_mduit", _recording_trainer(calls))
    method = MethodSpec(label="Full", key="mduit-full", kind="mduit", train_settings={"use_nce": False})
    run_dir = tmp_path / "runs" / "mduit-full"
    budget = TrainingBudget(seconds=150.0, mduit_settings={"image_size": (16, 16)}, num_workers=0)
    training._train_mduit(mini_benchmark, method, run_dir, budget)
    [(preset, kwargs)] = calls
    settings = kwargs["overrides"]
    assert preset == "tiny" and settings["use_nce"] is False and settings["image_size"] == (16, 16)
    assert not kwargs["resume"]
    assert settings["time_budget_min"] == 2.5 and "max_steps" not in settings
    assert settings["epochs"] is None          # the time budget alone ends the run
    assert json.loads(plan_path(run_dir).read_text())["minutes"] == 2.5

    # Interrupted run: the plan is kept and the trainer resumes from its checkpoint.
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.pt").write_bytes(b"")
    calls.clear()
    training._train_mduit(mini_benchmark, method, run_dir, TrainingBudget(seconds=999.0))
    [(preset, kwargs)] = calls
    assert kwargs["resume"] and kwargs["overrides"]["time_budget_min"] == 2.5
    assert "epochs" not in kwargs["overrides"]   # the checkpoint's own epoch limit is kept


def test_fixed_steps_replace_the_time_budget(mini_benchmark, tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setattr(training, "train_mduit", _recording_trainer(calls))
    training._train_mduit(mini_benchmark, MethodSpec(label="MDUIT", key="mduit", kind="mduit"), tmp_path / "run",
                          TrainingBudget(seconds=150.0, mduit_steps=7, progress=False))
    [(preset, kwargs)] = calls
    assert kwargs["overrides"]["max_steps"] == 7 and "time_budget_min" not in kwargs["overrides"]
    assert kwargs["progress"] is False


def test_netvlad_gets_the_same_wall_clock_budget():
    config = training.netvlad_config(TrainingBudget(seconds=390.0))
    assert config.max_seconds == 390.0 and config.epochs is None
    assert config.backbone == "light" and config.max_steps is None


def test_the_default_budget_is_steps_the_same_on_every_machine():
    from mduit_loc.pipelines import cli_common

    parser = cli.build_parser("demo")
    args = parser.parse_args(["demo"])
    budget = cli_common.budget_from_args(args, 300)
    assert budget.mduit_steps == 300 and budget.netvlad_steps == 300 and budget.seconds is None
    args = parser.parse_args(["demo", "--mduit-steps", "40"])
    budget = cli_common.budget_from_args(args, 300)
    assert budget.mduit_steps == 40 and budget.netvlad_steps == 40, "NetVLAD gets as many steps as MDUIT"
    args = parser.parse_args(["demo", "--budget-min", "2"])
    budget = cli_common.budget_from_args(args, 300)
    assert budget.seconds == 120.0 and budget.mduit_steps is None and budget.netvlad_steps is None
    with pytest.raises(MduitError, match="step counts"):
        TrainingBudget(mduit_steps=10)

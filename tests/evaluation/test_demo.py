"""``mduit-loc demo`` end to end at miniature size (32 px benchmark, 2 training steps), its re-run
that skips every finished stage, and the budget planning of the MDUIT training."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from mduit_loc import cli
from mduit_loc.evaluation import pipeline, pipeline_training
from mduit_loc.evaluation.pipeline import MethodSpec, render_synthetic
from mduit_loc.evaluation.pipeline_training import TrainingBudget, plan_path, plan_steps

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
    for expected in ("MDUIT (translated db)", "NetVLAD", "Day 0.25m/2°", "Night 5m/10°", "recall_curves.png",
                     "night to day", "day to night"):
        assert expected in report
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 3          # recall plot + two translation grids
    for path in (out / "translations" / "night_to_day" / "grid.png", out / "translations" / "day_to_night" / "grid.png",
                 out / "recall_curves.png", out / "eval_queries.csv"):
        assert path.is_file(), path
    with open(out / "eval.csv", encoding="utf-8") as handle:
        methods = {row["method"] for row in csv.DictReader(handle)}
    assert methods == {"MDUIT (translated db)", "NetVLAD"}

    # One submission line per rear test query, world->camera, without the condition.
    test_list = (mini_benchmark / "robotcar_v2_test.txt").read_text().split()
    rear_tests = {Path(n).stem for n in test_list if "rear/" in n}
    for key in ("mduit", "netvlad"):
        lines = (out / "submission" / f"submission_{key}.txt").read_text().splitlines()
        assert {Path(line.split()[0]).stem for line in lines} == rear_tests
        assert all(line.startswith("rear/") and len(line.split()) == 8 for line in lines)

    # The summary names every output.
    for expected in ("report.md", "report.html", "submission_mduit.txt", "grid.png", "timings.json"):
        assert expected in printed

    # Re-run: nothing is rendered, trained, translated or indexed again.
    monkeypatch.setattr(pipeline, "run_command", _forbid("run_command"))
    monkeypatch.setattr(pipeline_training, "run_command", _forbid("run_command"))
    monkeypatch.setattr("mduit_loc.evaluation.pipeline_grids.run_command", _forbid("run_command"))
    monkeypatch.setattr("mduit_loc.retrieval.api.build_index", _forbid("build_index"))
    monkeypatch.setattr("mduit_loc.retrieval.api.localize", _forbid("localize"))
    assert cli.main(["demo", "--out", str(out), "--data", str(mini_benchmark), *MINI_FLAGS]) == 0
    assert "skipped: already trained" in capsys.readouterr().err
    timings = json.loads((out / "timings.json").read_text())
    assert {"render", "train-mduit", "train-netvlad", "localize-mduit", "report"} <= set(timings)


def test_demo_refuses_a_non_positive_budget(tmp_path, capsys):
    assert cli.main(["demo", "--out", str(tmp_path / "x"), "--budget-min", "0"]) == 2
    assert "--budget-min must be > 0" in capsys.readouterr().err


def test_render_refuses_a_foreign_non_empty_folder(tmp_path):
    target = tmp_path / "data"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(pipeline.MduitError, match="no synthetic benchmark"):
        render_synthetic(target, "tiny", size=32, locations=2, quiet=True)


# --- budget planning ----------------------------------------------------------------------------
def test_plan_steps_fills_the_budget_with_epoch_overheads():
    # 1 s per step, 10 s pairing per epoch of 20 steps, 100 s: a 4th epoch would leave 60 s for 60 steps,
    # which fit in 3 epochs (30 s + 60 s); so 60.
    assert plan_steps(100.0, 1.0, 10.0, 20) == 60
    assert plan_steps(95.0, 1.0, 10.0, 20) == 60              # 3 epochs: 30 s + 60 s <= 95 s
    assert plan_steps(89.0, 1.0, 10.0, 20) == 59              # 3 epochs: 30 s + 59 s
    assert plan_steps(100.0, 1.0, 0.0, 20) == 100
    assert plan_steps(0.5, 1.0, 0.0, 20) == 1                  # at least one step
    with pytest.raises(pipeline.MduitError):
        plan_steps(10.0, 0.0, 0.0, 5)


def _fake_trainer(calls: list, seconds_per_step: list[float]):
    """Stands in for 'mduit-loc train': records argv; a pilot (--stop-after) writes losses.csv."""
    def run_command(command, argv):
        argv = [str(a) for a in argv]
        calls.append((command, argv))
        if "--stop-after" in argv:
            run_dir = Path(argv[argv.index("--out") + 1])
            run_dir.mkdir(parents=True)
            rows = ["step,seconds"] + [f"{i + 1},{s}" for i, s in enumerate(seconds_per_step)]
            (run_dir / "losses.csv").write_text("\n".join(rows) + "\n")
    return run_command


def test_mduit_budget_is_calibrated_by_a_pilot_and_kept_for_resume(mini_benchmark, tmp_path, monkeypatch):
    calls: list = []
    # Pilot: first step 12 s (pairing + caching), then 2 s per step (one 9 s hiccup the median ignores).
    monkeypatch.setattr(pipeline_training, "run_command", _fake_trainer(calls, [12, 14, 16, 25, 27, 29]))
    monkeypatch.setattr(pipeline_training, "trainer_supports_time_budget", lambda: False)
    method = MethodSpec("Full", "mduit-full", "mduit", ("--no-nce",))
    run_dir = tmp_path / "runs" / "mduit-full"
    budget = TrainingBudget(seconds=200.0, mduit_settings=("image_size=16x16",), num_workers=0)
    pipeline_training._train_mduit(mini_benchmark, method, run_dir, budget)

    (pilot_command, pilot_argv), (command, argv) = calls
    assert pilot_command == command == "train"
    assert pilot_argv[pilot_argv.index("--stop-after") + 1] == str(pipeline_training.PILOT_STEPS)
    assert "--no-nce" in argv and "--resume" not in argv and "image_size=16x16" in argv
    plan = json.loads(plan_path(run_dir).read_text())
    assert plan["seconds_per_step"] == 2.0 and plan["epoch_overhead_s"] == 10.0
    # 132 images / batch 8 = 16 steps per epoch; 95 % of 200 s = 190 s: 70 steps (5 epochs) cost 5 x 10 + 70 x 2.
    assert plan["steps_per_epoch"] == 16 and plan["steps"] == 70
    assert argv[argv.index("--max-steps") + 1] == str(plan["steps"])
    assert not (tmp_path / "runs" / "mduit-full.pilot").exists()

    # Interrupted run: same planned steps, --resume, no new pilot.
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "last.pt").write_bytes(b"")
    calls.clear()
    pipeline_training._train_mduit(mini_benchmark, method, run_dir, budget)
    [(command, argv)] = calls
    assert "--resume" in argv and argv[argv.index("--max-steps") + 1] == str(plan["steps"])


def test_mduit_uses_the_trainers_time_budget_when_it_has_one(mini_benchmark, tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setattr(pipeline_training, "run_command", _fake_trainer(calls, []))
    monkeypatch.setattr(pipeline_training, "trainer_supports_time_budget", lambda: True)
    run_dir = tmp_path / "runs" / "mduit"
    pipeline_training._train_mduit(mini_benchmark, MethodSpec("MDUIT", "mduit", "mduit"), run_dir,
                                   TrainingBudget(seconds=150.0))
    [(command, argv)] = calls                                   # no pilot run
    assert argv[argv.index("--time-budget-min") + 1] == "2.5" and "--max-steps" not in argv
    assert json.loads(plan_path(run_dir).read_text())["minutes"] == 2.5


def test_netvlad_gets_the_same_wall_clock_budget(tmp_path, monkeypatch):
    calls: list = []
    monkeypatch.setattr(pipeline_training, "run_command", lambda command, argv: calls.append((command, argv)))
    pipeline_training._train_netvlad(tmp_path / "data", tmp_path / "run", TrainingBudget(seconds=390.0))
    [(command, argv)] = calls
    argv = [str(a) for a in argv]
    assert command == "train-netvlad" and argv[argv.index("--max-seconds") + 1] == "390.0"
    assert argv[argv.index("--backbone") + 1] == "light" and "--max-steps" not in argv

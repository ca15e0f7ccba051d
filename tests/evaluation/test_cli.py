"""``mduit-loc eval`` and ``mduit-loc submit`` end to end on the tiny benchmark; one-line errors."""
from __future__ import annotations

import csv

import pytest

from mduit_loc.cli import main
from mduit_loc.evaluation.cli_eval import default_method_name, split_named
from mduit_loc.pose_files import write_poses
from mduit_loc.poses import yaw_pose

from .conftest import DATA, TEST_GT, TRAIN_GT


def _one_error_line(capsys) -> str:
    """The single 'mduit-loc CMD: error: ...' line (progress lines may precede it), no traceback."""
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if ": error: " in line]
    assert len(errors) == 1 and err[-1] == errors[0] and "Traceback" not in "".join(err), err
    return errors[0]


@pytest.fixture()
def results(tmp_path):
    """Two methods on the test split: 'good' exact on all 4 queries, 'rough' 1 m off and missing night."""
    good = tmp_path / "good" / "poses.txt"
    rough = tmp_path / "rough.txt"
    write_poses(good, TEST_GT)
    write_poses(rough, {name: yaw_pose(0 if "/rear/" in name else 90, pose.center + [1.0, 0, 0])
                        for name, pose in TEST_GT.items() if "night" not in name})
    return good, rough


def test_eval_compares_methods_and_writes_outputs(benchmark_root, results, tmp_path, capsys):
    good, rough = results
    out = tmp_path / "eval"
    code = main(["eval", "--benchmark", "robotcar-seasons", "--data", str(benchmark_root), "--poses", str(good),
                 "--poses", f"coarse={rough}", "--out", str(out), "--details"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "4 queries of the test split" in captured.err
    rows = {}
    for line in captured.out.splitlines():  # the first table is the recall table
        if line.startswith(("good ", "coarse ")):
            rows.setdefault(line.split()[0], line.split()[1:])
    # day: snow rear, snow left, dusk rear; night: night-rain rear
    assert rows["good"] == ["100.0"] * 6
    assert rows["coarse"] == ["0.0", "0.0", "100.0", "0.0", "0.0", "0.0"]
    assert "Recall (%) per camera" in captured.out
    for name in ("eval.csv", "eval_queries.csv", "recall_curves.png", "report.md", "report.html"):
        assert (out / name).is_file(), name
    with open(out / "eval.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert {r["method"] for r in table} == {"good", "coarse"}
    assert "| coarse | 0.0 | 0.0 | 100.0 | 0.0 | 0.0 | 0.0 |" in (out / "report.md").read_text()


def test_eval_train_split_rear_only_and_default_out(benchmark_root, tmp_path, capsys):
    poses = tmp_path / "res" / "poses.txt"
    write_poses(poses, {"sun/rear/2000.png": TRAIN_GT["sun/rear/2000.jpg"]})
    code = main(["eval", "--data", str(benchmark_root), "--split", "train", "--cameras", "rear",
                 "--poses", str(poses), "--thresholds", "1,5"])
    out = capsys.readouterr().out
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("res "))
    assert row.split()[1:] == ["100.0", "0.0"]   # sun rear found; night rear missing
    assert "day all: 1 queries, night all: 1 queries" in out
    assert (tmp_path / "res" / "eval" / "eval.csv").is_file()


def test_eval_errors_are_one_line(benchmark_root, benchmark_without_test_gt, tmp_path, capsys):
    assert main(["eval", "--data", str(benchmark_root), "--poses", str(tmp_path / "none.txt")]) == 2
    line = _one_error_line(capsys)
    assert "file not found" in line and "none.txt" in line

    bad = tmp_path / "bad.txt"
    bad.write_text("# header\nsnow/rear/2100.jpg 1 0 0 0 0 0 0\nsnow/left/2100.jpg 1 0 0 0 0 0\n")
    assert main(["eval", "--data", str(benchmark_root), "--poses", str(bad)]) == 2
    line = _one_error_line(capsys)
    assert f"{bad}:3:" in line and "8 tokens" in line

    good = tmp_path / "good.txt"
    write_poses(good, TEST_GT)
    assert main(["eval", "--data", str(benchmark_without_test_gt), "--split", "test", "--poses", str(good),
                 "--out", str(tmp_path / "e")]) == 2
    assert "mduit-loc submit" in _one_error_line(capsys)

    assert main(["eval", "--data", str(benchmark_root), "--split", "train", "--poses", str(good),
                 "--out", str(tmp_path / "e")]) == 2
    assert "none of its 4 poses is a query of the train split" in _one_error_line(capsys)

    assert main(["eval", "--data", str(benchmark_root)]) == 2
    assert "nothing to evaluate" in _one_error_line(capsys)


def test_submit_writes_the_golden_file_and_refuses_missing(benchmark_root, tmp_path, capsys):
    poses = DATA / "poses_for_submission.txt"
    out = tmp_path / "sub.txt"
    assert main(["submit", "--benchmark", "robotcar-seasons", "--poses", str(poses), "--out", str(out),
                 "--data", str(benchmark_root)]) == 0
    assert out.read_text() == (DATA / "submission_rear.txt").read_text()
    assert "wrote 3 poses" in capsys.readouterr().err

    assert main(["submit", "--poses", str(poses), "--out", str(tmp_path / "v2.txt"), "--v2"]) == 0
    assert (tmp_path / "v2.txt").read_text() == (DATA / "submission_rear_v2.txt").read_text()

    partial = tmp_path / "partial.txt"
    partial.write_text("".join(line for line in poses.read_text().splitlines(keepends=True)
                               if "3100" not in line))
    refused = tmp_path / "refused.txt"
    assert main(["submit", "--poses", str(partial), "--out", str(refused), "--data", str(benchmark_root)]) == 2
    assert "1 of 3 rear test queries have no pose" in _one_error_line(capsys)
    assert not refused.exists()
    assert main(["submit", "--poses", str(partial), "--out", str(refused), "--data", str(benchmark_root),
                 "--allow-missing"]) == 0
    assert len(refused.read_text().splitlines()) == 2
    assert "1 test queries missing (allowed)" in capsys.readouterr().err


def test_method_names():
    assert split_named("mduit=res/poses.txt", "--poses") == ("mduit", "res/poses.txt")
    assert split_named("res/a=b/poses.txt", "--poses") == (None, "res/a=b/poses.txt")
    assert default_method_name("res/netvlad/poses.txt") == "netvlad"
    assert default_method_name("res/mduit_poses.txt") == "mduit_poses"


def test_eval_runs_retrieval_with_model_and_index(benchmark_root, tmp_path, capsys):
    """--model builds an index and localizes; its CSV equals evaluating the poses it wrote, and --index too."""
    pytest.importorskip("mduit_loc.retrieval.api")
    out = tmp_path / "ev"
    assert main(["eval", "--data", str(benchmark_root), "--model", "raw=raw-pixels", "--per-camera",
                 "--device", "cpu", "--out", str(out)]) == 0
    assert "raw: 4 of 4 queries localized" in capsys.readouterr().err
    assert (out / "index-raw").is_dir() and (out / "raw" / "poses.txt").is_file()
    again = tmp_path / "again"
    assert main(["eval", "--data", str(benchmark_root), "--poses", f"raw={out / 'raw' / 'poses.txt'}",
                 "--index", f"indexed={out / 'index-raw'}", "--per-camera", "--device", "cpu",
                 "--out", str(again)]) == 0
    expected = _csv_rows(out / "eval.csv")
    rows = _csv_rows(again / "eval.csv")
    assert expected and [r for r in rows if r[0] == "raw"] == expected
    assert [["raw", *r[1:]] for r in rows if r[0] == "indexed"] == expected


def _csv_rows(path):
    """Rows with medians rounded: poses files keep 10 digits, so a 0 error may read back as 6e-7 deg."""
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))[1:]
    return [r[:-2] + [f"{float(v):.3f}" for v in r[-2:]] for r in rows]


def test_eval_outputs_are_one_set_and_a_second_eval_into_the_folder_is_refused(benchmark_root, results, tmp_path,
                                                                             capsys, monkeypatch):
    """Issue 12 items 11 and 12 for ``eval --out``."""
    from mduit_loc.evaluation import cli_eval

    from ..test_output_lock import hold_in_another_process

    good, _ = results
    out = tmp_path / "eval"
    command = ["eval", "--data", str(benchmark_root), "--poses", str(good), "--out", str(out)]
    assert main(command) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")}

    def dying_plot(*args, **kwargs):
        raise RuntimeError("killed between eval.csv and the plot")

    monkeypatch.setattr(cli_eval, "plot_recall_curves", dying_plot)
    assert main(command) == 2
    assert {p.name: p.read_bytes() for p in out.iterdir() if not p.name.startswith(".")} == before
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [".mduit-lock"]
    holder = hold_in_another_process(out, "eval")
    try:
        capsys.readouterr()
        assert main(command) == 2
        assert f"another mduit-loc eval (pid {holder.pid}) is writing to {out}" in _one_error_line(capsys)
    finally:
        holder.communicate("")

"""Table 1: all rows trained and evaluated on a miniature benchmark, resumed per method, rendered
beside the paper's numbers; the ``table1`` command and its ``eval --table1`` alias."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
import torch

from mduit_loc import cli
from mduit_loc.errors import MduitError
from mduit_loc.pipelines import cli_table1, table1, training
from mduit_loc.pipelines.methods import FUSED_WEIGHT, MethodSpec, RetrievalProtocol
from mduit_loc.pipelines.table1 import PAPER_TABLE1, TABLE1_METHODS, Table1, Table1Row, run_table1
from mduit_loc.pipelines.training import TrainingBudget, TrainingRecord
from mduit_loc.retrieval.faiss_index import load_index

from .test_demo import render_mini_benchmark

MINI_BUDGET = TrainingBudget(seconds=60.0, mduit_steps=1, netvlad_steps=1,
                             mduit_settings={"image_size": (16, 16), "appearance_input_size": 16},
                             netvlad_image_size=(32, 32), num_workers=0, progress=False)
MINI_PROTOCOL = RetrievalProtocol(num_workers=0, progress=False)
ROWS = ["Raw pixels (no training)", "NetVLAD", "w/o I2I, NCE", "w/o I2I", "w/o NCE", "Full", "Full, plain db",
        "Full, best copy", "Raw pixels, queries translated", "NetVLAD, queries translated", "Full, queries translated"]


@pytest.fixture(scope="module")
def mini_benchmark(tmp_path_factory) -> Path:
    return render_mini_benchmark(tmp_path_factory.mktemp("table1") / "data")


def test_the_rows_are_the_papers_ablations():
    flags = {m.label: (m.kind, m.train_settings, m.translate_db) for m in TABLE1_METHODS}
    assert flags == {"Raw pixels (no training)": ("raw", {}, False), "NetVLAD": ("netvlad", {}, False),
                     "w/o I2I, NCE": ("mduit", {"use_i2i": False, "use_nce": False}, False),
                     "w/o I2I": ("mduit", {"use_i2i": False}, False),
                     "w/o NCE": ("mduit", {"use_nce": False}, True),
                     "Full": ("mduit", {}, True)}
    fused = {m.label: m.fuse_translations for m in TABLE1_METHODS if m.translate_db}
    assert fused == {"w/o NCE": FUSED_WEIGHT, "Full": FUSED_WEIGHT} and table1.FULL_BEST_COPY.fuse_translations is None
    with pytest.raises(MduitError, match="fuse_translations needs translate_db"):
        MethodSpec(label="x", key="x", kind="mduit", fuse_translations=FUSED_WEIGHT)
    assert PAPER_TABLE1["Full"] == (8.5, 31.8, 88.2, 4.1, 14.2, 61.0)
    assert PAPER_TABLE1["NetVLAD"] == (6.4, 26.3, 90.9, 0.3, 2.3, 15.9)


def test_comparison_cells_put_the_paper_beside_ours(tmp_path):
    record = TrainingRecord(tmp_path, 12.0, 3)
    rows = [Table1Row(TABLE1_METHODS[1], (0.125, 0.5, 1.0, 0.0, 0.0, 0.25), record),
            Table1Row(MethodSpec(label="Extra", key="extra", kind="mduit"), (0.0,) * 6, record)]
    table = Table1(rows, [], 8, 4, tmp_path, MINI_BUDGET, MINI_PROTOCOL)
    cells = table1.comparison_table(table).rows
    assert cells[0] == ["NetVLAD", "12.5 (6.4)", "50.0 (26.3)", "100.0 (90.9)", "0.0 (0.3)", "0.0 (2.3)",
                        "25.0 (15.9)"]
    assert cells[1][1] == "0.0 (-)"                        # no paper number for a row the paper lacks
    assert table1.ours_table(table).rows[0][-2:] == ["12", "3"]


def _read_csv(path: Path) -> dict[str, dict[str, str]]:
    with open(path, encoding="utf-8") as handle:
        return {row["method"]: row for row in csv.DictReader(handle)}


@pytest.mark.slow
def test_table1_trains_every_row_then_resumes_per_method(mini_benchmark, tmp_path, monkeypatch, capsys):
    out = tmp_path / "t1"
    table = run_table1(mini_benchmark, out, MINI_BUDGET, MINI_PROTOCOL)
    assert [row.method.label for row in table.rows] == ROWS
    assert all(len(row.recalls) == 6 and all(0.0 <= r <= 1.0 for r in row.recalls) for row in table.rows)
    assert all(row.training.steps == (0 if row.method.kind == "raw" else 1) for row in table.rows)
    first = _read_csv(out / "table1.csv")
    assert list(first) == ROWS
    assert first["w/o NCE"]["paper night 5m/10°"] == "41.9" and first["Full, plain db"]["paper day 5m/10°"] == ""
    markdown = (out / "table1.md").read_text(encoding="utf-8")
    assert "Ours (the paper's RobotCar Seasons number in parentheses)" in markdown and "(88.2)" in markdown
    # The plain-database row reuses Full's model; the models with I2I indexed translated copies.
    assert not (out / "runs" / "mduit-full-plain-db").exists()
    assert (out / "index" / "mduit-full-translated-db-fused0.5" / "translations.h5").is_file()
    assert not (out / "index" / "mduit-no-i2i" / "translations.h5").exists()
    # The query-translation rows reuse the indexes of their methods and translate with Full's model.
    assert sorted(p.name for p in (out / "index").iterdir() if p.is_dir()) == [
        "mduit-full", "mduit-full-translated-db", "mduit-full-translated-db-fused0.5", "mduit-no-i2i",
        "mduit-no-i2i-no-nce", "mduit-no-nce-translated-db-fused0.5", "netvlad", "raw-pixels"]
    # Fused rows hold one vector per image; the best-copy row one per copy.
    fused = load_index(out / "index" / "mduit-full-translated-db-fused0.5")
    copies = load_index(out / "index" / "mduit-full-translated-db")
    assert fused.table.num_vectors == fused.table.num_images == copies.table.num_images
    assert copies.table.num_vectors == copies.table.num_images * len(copies.table.appearances) > fused.table.num_vectors
    assert fused.manifest["translation"]["fused_weight"] == 0.5
    summary = json.loads((out / "results" / "netvlad-queries-translated" / "summary.json").read_text())
    assert "overcast-reference" in json.dumps(summary) and "mduit-full" in json.dumps(summary)

    # Remove NetVLAD's results and model: only NetVLAD is trained and localized again.
    shutil.rmtree(out / "runs" / "netvlad")
    shutil.rmtree(out / "results" / "netvlad")
    shutil.rmtree(out / "results" / "netvlad-queries-translated")
    commands: list[str] = []

    def recording(name, real):
        def call(*args, **kwargs):
            commands.append(name)
            return real(*args, **kwargs)
        return call

    for name in ("train_netvlad", "train_mduit"):
        monkeypatch.setattr(training, name, recording(name, getattr(training, name)))
    again = run_table1(mini_benchmark, out, MINI_BUDGET, MINI_PROTOCOL)
    assert commands == ["train_netvlad"]
    second = _read_csv(out / "table1.csv")
    for label in ROWS:   # untouched rows keep their numbers
        if "NetVLAD" not in label:
            assert second[label] == first[label]
    assert [row.method.label for row in again.rows] == ROWS


def test_eval_table1_refuses_poses_and_bad_budget(tmp_path, capsys):
    assert cli.main(["eval", "--table1", "--data", str(tmp_path), "--poses", str(tmp_path / "p.txt")]) == 2
    assert "--table1 trains its own models" in capsys.readouterr().err
    assert cli.main(["eval", "--table1", "--data", str(tmp_path), "--budget-min", "-1"]) == 2
    assert "--budget-min must be > 0" in capsys.readouterr().err
    assert cli.main(["table1", "--data", str(tmp_path), "--budget-min", "0"]) == 2
    assert "--budget-min must be > 0" in capsys.readouterr().err


def test_the_alias_routes_eval_table1_to_the_table1_command():
    assert cli.resolve_alias(["eval", "--table1", "--data", "d"]) == ["table1", "--data", "d"]
    assert cli.resolve_alias(["eval", "--data", "d", "--table1", "--out", "o"]) == ["table1", "--data", "d",
                                                                                   "--out", "o"]
    assert cli.resolve_alias(["eval", "--data", "d", "--poses", "p"]) == ["eval", "--data", "d", "--poses", "p"]
    assert cli.resolve_alias(["table1", "--data", "d"]) == ["table1", "--data", "d"]
    assert cli.resolve_alias([]) == []


def test_table1_is_a_command_of_its_own(capsys):
    assert "table1" in cli.COMMANDS and cli.COMMANDS["table1"][0] == "mduit_loc.pipelines.cli_table1"
    with pytest.raises(SystemExit):
        cli.main(["table1", "--help"])
    assert "--budget-min" in capsys.readouterr().out
    # eval scores poses only: its parser has no Table 1 options any more.
    with pytest.raises(SystemExit):
        cli.main(["eval", "--help"])
    assert "--budget-min" not in capsys.readouterr().out


def _fake_table1(seen: dict, tmp_path: Path):
    def fake_run_table1(data, out, budget, protocol):
        seen.update(data=data, out=out, budget=budget, protocol=protocol)
        record = TrainingRecord(tmp_path, 1.0, 1)
        rows = [Table1Row(m, (0.5,) * 6, record) for m in TABLE1_METHODS]
        return Table1(rows, [], 2, 2, Path(data), budget, protocol)
    return fake_run_table1


@pytest.mark.parametrize("command", [["table1"], ["eval", "--table1"]])
def test_table1_wires_its_flags(command, tmp_path, monkeypatch, capsys):
    seen: dict = {}
    rendered = []
    monkeypatch.setattr(cli_table1, "run_table1", _fake_table1(seen, tmp_path))
    monkeypatch.setattr(cli_table1, "render_synthetic", lambda root, preset, **kw: rendered.append((root, preset)))
    argv = [*command, "--data", str(tmp_path / "d"), "--preset", "small", "--budget-min", "6.5",
            "--out", str(tmp_path / "o"), "--mduit-steps", "5", "--mduit-set", "image_size=32x32",
            "--num-workers", "0", "--no-progress", "--device", "cpu"]
    assert cli.main(argv) == 0
    budget, protocol = seen["budget"], seen["protocol"]
    assert budget.seconds == 390.0 and budget.mduit_steps == 5 and budget.mduit_settings == {"image_size": (32, 32)}
    assert budget.num_workers == 0 and not budget.progress and budget.device == torch.device("cpu")
    assert protocol.per_camera and protocol.per_location and protocol.pose == "top1"
    assert protocol.device == torch.device("cpu")
    assert seen["out"] == tmp_path / "o" and rendered == [(tmp_path / "d", "small")]
    printed = capsys.readouterr().out
    assert "Paper, Table 1 (RobotCar Seasons)" in printed and "w/o I2I, NCE" in printed

"""``mduit-loc translation-quality`` end to end on a miniature benchmark with a 2-step model: the four
output files, their rows and measures, a re-run replacing them, and the errors before any work."""
from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from mduit_loc import cli
from mduit_loc.errors import FormatError
from mduit_loc.evaluation.translation_quality_outputs import MEMBERS, pooled_table, read_quality_summary, verdicts

from .mini_mduit import mini_benchmark_and_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mini(tmp_path_factory) -> tuple[Path, Path]:
    return mini_benchmark_and_model(tmp_path_factory.mktemp("quality"))


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_every_pair_and_method_is_scored_and_pooled(mini, tmp_path, capsys):
    data, run = mini
    out = tmp_path / "quality"
    # 6 of the 24 aligned poses: the other 18 database images give overcast-reference's colour statistics.
    assert cli.main(["translation-quality", "--model", str(run), "--data", str(data), "--out", str(out),
                     "--max-poses", "6", "--no-progress", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    for expected in ("day->night", "night->day", "MDUIT", "colour transfer (Lab)", "identity (no translation)",
                     "floor: target at another pose", "Evaluated at 32x32 px", "Self-reconstruction"):
        assert expected in printed
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(MEMBERS)

    rows = _rows(out / "quality.csv")
    assert len(rows) == 4 * 10 * 9                       # methods x ordered pairs of 10 conditions
    assert {r["method"] for r in rows} == {"mduit", "colour-transfer", "identity", "other-pose"}
    assert all(r["images"] == "6" and r["source"] != r["target"] for r in rows)
    identity = [r for r in rows if r["method"] == "identity"]
    assert all(float(r["grad_ssim"]) == pytest.approx(1.0) and float(r["content_cos"]) == pytest.approx(1.0)
               for r in identity)
    assert {r["direction"] for r in rows if r["source"] == "night" and r["target"] == "sun"} == {"night->day"}

    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["size"] == [32, 32] and summary["settings"]["appearance"] == "domain"
    assert summary["settings"]["poses"] == 6 and summary["settings"]["pairs"] == 90
    pooled = {(p["direction"], p["method"]): p for p in summary["pooled"]}
    assert pooled[("day->night", "mduit")]["pairs"] == 16 and pooled[("all", "mduit")]["images"] == 90 * 6
    # The colour transfer reaches the statistics the colour classifier uses (its centroids).
    assert pooled[("all", "colour-transfer")]["colour_acc"] > 0.8
    assert set(summary["verdicts"]) == {"day->night", "night->day"}
    for found in summary["verdicts"].values():   # the margin lies inside its interval over the 6 poses
        low, high = found["psnr_margin_ci95_db"]
        assert low <= found["psnr_margin_db"] <= high
    assert "95 % interval over the poses scored" in printed
    assert all(len(p["psnr_by_pose"]) == 6 for p in summary["pairs"])
    assert len(summary["reconstruction"]) == 10
    assert [r["held_out"] for r in summary["reconstruction"]][:2] == [False, True]   # the reference is trained on
    assert len(_rows(out / "reconstruction.csv")) == 10
    assert "| day->night | MDUIT |" in (out / "summary.md").read_text()
    # summary.json reads back into the same tables (the demo's re-run shows them without measuring again).
    again = read_quality_summary(out / "summary.json")
    assert pooled_table(again).rows == [[cell for cell in row] for row in _pooled_rows(printed)]
    for group, found in verdicts(again).items():   # the per-pose PSNR is kept to 4 decimals
        written = summary["verdicts"][group]
        assert found["psnr_margin_ci95_db"] == pytest.approx(written["psnr_margin_ci95_db"], abs=1e-3)
        assert (found["better_baseline"], found["target_met"]) == (written["better_baseline"], written["target_met"])
    summary["pairs"][0]["psnr_by_pose"] = summary["pairs"][0]["psnr_by_pose"][:5]
    (tmp_path / "cut.json").write_text(json.dumps(summary))
    with pytest.raises(FormatError, match="5 per-pose PSNR values for 6 images"):
        read_quality_summary(tmp_path / "cut.json")
    # A summary written before the per-pose values were kept still reads, without the interval.
    for pair in summary["pairs"]:
        del pair["psnr_by_pose"]
    (tmp_path / "old.json").write_text(json.dumps(summary))
    assert all(v["psnr_margin_ci95_db"] is None for v in verdicts(read_quality_summary(tmp_path / "old.json")).values())


def _pooled_rows(printed: str) -> list[list[str]]:
    """The pooled table's rows as printed (cells separated by two or more spaces)."""
    lines = printed.split("Translation quality on the aligned set (pooled)")[1].split("\n")[4:16]
    return [re.split(r"\s{2,}", line.strip()) for line in lines]


def test_a_rerun_with_exemplars_replaces_the_whole_set(mini, tmp_path):
    data, run = mini
    out = tmp_path / "quality"
    args = ["translation-quality", "--model", str(run), "--data", str(data), "--out", str(out), "--max-poses", "4",
            "--no-progress", "--device", "cpu"]
    assert cli.main([*args, "--pairs", "night:*"]) == 0
    assert len(_rows(out / "quality.csv")) == 4 * 9
    assert cli.main([*args, "--pairs", "night:sun", "--appearance", "exemplar", "--size", "16x16"]) == 0
    assert len(_rows(out / "quality.csv")) == 4
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["appearance"] == "exemplar" and summary["settings"]["size"] == [16, 16]
    assert set(summary["verdicts"]) == {"night->day"}   # the only direction measured


def test_errors_come_before_any_output(mini, tmp_path, capsys):
    data, run = mini
    out = tmp_path / "quality"
    no_aligned = tmp_path / "plain"
    no_aligned.mkdir()
    assert cli.main(["translation-quality", "--model", str(run), "--data", str(no_aligned), "--out", str(out)]) == 2
    assert "aligned set not found" in capsys.readouterr().err
    assert cli.main(["translation-quality", "--model", str(run), "--data", str(data), "--out", str(out),
                     "--pairs", "night:moon", "--device", "cpu"]) == 2
    assert "unknown condition 'moon'" in capsys.readouterr().err
    assert not any((out / name).exists() for name in MEMBERS)

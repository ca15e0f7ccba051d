"""``benchmarks/translation_supervised_bound.py``: the route split, the pairs, and a run on the miniature
benchmark in which fine-tuning on the aligned pairs must lower their error."""
from __future__ import annotations

import copy
import importlib.util
import sys
from pathlib import Path

import pytest
import torch

from mduit_loc.datasets.aligned import AlignedPose, read_aligned_set
from mduit_loc.translation.model_io import load_mduit

from .mini_mduit import mini_benchmark_and_model

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "translation_supervised_bound.py"


@pytest.fixture(scope="module")
def bound():
    sys.path.insert(0, str(SCRIPT.parent))        # the script imports its sibling, as when run from benchmarks/
    spec = importlib.util.spec_from_file_location("translation_supervised_bound", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def mini(tmp_path_factory) -> tuple[Path, Path]:
    return mini_benchmark_and_model(tmp_path_factory.mktemp("bound"))


def _pose(camera: str, timestamp: int) -> AlignedPose:
    return AlignedPose(camera=camera, timestamp=str(timestamp), images={})


def test_the_route_split_keeps_each_timestamp_on_one_side(bound):
    # Three cameras share each timestamp; timestamps sort as numbers, not as text (9 < 10).
    poses = [_pose(camera, stamp) for stamp in (12, 9, 10, 11, 13, 14) for camera in ("left", "rear", "right")]
    teach, scored = bound.route_split(poses, 2 / 3)
    assert sorted({int(p.timestamp) for p in teach}) == [9, 10, 11, 12]
    assert sorted({int(p.timestamp) for p in scored}) == [13, 14]
    assert len(teach) == 12 and len(scored) == 6


def test_only_day_night_pairs_are_used(bound):
    pairs = bound.day_night_pairs(("overcast-reference", "sun", "night", "night-rain"))
    assert set(pairs) == {("overcast-reference", "night"), ("overcast-reference", "night-rain"),
                          ("sun", "night"), ("sun", "night-rain"), ("night", "overcast-reference"),
                          ("night", "sun"), ("night-rain", "overcast-reference"), ("night-rain", "sun")}


def test_fine_tuning_lowers_the_error_on_its_pairs_and_leaves_the_model_alone(bound, mini):
    data, run = mini
    model = load_mduit(run).eval()
    before = copy.deepcopy(model.state_dict())
    aligned = read_aligned_set(data)
    images = bound.aligned_images(aligned.poses, aligned.conditions, model.image_size)
    tuned = bound.fine_tune(model, images, steps=100, train_content=False, batch=16, lr=1e-3, seed=0)
    as_trained, fitted = bound.scores(model, images), bound.scores(tuned, images)
    assert all(fitted[d] > as_trained[d] for d in bound.DIRECTIONS), (as_trained, fitted)
    for name, value in model.state_dict().items():        # the run's model is a copy's source, not changed
        assert torch.equal(value, before[name]), name
    assert all(torch.equal(a, b) for a, b in zip(tuned.content_encoder.state_dict().values(),
                                                  model.content_encoder.state_dict().values()))


def test_the_script_prints_every_row(bound, mini, tmp_path, capsys):
    data, run = mini
    out = tmp_path / "bound.md"
    assert bound.main(["--data", str(data), "--model", str(run), "--steps", "2", "--batch", "4",
                       "--threads", "1", "--out", str(out)]) == 0
    table = out.read_text(encoding="utf-8")
    assert table == capsys.readouterr().out
    for row in ("colour transfer", "MDUIT as trained", "G fine-tuned", "E_c and G fine-tuned"):
        assert row in table

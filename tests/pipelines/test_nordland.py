"""The Nordland protocol: +-2 frame scoring on hand-made cases, the split, the layouts, the skip."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from mduit_loc.errors import FormatError, MduitError
from mduit_loc.pipelines import nordland

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_nordland.py"


def _frames(numbers) -> list[str]:
    return [f"images-{n:05d}.png" for n in numbers]


def test_frame_number_parses_the_file_name():
    assert nordland.frame_number("images-00010.png") == 10
    assert nordland.frame_number("winter/images-17880.png") == 17880
    with pytest.raises(FormatError):
        nordland.frame_number("images-last.png")


def test_correct_within_two_frame_steps_inclusive():
    # Frame numbers step by 10: +-2 frames = +-20 in file numbers, inclusive.
    query = [100, 100, 100, 100, 100, 100]
    retrieved = [100, 80, 120, 79, 121, 130]
    assert nordland.correct_within(query, retrieved, frame_step=10).tolist() == [True, True, True, False, False, False]
    assert nordland.correct_within([5], [7], frame_step=1, tolerance=2).tolist() == [True]
    assert nordland.correct_within([5], [8], frame_step=1, tolerance=2).tolist() == [False]
    with pytest.raises(MduitError):
        nordland.correct_within([1, 2], [1], frame_step=1)


def test_recall_at_k_counts_missing_queries_as_failures():
    ranked = {"winter/images-00100.png": ["summer/images-00130.png", "summer/images-00110.png"],  # top-2 ok
              "winter/images-00200.png": ["summer/images-00200.png"],                             # exact
              "winter/images-00300.png": ["summer/images-00500.png"]}                             # wrong
    names = [*ranked, "winter/images-00400.png"]                                                  # no result
    assert nordland.recall_at(ranked, names, 1, frame_step=10) == pytest.approx(1 / 4)
    assert nordland.recall_at(ranked, names, 5, frame_step=10) == pytest.approx(2 / 4)
    assert nordland.recall_at(ranked, names, 1, frame_step=10, tolerance=0) == pytest.approx(1 / 4)
    with pytest.raises(MduitError):
        nordland.recall_at(ranked, [], 1, frame_step=10)


def test_split_keeps_train_and_test_places_apart():
    frames = _frames(range(10, 210, 10))              # 20 frames
    split = nordland.split_frames(frames, 0.5)
    assert split.frame_step == 10
    assert split.train == frames[:10] and split.test == frames[10:]
    assert not set(split.train) & set(split.test)
    with pytest.raises(MduitError):
        nordland.split_frames(frames, 1.0)


def _fake_nordland(root: Path, numbers) -> Path:
    from mduit_loc.datasets.images import save_image

    for season, value in (("summer", 180), ("winter", 60)):
        for name in _frames(numbers):
            save_image(root / season / name, np.full((32, 64, 3), value, np.uint8))
    return root


def test_layouts_for_both_trainers(tmp_path):
    from mduit_loc.datasets import open_dataset

    root = _fake_nordland(tmp_path / "nordland", range(10, 130, 10))
    (root / "summer" / "images-99990.png").write_bytes(b"")   # only in one season: left out
    frames = nordland.list_frames(root)
    assert len(frames) == 12 and frames[0] == "images-00010.png"
    domains = open_dataset(nordland.write_domain_folders(root, frames[:6], tmp_path / "domains"))
    assert sorted({q.condition for q in domains.queries}) == ["summer", "winter"] and len(domains.queries) == 12
    posed = open_dataset(nordland.write_posed_map(root, frames[:6], nordland.SEASONS, tmp_path / "posed", 10))
    assert len(posed.database) == 12
    by_name = {d.name: d.pose for d in posed.database}
    # Same frame in both seasons: same place; one frame step apart: SPACING_M metres.
    assert np.allclose(by_name["summer/images-00020.png"].center, by_name["winter/images-00020.png"].center)
    step = by_name["summer/images-00030.png"].center - by_name["summer/images-00020.png"].center
    assert np.linalg.norm(step) == pytest.approx(nordland.SPACING_M)


def test_missing_data_is_skipped_with_its_reason(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_nordland", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--data", str(tmp_path / "absent"), "--work", str(tmp_path / "work")]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("SKIP bench_nordland:") and "absent not found" in printed
    (tmp_path / "half" / "summer").mkdir(parents=True)
    assert bench.main(["--data", str(tmp_path / "half"), "--work", str(tmp_path / "work")]) == 0
    assert "no winter folder" in capsys.readouterr().out
    assert not (tmp_path / "work").exists()


def test_translation_examples_show_evenly_spaced_test_frames_with_their_truth(tmp_path):
    import warnings

    from mduit_loc.translation.api import train

    from ..evaluation.mini_mduit import MINI_MODEL

    root = _fake_nordland(tmp_path / "nordland", range(10, 130, 10))
    split = nordland.split_frames(nordland.list_frames(root))
    domains = nordland.write_domain_folders(root, split.train, tmp_path / "domains")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*no pretrained VGG-16 weights.*")
        train("tiny", domains, tmp_path / "run", overrides=MINI_MODEL, max_steps=2, device="cpu", progress=False,
              num_workers=0, threads=1)
    grid = nordland.translation_examples(tmp_path / "run", root, split, tmp_path / "out", count=3,
                                         device=torch.device("cpu"))
    assert grid == tmp_path / "out" / "grid.png" and grid.stat().st_size > 0
    # First, middle and last test frames, each translated into the summer domain's mean appearance.
    written = sorted(p.name for p in (tmp_path / "out").glob("*.png") if p.name != "grid.png")
    picks = [split.test[0], split.test[(len(split.test) - 1) // 2], split.test[-1]]
    assert written == [f"{i:03d}_{name.removesuffix('.png')}__00_domain-summer.png" for i, name in enumerate(picks)]

"""The validation split (every third training frame, all cameras) and its in-memory Table 1 recall."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mduit_loc.datasets import open_dataset
from mduit_loc.datasets.layout import day_or_night
from mduit_loc.pipelines.validation import ValidationSet, validation_frames
from mduit_loc.poses import pose_errors
from mduit_loc.translation.data import load_training_set

from .test_demo import render_mini_benchmark


@pytest.fixture(scope="module")
def mini_benchmark(tmp_path_factory) -> Path:
    return render_mini_benchmark(tmp_path_factory.mktemp("validation") / "data")


def test_training_frames_with_all_their_cameras(mini_benchmark):
    # (the miniature benchmark has one training frame per condition: every=1 takes them all)
    dataset = open_dataset(mini_benchmark)
    chosen = validation_frames(dataset, every=1)
    queries = {q.name: q for q in dataset.queries}
    assert chosen and all(queries[name].split == "train" for name in chosen)
    frames = {(queries[n].condition, queries[n].timestamp) for n in chosen}
    assert len(chosen) == 3 * len(frames), "all three cameras of each chosen frame"
    for condition in {c for c, _ in frames}:
        stamps = sorted({q.timestamp for q in dataset.queries if q.split == "train" and q.condition == condition},
                        key=int)
        assert {s for c, s in frames if c == condition} == set(stamps)
    assert validation_frames(dataset, every=3) <= chosen


def test_validation_images_are_kept_out_of_training(mini_benchmark):
    validation = ValidationSet.of(mini_benchmark, every=1)
    everything = load_training_set(mini_benchmark)
    kept = load_training_set(mini_benchmark, exclude=validation.excluded)
    assert set(validation.names) <= set(everything.names)
    assert not set(validation.names) & set(kept.names)
    assert len(kept) == len(everything) - len(validation.excluded)


def test_recall_of_a_constant_descriptor_is_the_first_allowed_image(mini_benchmark):
    # Every image gets the same vector: the top-1 is the first database image of the query's camera and
    # location, so the recall can be computed by hand from the poses.
    validation = ValidationSet.of(mini_benchmark, every=1)
    recall = validation.recall(lambda x: torch.ones(len(x), 4), (16, 16))
    dataset = validation.dataset
    truth = {i.name: i.pose for i in dataset.training_images(include_test_queries=False)}
    meta = {q.name: q for q in dataset.queries}
    hits: dict[str, list[bool]] = {"day": [], "night": []}
    for name in validation.names:
        first = next(d for d in dataset.database
                     if d.camera == meta[name].camera and d.location == meta[name].location)
        position, rotation = pose_errors(first.pose, truth[name])
        hits[day_or_night(meta[name].condition)].append(position <= 5.0 and rotation <= 10.0)
    for part in ("day", "night"):
        expected = 100.0 * float(np.mean(hits[part])) if hits[part] else float("nan")
        assert recall[part][2] == pytest.approx(expected, nan_ok=True)
    assert validation.counts()["day"] + validation.counts()["night"] == len(validation.names)

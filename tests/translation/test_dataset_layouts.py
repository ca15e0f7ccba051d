"""Training on the RobotCar Seasons layout (a minimal synthetic benchmark): domains, poses, negatives."""
import json

import pytest
import torch

from mduit_loc.datasets.synthetic import generate, get_preset
from mduit_loc.translation.api import train
from mduit_loc.translation.data import load_training_set
from mduit_loc.translation.pairing import FIRST_NEGATIVE, REAL_POSITIVE, SOURCE, build_epoch_plan

from .conftest import small_config


@pytest.fixture(scope="module")
def robotcar_layout(tmp_path_factory):
    """One location at 32 px: 12 database and 54 query images in 10 conditions (~4 s to render)."""
    root = tmp_path_factory.mktemp("synth") / "data"
    generate(root, get_preset("tiny", image_size=32, n_locations=1), seed=1, workers=1, progress=False)
    return root


def test_training_set_of_the_robotcar_layout(robotcar_layout):
    everything = load_training_set(robotcar_layout)
    labelled = load_training_set(robotcar_layout, include_test_queries=False)
    assert "overcast-reference" in everything.domain_names and "night" in everything.domain_names
    assert len(everything.domain_names) == 10, "domains are the conditions"
    known = int(everything.places.known.sum())
    assert 0 < known < len(everything), "test queries join training without their poses"
    # without test queries: fewer images, the same posed ones (every camera of a training frame, through the rig)
    assert len(labelled) < len(everything) and int(labelled.places.known.sum()) == known
    train_queries = [n for n in labelled.names if not n.startswith("overcast-reference")]
    assert known - (len(labelled) - len(train_queries)) == len(train_queries), "all cameras of train frames posed"


def test_negatives_on_real_poses_are_never_the_same_view(robotcar_layout):
    images = load_training_set(robotcar_layout)
    z = torch.nn.functional.normalize(torch.randn(len(images), 8, generator=torch.Generator().manual_seed(0)), dim=1)
    plan = build_epoch_plan(z, images.domain_ids, images.places, n_negatives=4, seed=0, epoch=0)
    posed = images.places.known[plan[:, SOURCE]]
    near = images.places.same_place(plan[posed, SOURCE])
    negatives = plan[posed, FIRST_NEGATIVE:]
    assert posed.any() and not near.gather(1, negatives).any()
    assert images.places.known[negatives].all(), "a posed source gets posed negatives only"
    # real positives: the same place, from another condition whenever the place has one
    positives = plan[posed, REAL_POSITIVE]
    has_positive = positives != plan[posed, SOURCE]
    assert has_positive.float().mean() > 0.9
    assert near.gather(1, positives[:, None])[has_positive].all()
    cross = images.domain_ids[positives] != images.domain_ids[plan[posed, SOURCE]]
    assert cross[has_positive].float().mean() > 0.5


def test_train_on_the_robotcar_layout(robotcar_layout, tmp_path):
    summary = train(small_config(max_steps=2), robotcar_layout, tmp_path / "run", device="cpu", num_workers=0,
                    progress=False)
    assert summary.steps == 2
    meta = json.loads((tmp_path / "run" / "run.json").read_text())
    assert meta["domains"] == sorted(meta["domain_counts"]) and len(meta["domains"]) == 10
    assert 0 < meta["poses_known"] < meta["num_training_images"]

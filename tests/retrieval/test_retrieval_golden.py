"""Golden outputs of index + query on solid-colour images whose similarities are computed by hand.

Database (colour -> unit vector): a red (1,0,0), b yellow (1,1,0)/sqrt2, c green, d blue.
Query q1 = (255, 66, 0): cosines a 0.968099, b 0.861727, c 0.250567, d 0.
Query q2 = (0, 128, 255): a 0, b 0.317219, c 0.448615, d 0.893725.
"""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from mduit_loc.pose_files import read_pairs, read_poses
from mduit_loc.retrieval.api import build_index, localize
from mduit_loc.retrieval.outputs import QUERIES_COLUMNS

from . import retrieval_fakes as fakes

GOLDEN = Path(__file__).parent / "data" / "golden"
Q = (0.5, 0.5, 0.5, 0.5)


@pytest.fixture(scope="module")
def color_index(tmp_path_factory):
    root = tmp_path_factory.mktemp("colors")
    dataset = fakes.color_dataset(
        root,
        database=[("ref/rear/a.png", (255, 0, 0), fakes.pose((0.5, 0.5, 0.5, 0.5), (1, 2, 3)), 1),
                  ("ref/rear/b.png", (255, 255, 0), fakes.pose((0.5, -0.5, 0.5, 0.5), (4, 5, 6)), 1),
                  ("ref/left/c.png", (0, 255, 0), fakes.pose((0.5, 0.5, -0.5, 0.5), (7, 8, 9)), 2),
                  ("ref/left/d.png", (0, 0, 255), fakes.pose((0.5, 0.5, 0.5, -0.5), (-1, -2, -3)), 2)],
        queries=[("night/rear/q1.png", (255, 66, 0), 2), ("night/left/q2.png", (0, 128, 255), 1)])
    index_dir = build_index(dataset, "test-color", root / "index", fakes.index_options())
    return dataset, index_dir


def _query(color_index, tmp_path, **kwargs):
    dataset, index_dir = color_index
    options = fakes.query_options(**kwargs)
    return localize(index_dir, dataset, options, out=tmp_path / "results"), tmp_path / "results"


def test_pairs_poses_and_scores_match_golden_files(color_index, tmp_path):
    _, out = _query(color_index, tmp_path, top_k=3)
    assert (out / "pairs.txt").read_text() == (GOLDEN / "pairs_top3.txt").read_text()
    assert (out / "poses.txt").read_text() == (GOLDEN / "poses_top1.txt").read_text()
    assert (out / "scores.csv").read_text() == (GOLDEN / "scores_top3.csv").read_text()
    # The files are readable by the shared readers the evaluator uses.
    assert list(read_pairs(out / "pairs.txt")) == ["night/rear/q1.png", "night/left/q2.png"]
    assert read_poses(out / "poses.txt")["night/left/q2.png"].allclose(fakes.pose((0.5, 0.5, 0.5, -0.5), (-1, -2, -3)))


def test_per_camera_and_per_location_masks_match_golden_files(color_index, tmp_path):
    _, out = _query(color_index, tmp_path / "camera", top_k=3, per_camera=True)
    assert (out / "pairs.txt").read_text() == (GOLDEN / "pairs_per_camera.txt").read_text()
    _, out = _query(color_index, tmp_path / "location", top_k=3, per_location=True)
    assert (out / "pairs.txt").read_text() == (GOLDEN / "pairs_per_location.txt").read_text()


def test_query_with_no_allowed_database_image_gets_no_pose_and_is_reported(color_index, tmp_path):
    # q1 is a rear image of location 2, where the map has only left images.
    results, out = _query(color_index, tmp_path, top_k=3, per_camera=True, per_location=True)
    assert results.pairs["night/rear/q1.png"] == []
    assert "night/rear/q1.png" not in results.poses
    rows = list(csv.DictReader(open(out / "queries.csv")))
    assert list(rows[0]) == list(QUERIES_COLUMNS)
    assert rows[0]["pose_source"] == "none" and rows[0]["num_results"] == "0"


def test_weighted_pose_of_two_equal_rotations_is_the_similarity_weighted_centre(tmp_path):
    same_rotation = (0.5, 0.5, 0.5, 0.5)
    first, second = fakes.pose(same_rotation, (1, 2, 3)), fakes.pose(same_rotation, (4, 5, 6))
    dataset = fakes.color_dataset(
        tmp_path,
        database=[("ref/rear/a.png", (255, 0, 0), first, None), ("ref/rear/b.png", (255, 255, 0), second, None)],
        queries=[("night/rear/q1.png", (255, 66, 0), None)])
    index_dir = build_index(dataset, "test-color", tmp_path / "index", fakes.index_options())
    options = fakes.query_options(top_k=2, pose="weighted", alpha=2.0)
    pose = localize(index_dir, dataset, options).poses["night/rear/q1.png"]
    w_a, w_b = 0.968099293 ** 2, 0.861727112 ** 2  # similarities from the module docstring
    expected_center = (w_a * first.center + w_b * second.center) / (w_a + w_b)
    assert pose.center == pytest.approx(expected_center, abs=1e-5)
    assert pose.allclose(fakes.pose(same_rotation, -pose.R @ expected_center), atol=1e-5)


def test_localizer_loads_once_and_answers_batch_after_batch_like_localize(color_index, tmp_path):
    from mduit_loc.retrieval.api import Localizer

    dataset, index_dir = color_index
    localizer = Localizer(index_dir, fakes.query_options(top_k=3))
    descriptor = localizer.descriptor
    first = localizer.localize([dataset.image_path("night/rear/q1.png")])
    second = localizer.localize([dataset.image_path("night/left/q2.png")], out=tmp_path / "second")
    assert localizer.descriptor is descriptor
    golden = (GOLDEN / "pairs_top3.txt").read_text().splitlines()
    assert [f"night/rear/q1.png {db}" for db in first.pairs["night/rear/q1.png"]] == golden[:3]
    assert [f"night/left/q2.png {db}" for db in second.pairs["night/left/q2.png"]] == golden[3:]
    assert read_pairs(tmp_path / "second" / "pairs.txt") == {"night/left/q2.png": second.pairs["night/left/q2.png"]}

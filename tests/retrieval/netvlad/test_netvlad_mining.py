"""Positives / negatives from poses and hard-negative mining."""
from __future__ import annotations

import numpy as np
import torch

from mduit_loc.poses import pose_errors, yaw_pose
from mduit_loc.retrieval.netvlad.mining import PoseGraph, eligible_anchors, images_to_describe, mine_triplets


def _random_poses(count: int, seed: int):
    rng = np.random.default_rng(seed)
    centers = rng.uniform(0, 40, (count, 3)) * [1, 1, 0]
    yaws = rng.uniform(0, 40, count)
    return [yaw_pose(yaw, center) for yaw, center in zip(yaws, centers)]


def test_potential_positives_match_pose_errors_brute_force():
    poses = _random_poses(120, 0)
    graph = PoseGraph(poses, ["a"] * len(poses))
    positives = graph.potential_positives(cross_domain=False)
    for i, pose in enumerate(poses):
        expected = {j for j, other in enumerate(poses)
                    if j != i and pose_errors(other, pose)[0] <= 7.0 and pose_errors(other, pose)[1] <= 8.0}
        assert set(positives[i].tolist()) == expected
    assert sum(len(p) for p in positives) > 0, "the random layout must produce some positives"


def test_negatives_are_beyond_25_m():
    poses = _random_poses(60, 1)
    graph = PoseGraph(poses, ["a"] * len(poses))
    anchors, pool = np.arange(10), np.arange(60)
    mask = graph.negative_mask(anchors, pool)
    for i in anchors:
        for j in pool:
            assert mask[i, j] == (pose_errors(poses[j], poses[i])[0] > 25.0)
    np.testing.assert_array_equal(graph.negative_counts()[:10], mask.sum(axis=1))


def test_cross_domain_positives_are_preferred():
    poses = [yaw_pose(0, (0, 0, 0)), yaw_pose(1, (1, 0, 0)), yaw_pose(2, (2, 0, 0)), yaw_pose(0, (100, 0, 0)),
             yaw_pose(0, (101, 0, 0))]
    domains = ["day", "day", "night", "day", "day"]
    graph = PoseGraph(poses, domains)
    positives = graph.potential_positives(cross_domain=True)
    assert positives[0].tolist() == [2]            # the night image, not the day one
    assert positives[2].tolist() == [0, 1]
    assert positives[3].tolist() == [4]            # no other domain there: same-domain fallback
    assert sorted(graph.potential_positives(cross_domain=False)[0].tolist()) == [1, 2]
    np.testing.assert_array_equal(eligible_anchors(positives, graph.negative_counts(), 2), [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(eligible_anchors(positives, graph.negative_counts(), 3), [3, 4])  # 3 far images


def test_mining_picks_best_positive_and_hardest_negatives():
    # Images 0-2 at one place, 3-7 far away; descriptors chosen by hand.
    poses = [yaw_pose(0, (0, 0, 0)), yaw_pose(0, (2, 0, 0)), yaw_pose(0, (3, 0, 0))]
    poses += [yaw_pose(0, (100 + 30 * k, 0, 0)) for k in range(5)]
    graph = PoseGraph(poses, ["a"] * 8)
    positives = graph.potential_positives(cross_domain=False)
    descriptors = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1], [0.0, -1.0], [0.8, 0.3], [-1.0, 0.0],
                                [0.95, -0.2], [0.5, 0.5]])
    anchors, pool = np.array([0]), np.arange(8)
    described = images_to_describe(anchors, positives, pool)
    np.testing.assert_array_equal(described, np.arange(8))
    plan = mine_triplets(graph, anchors, positives, pool, descriptors, described, 3, np.random.default_rng(0))
    assert plan.tolist() == [[0, 2, 6, 4, 7]]     # positive 2 (closest); negatives by distance, none near 0


def test_mining_fills_with_random_definite_negatives_when_the_pool_is_small():
    poses = [yaw_pose(0, (0, 0, 0)), yaw_pose(0, (1, 0, 0))] + [yaw_pose(0, (50 * k, 0, 0)) for k in range(1, 6)]
    graph = PoseGraph(poses, ["a"] * 7)
    positives = graph.potential_positives(cross_domain=False)
    pool = np.array([1, 2])                          # only image 2 is a negative of anchor 0
    described = images_to_describe(np.array([0]), positives, pool)
    descriptors = torch.randn(len(described), 4)
    plan = mine_triplets(graph, np.array([0]), positives, pool, descriptors, described, 3, np.random.default_rng(0))
    row = plan[0].tolist()
    assert row[:3] == [0, 1, 2] and len(set(row[2:])) == 3 and set(row[3:]) <= {3, 4, 5, 6}


def test_chunked_mining_gives_the_same_plan():
    poses = [yaw_pose(0, (40.0 * (i // 2) + (i % 2), 0, 0)) for i in range(12)]
    graph = PoseGraph(poses, ["day", "night"] * 6)
    positives = graph.potential_positives()
    anchors, pool = np.arange(12), np.arange(12)
    descriptors = torch.nn.functional.normalize(torch.randn(12, 8, generator=torch.Generator().manual_seed(0)), dim=1)
    whole = mine_triplets(graph, anchors, positives, pool, descriptors, pool, 3, np.random.default_rng(0))
    chunked = mine_triplets(graph, anchors, positives, pool, descriptors.half(), pool, 3, np.random.default_rng(0),
                            chunk=5)
    np.testing.assert_array_equal(whole, chunked)
    assert all(row[1] == row[0] ^ 1 for row in whole)   # the other-domain image at the same place

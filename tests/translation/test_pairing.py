import math

import pytest
import torch

from mduit_loc.errors import MduitError
from mduit_loc.poses import yaw_pose
from mduit_loc.translation.pairing import (FIRST_NEGATIVE, SOURCE, TARGET, TARGET_NEGATIVE, TARGET_POSITIVE,
                                           PoseTable, build_epoch_plan, most_similar_other_domain,
                                           near_pose_mask, sample_in_domains, sample_negatives)


def unit(rows):
    return torch.nn.functional.normalize(torch.tensor(rows, dtype=torch.float32), dim=1)


def test_target_is_the_most_similar_image_of_another_domain():
    z = unit([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [0.95, 0.05]])
    domains = torch.tensor([0, 0, 1, 1, 1])
    targets = most_similar_other_domain(z, domains)
    # image 1 is most similar to image 0, but it is in the same domain: image 4 wins
    assert targets.tolist() == [4, 4, 1, 1, 0]


def test_near_pose_mask_uses_both_distance_and_angle():
    poses = PoseTable.from_poses([yaw_pose(0, (0, 0, 0)), yaw_pose(5, (3, 0, 0)),      # near: 3 m, 5 deg
                                  yaw_pose(0, (8, 0, 0)), yaw_pose(30, (1, 0, 0)),     # too far / turned away
                                  None])
    mask = near_pose_mask(poses, torch.tensor([0]), 7.0, 8.0)
    assert mask[0].tolist() == [True, True, False, False, False]


def test_negatives_exclude_nearby_views_self_target_and_unposed_images():
    # 20 images along a road, 2 m apart, all facing the same way; the last two have no pose.
    poses = [yaw_pose(0, (2.0 * i, 0, 0)) for i in range(20)] + [None, None]
    table = PoseTable.from_poses(poses)
    z = torch.nn.functional.normalize(torch.randn(22, 8, generator=torch.Generator().manual_seed(0)), dim=1)
    targets = torch.tensor([(i + 5) % 22 for i in range(22)])
    negatives = sample_negatives(z, targets, table, 3, torch.Generator().manual_seed(1))
    for source in range(20):
        chosen = set(negatives[source].tolist())
        assert source not in chosen and targets[source].item() not in chosen
        assert not chosen & {20, 21}, "a posed source must not get unposed negatives"
        assert all(abs(j - source) * 2.0 >= 7.0 for j in chosen), (source, chosen)
        assert len(chosen) == 3
    for source in (20, 21):  # unposed sources: anything but themselves and their target
        chosen = set(negatives[source].tolist())
        assert source not in chosen and targets[source].item() not in chosen


def test_hard_negatives_are_similar_but_beyond_the_pose_thresholds():
    poses = PoseTable.from_poses([yaw_pose(0, (10.0 * i, 0, 0)) for i in range(12)])
    z = unit([[math.cos(0.1 * i), math.sin(0.1 * i)] for i in range(12)])  # similarity decreases with |i - j|
    targets = torch.full((12,), 11)
    targets[11] = 10
    negatives = sample_negatives(z, targets, poses, 2, torch.Generator().manual_seed(0), mining="hard")
    # the 8 most similar allowed images of image 0 are 1..8 (11 is the target)
    assert set(negatives[0].tolist()) <= set(range(1, 9))


def test_same_and_other_domain_sampling():
    domains = torch.tensor([0, 0, 0, 1, 1, 2])
    anchors = torch.tensor([0, 1, 2, 3, 4, 5] * 20)
    generator = torch.Generator().manual_seed(0)
    same = sample_in_domains(domains, anchors, True, generator)
    assert torch.equal(domains[same], domains[anchors])
    assert not torch.any((same == anchors) & (anchors != 5)), "an anchor with domain-mates never picks itself"
    other = sample_in_domains(domains, anchors, False, generator)
    assert not torch.any(domains[other] == domains[anchors])


def test_epoch_plan_rows_and_reproducibility():
    count = 30
    generator = torch.Generator().manual_seed(3)
    z = torch.nn.functional.normalize(torch.randn(count, 16, generator=generator), dim=1)
    domains = torch.arange(count) % 3
    plan = build_epoch_plan(z, domains, None, n_negatives=5, seed=7, epoch=0)
    assert plan.shape == (count, FIRST_NEGATIVE + 5)
    assert sorted(plan[:, SOURCE].tolist()) == list(range(count)), "every image is a source once"
    assert torch.all(domains[plan[:, SOURCE]] != domains[plan[:, TARGET]])
    assert torch.all(domains[plan[:, TARGET_POSITIVE]] == domains[plan[:, TARGET]])
    assert torch.all(domains[plan[:, TARGET_NEGATIVE]] != domains[plan[:, TARGET]])
    assert torch.equal(plan, build_epoch_plan(z, domains, None, 5, seed=7, epoch=0))
    assert not torch.equal(plan, build_epoch_plan(z, domains, None, 5, seed=7, epoch=1))


def test_plan_refuses_single_domain_and_too_few_images():
    z = torch.nn.functional.normalize(torch.randn(6, 4), dim=1)
    with pytest.raises(MduitError, match="two appearance domains"):
        build_epoch_plan(z, torch.zeros(6, dtype=torch.long), None, 2, 0, 0)
    with pytest.raises(MduitError, match="too few"):
        build_epoch_plan(z, torch.arange(6) % 2, None, 5, 0, 0)

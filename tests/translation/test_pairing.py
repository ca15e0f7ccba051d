import math

import pytest
import torch

from mduit_loc.errors import MduitError
from mduit_loc.poses import yaw_pose
from mduit_loc.translation.config import apply_overrides, preset
from mduit_loc.translation.pairing import (
    FIRST_NEGATIVE,
    REAL_POSITIVE,
    SOURCE,
    TARGET,
    TARGET_NEGATIVE,
    TARGET_POSITIVE,
    build_epoch_plan,
    choose_targets,
    most_similar_other_domain,
    sample_in_domains,
    sample_negatives,
    sample_real_positives,
)
from mduit_loc.translation.places import PlaceTable


def unit(rows):
    return torch.nn.functional.normalize(torch.tensor(rows, dtype=torch.float32), dim=1)


def test_target_is_the_most_similar_image_of_another_domain():
    z = unit([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [0.95, 0.05]])
    domains = torch.tensor([0, 0, 1, 1, 1])
    targets = most_similar_other_domain(z, domains)
    # image 1 is most similar to image 0, but it is in the same domain: image 4 wins
    assert targets.tolist() == [4, 4, 1, 1, 0]


def test_near_pose_mask_uses_both_distance_and_angle():
    poses = PlaceTable.build([yaw_pose(0, (0, 0, 0)), yaw_pose(5, (3, 0, 0)),      # near: 3 m, 5 deg
                              yaw_pose(0, (8, 0, 0)), yaw_pose(30, (1, 0, 0)),     # too far / turned away
                              None])
    mask = poses.same_place(torch.tensor([0]))
    assert mask[0].tolist() == [True, True, False, False, False]
    assert poses.may_be_negative(torch.tensor([0]))[0].tolist() == [False, False, True, True, False]


def test_negatives_exclude_nearby_views_self_target_and_unposed_images():
    # 20 images along a road, 2 m apart, all facing the same way; the last two have no pose.
    poses = [yaw_pose(0, (2.0 * i, 0, 0)) for i in range(20)] + [None, None]
    table = PlaceTable.build(poses)
    z = torch.nn.functional.normalize(torch.randn(22, 8, generator=torch.Generator().manual_seed(0)), dim=1)
    targets = torch.tensor([(i + 5) % 22 for i in range(22)])
    negatives = sample_negatives(z, targets, table, 3, torch.Generator().manual_seed(1), mining="random")
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
    poses = PlaceTable.build([yaw_pose(0, (10.0 * i, 0, 0)) for i in range(12)])
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
    assert torch.equal(plan[:, REAL_POSITIVE], plan[:, SOURCE]), "no labels: no real positives"
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


def test_mixed_mining_takes_half_hard_half_random_and_never_repeats():
    poses = PlaceTable.build([yaw_pose(0, (10.0 * i, 0, 0)) for i in range(40)])
    z = unit([[math.cos(0.05 * i), math.sin(0.05 * i)] for i in range(40)])
    targets = torch.full((40,), 39)
    targets[39] = 38
    negatives = sample_negatives(z, targets, poses, 4, torch.Generator().manual_seed(0), mining="mixed")
    for source in range(40):
        chosen = negatives[source].tolist()
        assert len(set(chosen)) == 4 and source not in chosen and targets[source].item() not in chosen
    # image 0: its 2 hard negatives lie among the 16 most similar allowed images (1..16)
    assert set(negatives[0, :2].tolist()) <= set(range(1, 17))


def test_real_positives_are_the_same_place_from_another_domain_when_possible():
    # three conditions drive the same road; images 2 m apart; condition 2 has a single image at 0 m
    poses = [yaw_pose(0, (2.0 * i, 0, 0)) for i in range(10)] + [yaw_pose(0, (2.0 * i + 0.5, 0, 0)) for i in range(10)]
    poses += [yaw_pose(0, (0, 0, 0)), yaw_pose(0, (500, 0, 0)), None]
    domains = torch.tensor([0] * 10 + [1] * 10 + [2, 2, 2])
    places = PlaceTable.build(poses)
    positives = sample_real_positives(places, domains, torch.Generator().manual_seed(0))
    for image in range(20):
        other = positives[image].item()
        assert other != image and domains[other] != domains[image]
        assert places.same_place(torch.tensor([image]))[0, other]
    assert positives[21].item() == 21 and positives[22].item() == 22, "alone at its place or unposed: itself"


def test_targets_prefer_the_same_place_in_another_domain():
    poses = [yaw_pose(0, (0, 0, 0)), yaw_pose(0, (1, 0, 0)), yaw_pose(0, (100, 0, 0))]
    z = unit([[1, 0], [0, 1], [1, 0.01]])  # image 2 looks most like image 0 but is 100 m away
    domains = torch.tensor([0, 1, 1])
    targets = choose_targets(z, domains, PlaceTable.build(poses))
    assert targets[0].item() == 1
    assert most_similar_other_domain(z, domains)[0].item() == 2


def test_pose_gap_is_distance_and_angle_in_threshold_units():
    places = PlaceTable.build([yaw_pose(0, (0, 0, 0)), yaw_pose(4, (3.5, 0, 0)), None],
                              max_distance_m=7.0, max_angle_deg=8.0)
    gap = places.pose_gap(torch.tensor([0]))[0]
    assert gap[0].item() == pytest.approx(0.0, abs=1e-4)
    assert gap[1].item() == pytest.approx(3.5 / 7.0 + 4.0 / 8.0, abs=1e-4)  # 0.5 + 0.5
    assert gap[2].item() == math.inf, "no pose: no gap"


def test_targets_by_pose_take_the_nearest_view_of_the_same_place():
    # image 0 (domain 0); same place in domain 1: image 1 at 5 m, image 2 at 0.5 m; image 3 unposed
    poses = [yaw_pose(0, (0, 0, 0)), yaw_pose(0, (5, 0, 0)), yaw_pose(0, (0.5, 0, 0)), None]
    z = unit([[1, 0], [1, 0.01], [0, 1], [1, 0.02]])  # by z, image 1 is the closer look-alike
    domains = torch.tensor([0, 1, 1, 1])
    places = PlaceTable.build(poses)
    assert choose_targets(z, domains, places)[0].item() == 1
    by_pose = choose_targets(z, domains, places, by="pose")
    assert by_pose[0].item() == 2
    assert by_pose[3].item() == 0, "an unposed image falls back to z"
    with pytest.raises(MduitError, match="target choice"):
        choose_targets(z, domains, places, by="nearest")
    with pytest.raises(MduitError, match="target_choice"):
        apply_overrides(preset("tiny"), {"target_choice": "nearest"})
    assert apply_overrides(preset("tiny"), {"target_choice": "pose"}).target_choice == "pose"


def test_place_labels_and_sequences_define_places():
    labels = PlaceTable.build([None] * 4, ["a.png", "a.png", "b.png", None])
    assert labels.same_place(torch.tensor([0]))[0].tolist() == [True, True, False, False]
    assert labels.may_be_negative(torch.tensor([0]))[0].tolist() == [False, False, True, False]
    frames = PlaceTable.build([None] * 4, ["img-00010.png", "img-00020.png", "img-00040.png", "img-00010.png"],
                              sequence_tolerance=10)
    assert frames.same_place(torch.tensor([0]))[0].tolist() == [True, True, False, True]

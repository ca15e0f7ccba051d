"""evaluate(): joins estimates with ground truth; pooled day/night, breakdowns, name alignment."""
from __future__ import annotations

import math

import numpy as np
import pytest

from mduit_loc.errors import DataNotFoundError, MduitError
from mduit_loc.evaluation.evaluate import (
    DAY_ALL,
    NIGHT_ALL,
    QueryMeta,
    align_estimates,
    evaluate,
    load_ground_truth,
    resolve_split,
)
from mduit_loc.pose_files import parse_pose_line
from mduit_loc.poses import Pose, yaw_pose

from .conftest import TEST_GT, TRAIN_GT


def _offset(pose: Pose, metres: float = 0.0, degrees: float = 0.0) -> Pose:
    """A pose ``metres`` further along world x and rotated ``degrees`` more about the vertical."""
    yaw = np.degrees(np.arctan2(pose.R[2, 1], pose.R[2, 0]))
    return yaw_pose(yaw + degrees, pose.center + np.array([metres, 0.0, 0.0]))


def _ground_truth(names):
    return {name: yaw_pose(10.0 * i, (float(i), 0.0, 0.0)) for i, name in enumerate(names)}


def test_q_and_minus_q_give_identical_errors():
    truth = {"sun/rear/1.jpg": yaw_pose(30, (1, 2, 0))}
    estimate = _offset(truth["sun/rear/1.jpg"], 0.3, 4.0)
    t = estimate.t
    line_plus = "sun/rear/1.jpg " + " ".join(map(str, [*estimate.qvec, *t]))
    line_minus = "sun/rear/1.jpg " + " ".join(map(str, [*(-estimate.qvec), *t]))
    results = [evaluate(dict([parse_pose_line(line)]), truth) for line in (line_plus, line_minus)]
    assert results[0].queries[0].rotation_error == pytest.approx(4.0, abs=1e-6)
    assert results[0].queries[0].position_error == pytest.approx(0.3, abs=1e-9)
    assert results[0].queries == results[1].queries


def test_missing_queries_count_as_failures():
    truth = _ground_truth([f"sun/rear/{i}.jpg" for i in range(4)])
    estimates = {name: pose for name, pose in list(truth.items())[:3]}
    result = evaluate(estimates, truth)
    score = result.subset("all")
    assert (score.n, score.n_estimated) == (4, 3)
    assert score.recalls == (0.75, 0.75, 0.75)
    assert score.median_position_m == 0.0  # errors 0, 0, 0, inf


def test_zero_estimates():
    truth = _ground_truth(["sun/rear/1.jpg", "night/rear/2.jpg"])
    result = evaluate({}, truth)
    for subset in ("all", DAY_ALL, NIGHT_ALL):
        assert result.subset(subset).recalls == (0.0, 0.0, 0.0)
        assert result.subset(subset).median_position_m == math.inf
    assert all(not q.estimated for q in result.queries)


def test_ties_at_each_threshold_count():
    truth = _ground_truth(["sun/rear/1.jpg", "sun/rear/2.jpg", "sun/rear/3.jpg"])
    names = list(truth)
    estimates = {names[0]: _offset(truth[names[0]], 0.25, 2.0),    # exactly (0.25 m, 2 deg)
                 names[1]: _offset(truth[names[1]], 0.5, -5.0),    # exactly (0.5 m, 5 deg)
                 names[2]: _offset(truth[names[2]], 5.0, 10.0)}    # exactly (5 m, 10 deg)
    result = evaluate(estimates, truth)
    assert result.subset(DAY_ALL).recalls == pytest.approx((1 / 3, 2 / 3, 1.0))


def test_day_all_is_pooled_not_an_average_of_conditions():
    # dawn: 1 of 1 localized (100 %); sun: 0 of 3 (0 %). Pooled: 1 / 4 = 25 %; averaged would be 50 %.
    names = ["dawn/rear/1.jpg", "sun/rear/2.jpg", "sun/rear/3.jpg", "sun/rear/4.jpg",
             "night/rear/5.jpg", "night-rain/rear/6.jpg", "night-rain/rear/7.jpg"]
    truth = _ground_truth(names)
    estimates = {"dawn/rear/1.jpg": truth["dawn/rear/1.jpg"],
                 **{f"sun/rear/{i}.jpg": _offset(truth[f"sun/rear/{i}.jpg"], 50.0) for i in (2, 3, 4)},
                 "night/rear/5.jpg": truth["night/rear/5.jpg"]}
    result = evaluate(estimates, truth)
    assert result.subset("dawn").recalls[2] == 1.0
    assert result.subset("sun").recalls[2] == 0.0
    assert result.subset(DAY_ALL).recalls[2] == 0.25
    assert result.subset(DAY_ALL).n == 4
    # night: night 1/1 (100 %), night-rain 0/2 (0 %): pooled 1/3, averaged would be 1/2
    assert result.subset(NIGHT_ALL).recalls[2] == pytest.approx(1 / 3)
    assert result.subset("all").recalls[2] == pytest.approx(2 / 7)


def test_per_camera_and_per_condition_breakdowns():
    names = ["sun/rear/1.jpg", "sun/left/1.jpg", "sun/right/1.jpg", "night/rear/2.jpg", "night/left/2.jpg"]
    truth = _ground_truth(names)
    estimates = {"sun/rear/1.jpg": truth["sun/rear/1.jpg"],
                 "sun/left/1.jpg": _offset(truth["sun/left/1.jpg"], 0.4),   # only at 0.5/5 and 5/10
                 "night/left/2.jpg": truth["night/left/2.jpg"]}
    result = evaluate(estimates, truth)
    assert [s.subset for s in result.groups("camera")] == ["left", "rear", "right"]
    assert result.subset("left", "camera").recalls == (0.5, 1.0, 1.0)
    assert result.subset("rear", "camera").recalls == (0.5, 0.5, 0.5)
    assert result.subset("right", "camera").recalls == (0.0, 0.0, 0.0)
    assert result.subset("rear night", "camera-day-night").recalls == (0.0, 0.0, 0.0)
    assert result.subset("left night", "camera-day-night").n == 1
    assert [s.subset for s in result.groups("condition")] == ["night", "sun"]
    assert result.subset("sun", "condition").recalls == pytest.approx((1 / 3, 2 / 3, 2 / 3))
    # median position error of 'left': errors 0.4 and 0 -> 0.2
    assert result.subset("left", "camera").median_position_m == pytest.approx(0.2)


def test_cameras_filter_mimics_the_server():
    truth = _ground_truth(["sun/rear/1.jpg", "sun/left/1.jpg"])
    result = evaluate({"sun/left/1.jpg": truth["sun/left/1.jpg"]}, truth, cameras=["rear"])
    assert result.subset("all").n == 1 and result.subset("all").recalls[0] == 0.0
    assert result.ignored == ["sun/left/1.jpg"]
    with pytest.raises(MduitError, match="camera"):
        evaluate({}, truth, cameras=["right"])


def test_meta_overrides_names_and_unknown_conditions_are_other():
    truth = _ground_truth(["a.jpg", "b.jpg"])
    meta = {"a.jpg": QueryMeta("night", "cam0"), "b.jpg": ("office", "cam0")}
    result = evaluate({"a.jpg": truth["a.jpg"]}, truth, meta)
    assert result.subset(NIGHT_ALL).n == 1 and result.subset(DAY_ALL).n == 0
    assert math.isnan(result.subset(DAY_ALL).recalls[0])
    assert result.subset("all").recalls[0] == 0.5
    with pytest.raises(MduitError, match="condition"):
        evaluate({}, truth)  # no meta and names without condition


def test_align_estimates_png_and_conditionless_names():
    truth_names = ["night/rear/5.jpg", "sun/rear/6.jpg"]
    estimates = {"night/rear/5.png": Pose.identity(), "rear/6.jpg": Pose.identity(), "rear/9.jpg": Pose.identity()}
    aligned, ignored = align_estimates(estimates, truth_names)
    assert sorted(aligned) == truth_names
    assert ignored == ["rear/9.jpg"]
    with pytest.raises(MduitError, match="twice"):
        align_estimates({"sun/rear/6.jpg": Pose.identity(), "sun/rear/6.png": Pose.identity()}, truth_names)


def test_load_ground_truth_train_and_test(benchmark_root):
    train = load_ground_truth(benchmark_root, "train")
    assert set(train.poses) == set(TRAIN_GT) and train.split == "train"
    assert train.meta["sun/left/2000.jpg"] == QueryMeta("sun", "left")
    assert train.poses["night/rear/3000.jpg"].allclose(TRAIN_GT["night/rear/3000.jpg"])
    test = load_ground_truth(benchmark_root, "auto")
    assert test.split == "test" and set(test.poses) == set(TEST_GT)


def test_test_split_without_ground_truth_says_to_submit(benchmark_without_test_gt):
    assert resolve_split(benchmark_without_test_gt, "auto") == "train"
    with pytest.raises(MduitError, match="mduit-loc submit"):
        load_ground_truth(benchmark_without_test_gt, "test")


def test_missing_dataset(tmp_path):
    with pytest.raises(DataNotFoundError):
        load_ground_truth(tmp_path / "nope", "train")

"""Scoring of translations (issue 10 item 2): hand-computed cases of every measure, the colour-transfer
baseline, both classifiers, the pooling arithmetic and the pair selection."""
from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from skimage.color import rgb2lab

from mduit_loc.errors import MduitError
from mduit_loc.evaluation.translation_quality import (
    LabStats,
    NearestCentroid,
    PairScores,
    colour_transfer,
    cosine_rows,
    direction,
    gradient_ssim,
    lab_features,
    lab_stats,
    margin_interval,
    nearest_domain,
    pool,
    psnr,
    ssim,
)
from mduit_loc.evaluation.translation_quality_run import parse_pairs, spread


def _image(seed: int, size: int = 24) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.2, 0.8, (size, size, 3))


def test_identical_images_give_infinite_psnr_and_ssim_one_without_warnings():
    image = _image(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # skimage would warn "divide by zero"
        assert psnr(image, image.copy()) == math.inf
    assert ssim(image, image) == pytest.approx(1.0)
    assert gradient_ssim(image, image) == pytest.approx(1.0)


def test_psnr_of_a_constant_offset_is_hand_computed():
    # MSE of a 0.1 offset is 0.01: PSNR = 10 log10(1 / 0.01) = 20 dB.
    reference = np.full((8, 8, 3), 0.5)
    assert psnr(reference + 0.1, reference) == pytest.approx(20.0)
    assert psnr(reference + 0.01, reference) == pytest.approx(40.0)


def test_ssim_fits_its_window_to_small_images_and_drops_for_unrelated_ones():
    tiny = _image(1, size=5)   # smaller than skimage's 7 px window
    assert ssim(tiny, tiny) == pytest.approx(1.0)
    assert ssim(_image(2), _image(3)) < 0.3


def test_gradient_ssim_ignores_a_colour_change_but_not_a_different_scene():
    scene = _image(4)
    shifted = scene + np.array([0.1, 0.1, 0.1])   # brighter: grey gradients unchanged
    assert gradient_ssim(shifted, scene) == pytest.approx(1.0, abs=1e-6)
    assert ssim(shifted, scene) < 1.0
    assert gradient_ssim(_image(5), scene) < 0.3


def test_cosine_rows_of_feature_maps():
    a = torch.tensor([[[1.0, 0.0]], [[1.0, 1.0]]])            # (2, 1, 2)
    b = torch.tensor([[[2.0, 0.0]], [[-1.0, -1.0]]])
    assert cosine_rows(a, b).tolist() == pytest.approx([1.0, -1.0])


def test_colour_transfer_matches_the_target_lab_mean_and_std():
    source = _image(6, size=32) * np.array([1.0, 0.8, 0.6])   # a warm, low-contrast image
    target = LabStats(mean=np.array([45.0, 4.0, -6.0]), std=np.array([8.0, 3.0, 4.0]), images=1)
    moved = colour_transfer(source, target)
    lab = rgb2lab(moved).reshape(-1, 3)
    assert lab.mean(axis=0) == pytest.approx(target.mean, abs=0.5)
    assert lab.std(axis=0) == pytest.approx(target.std, abs=0.5)
    assert moved.min() >= 0.0 and moved.max() <= 1.0
    # A flat image keeps its (zero) spread instead of dividing by zero.
    flat = colour_transfer(np.full((8, 8, 3), 0.5), target)
    assert np.isfinite(flat).all() and rgb2lab(flat).reshape(-1, 3).std(axis=0) == pytest.approx([0, 0, 0], abs=1e-6)


def test_lab_stats_are_the_typical_image_statistics():
    features = np.array([[40.0, 0, 0, 10, 2, 2], [60.0, 2, -2, 20, 4, 6]])
    stats = lab_stats(features)
    assert stats.mean.tolist() == [50.0, 1.0, -1.0] and stats.std.tolist() == [15.0, 3.0, 4.0]
    assert stats.images == 2
    grey = np.full((4, 4, 3), 0.5)
    assert lab_features(grey)[3:] == pytest.approx([0, 0, 0], abs=1e-9)


def test_nearest_centroid_scales_each_feature_by_its_spread():
    # Feature 0 spans 0..100, feature 1 spans 0..1: unscaled, feature 0 alone would decide.
    classifier = NearestCentroid({"a": np.array([[0.0, 0.0], [100.0, 0.1]]), "b": np.array([[50.0, 1.0]])})
    assert classifier.predict(np.array([[60.0, 0.05], [45.0, 0.95]])) == ["a", "b"]


def test_nearest_domain_by_cosine_of_the_filters():
    means = {"day": torch.tensor([[1.0, 0.0, 0.0]]), "night": torch.tensor([[0.0, 1.0, 0.0]])}
    filters = torch.tensor([[5.0, 1.0, 0.0], [0.1, 3.0, 2.0]])
    assert nearest_domain(filters, means) == ["day", "night"]


def test_pooling_weights_every_image_once_and_skips_same_condition_pairs():
    one = PairScores("mduit", "night", "sun")
    one.add({"psnr": [10.0, 20.0], "ssim": [0.5, 0.7], "grad_ssim": [1, 1], "content_cos": [0, 1],
             "filter_hit": [True, False], "colour_hit": [1, 1]})
    two = PairScores("mduit", "night-rain", "overcast-reference")
    two.add({"psnr": [40.0], "ssim": [0.9], "grad_ssim": [0], "content_cos": [1], "filter_hit": [1],
             "colour_hit": [0]})
    same = PairScores("mduit", "night", "night")
    same.add({m: [99.0] for m in one.sums})
    other_method = PairScores("identity", "night", "sun")
    other_method.add({m: [7.0] for m in one.sums})
    day_to_night = PairScores("mduit", "sun", "night")
    day_to_night.add({m: [3.0] for m in one.sums})
    scores = [one, two, same, other_method, day_to_night]

    pooled = pool(scores, "mduit", "night->day")
    assert (pooled.pairs, pooled.images) == (2, 3)
    assert pooled.means["psnr"] == pytest.approx(70.0 / 3)            # not (15 + 40) / 2
    assert pooled.means["filter_hit"] == pytest.approx(2 / 3)
    assert one.means()["psnr"] == 15.0
    everything = pool(scores, "mduit", "all")
    assert (everything.pairs, everything.images) == (3, 4)
    assert everything.means["psnr"] == pytest.approx(73.0 / 4)
    assert math.isnan(pool(scores, "colour-transfer", "all").means["psnr"])
    assert direction("overcast-reference", "night-rain") == "day->night"


def test_an_infinite_psnr_pools_to_infinity():
    scores = PairScores("identity", "sun", "night")
    scores.add({"psnr": [math.inf, 10.0], "ssim": [1, 0], "grad_ssim": [1, 1], "content_cos": [1, 1],
                "filter_hit": [0, 0], "colour_hit": [0, 0]})
    assert pool([scores], "identity", "day->night").means["psnr"] == math.inf


def test_pair_scores_need_every_measure_for_the_same_images():
    scores = PairScores("mduit", "sun", "night")
    with pytest.raises(ValueError, match="every measure"):
        scores.add({"psnr": [1.0]})
    with pytest.raises(ValueError, match="every measure"):
        scores.add({m: [1.0] * (2 if m == "ssim" else 1) for m in scores.sums})


def test_pairs_expand_wildcards_without_same_condition_or_repeated_pairs():
    conditions = ("overcast-reference", "night", "sun")
    assert parse_pairs(["night:*"], conditions) == (("night", "overcast-reference"), ("night", "sun"))
    assert parse_pairs(["night:sun", "*:sun"], conditions) == (("night", "sun"), ("overcast-reference", "sun"))
    assert len(parse_pairs(["*:*"], conditions)) == 6
    with pytest.raises(MduitError, match="unknown condition 'dawn'"):
        parse_pairs(["dawn:sun"], conditions)
    with pytest.raises(MduitError, match="expected SOURCE:TARGET"):
        parse_pairs(["night"], conditions)
    with pytest.raises(MduitError, match="no pair of two different conditions"):
        parse_pairs(["sun:sun"], conditions)


def test_spread_picks_evenly_spaced_items():
    assert spread(list(range(10)), 3) == [0, 3, 6]
    assert spread([1, 2], 5) == [1, 2] and spread([1, 2], None) == [1, 2]


def test_pair_scores_keep_each_images_psnr_in_order():
    scores = PairScores("mduit", "sun", "night")
    for values in ([12.0, 14.0], [9.5]):
        scores.add({m: values for m in scores.sums})
    assert scores.psnr_by_pose == [12.0, 14.0, 9.5]


def test_margin_interval_resamples_poses_not_images():
    # Every pose gives the same margin (2 dB, whatever the pair): every resampling gives exactly 2.
    method = np.array([[12.0, 15.0, 11.0], [20.0, 18.0, 16.0]])
    assert margin_interval(method, method - 2.0) == pytest.approx((2.0, 2.0))
    # Pose margins 0 and 4 (each the mean over its two pairs): draws of two poses give 0, 2 or 4 with
    # probabilities 1/4, 1/2, 1/4, so the central 95 % reach from 0 to 4, and 50 % from 2 to 2.
    method = np.array([[10.0, 14.0], [12.0, 18.0]])
    baseline = np.array([[11.0, 12.0], [11.0, 12.0]])        # pose margins (-1 + 1) / 2 = 0, (2 + 6) / 2 = 4
    assert margin_interval(method, baseline, samples=4000) == pytest.approx((0.0, 4.0))
    assert margin_interval(method, baseline, level=0.5, samples=4000) == pytest.approx((2.0, 2.0))
    low, high = margin_interval(np.random.default_rng(1).normal(3.0, 1.0, (4, 400)), np.zeros((4, 400)))
    assert 2.8 < low < 3.0 < high < 3.2         # the mean 3 +- 1.96 * (1 / 2) / sqrt(400), about +-0.05
    with pytest.raises(ValueError, match="one shape"):
        margin_interval(method, baseline[:, :1])
    with pytest.raises(ValueError, match="level"):
        margin_interval(method, baseline, level=1.5)

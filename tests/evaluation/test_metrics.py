"""Recall and median errors on hand-computed cases; inclusive ties; thresholds parsing."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mduit_loc.errors import MduitError
from mduit_loc.evaluation.metrics import (
    DEFAULT_THRESHOLDS,
    Threshold,
    localized_mask,
    median_error,
    parse_thresholds,
    recall,
    recall_curve,
    recalls,
)
from mduit_loc.poses import pose_errors, yaw_pose

INF = math.inf


def test_default_thresholds_are_the_benchmark_ones():
    assert [(t.position_m, t.rotation_deg) for t in DEFAULT_THRESHOLDS] == [(0.25, 2.0), (0.5, 5.0), (5.0, 10.0)]


def test_both_errors_must_be_within_the_threshold():
    position = np.array([0.1, 0.3, 0.1, 6.0])
    rotation = np.array([1.0, 1.0, 3.0, 1.0])
    # query 0: all three; query 1 (0.3 m): 0.5/5 and 5/10; query 2 (3 deg): 0.5/5 and 5/10; query 3: none
    assert recalls(position, rotation, DEFAULT_THRESHOLDS) == (0.25, 0.75, 0.75)


def test_errors_exactly_at_the_threshold_count():
    assert recall(np.array([0.25]), np.array([2.0]), Threshold(0.25, 2.0)) == 1.0
    assert recall(np.array([0.2501]), np.array([2.0]), Threshold(0.25, 2.0)) == 0.0
    assert recall(np.array([0.25]), np.array([2.0001]), Threshold(0.25, 2.0)) == 0.0


def test_computed_errors_at_the_threshold_count_despite_rounding():
    # 0.25 m along x and a 2 degree yaw: arccos returns 1.9999999999998 or 2.0000000000002
    for yaw in (2.0, -2.0):
        position, rotation = pose_errors(yaw_pose(yaw, (0.25, 0, 0)), yaw_pose(0.0, (0, 0, 0)))
        assert rotation == pytest.approx(2.0, abs=1e-9)
        assert recall(np.array([position]), np.array([rotation]), Threshold(0.25, 2.0)) == 1.0


def test_missing_queries_are_failures_in_the_denominator():
    position = np.array([0.0, 0.0, 0.0, INF])
    rotation = np.array([0.0, 0.0, 0.0, INF])
    assert recall(position, rotation, Threshold(5, 10)) == 0.75
    assert not localized_mask(position, rotation, Threshold(1e9, 180.0))[3]


def test_no_estimate_at_all_gives_zero_recall_and_infinite_medians():
    position = np.full(5, INF)
    assert recalls(position, position, DEFAULT_THRESHOLDS) == (0.0, 0.0, 0.0)
    assert median_error(position) == INF


def test_median_with_missing_queries_as_infinite():
    assert median_error(np.array([3.0, 1.0, 2.0])) == 2.0
    assert median_error(np.array([4.0, 1.0, 2.0, INF])) == 3.0      # (2 + 4) / 2
    assert median_error(np.array([1.0, INF, INF])) == INF
    assert math.isnan(median_error(np.array([])))


def test_recall_curve_by_hand():
    position = np.array([0.1, 0.3, 2.0, INF])
    rotation = np.array([1.0, 20.0, 3.0, INF])   # the second query fails every curve point (20 deg)
    curve = recall_curve(position, rotation, np.array([0.05, 0.1, 1.0, 2.0, 10.0]), rotation_deg=10.0)
    np.testing.assert_allclose(curve, [0.0, 0.25, 0.25, 0.5, 0.5])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 20), st.floats(0, 40)), max_size=30),
       st.floats(0, 10), st.floats(0, 20))
def test_recall_matches_a_plain_count(errors, tau_t, tau_r):
    position = np.array([e[0] for e in errors])
    rotation = np.array([e[1] for e in errors])
    expected = sum(p <= tau_t and r <= tau_r for p, r in errors) / len(errors) if errors else 0.0
    # values closer than the tie slack to a threshold may differ from the strict count; avoid them
    if any(abs(p - tau_t) < 1e-6 or abs(r - tau_r) < 1e-6 for p, r in errors):
        return
    assert recall(position, rotation, Threshold(tau_t, tau_r)) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["0.25,2 0.5,5 5,10", "0.25,2;0.5,5;5,10", "0.25m/2deg 0.5m/5deg 5m/10deg"])
def test_parse_thresholds(text):
    assert parse_thresholds(text) == DEFAULT_THRESHOLDS


@pytest.mark.parametrize("text", ["", "0.25", "a,b", "0.25,-2", "1,2,3"])
def test_parse_thresholds_rejects_bad_text(text):
    with pytest.raises(MduitError, match="thresholds"):
        parse_thresholds(text)

"""Pose-error metrics of the RobotCar Seasons benchmark: recall at (position, rotation) thresholds.

Conventions (the same as the benchmark's tools and kapture):
- a query counts as localized at threshold ``(tau_t, tau_R)`` when its position error is
  ``<= tau_t`` AND its rotation error is ``<= tau_R``: both comparisons are *inclusive*
  (an error exactly at the threshold counts; a relative slack of ``TIE_TOLERANCE`` absorbs
  floating-point rounding in ``arccos``/``norm``);
- a query with no estimate has infinite errors: it is a failure and stays in the denominator,
  so recall = localized / all queries of the set;
- median errors are taken over all queries of the set with missing ones as ``inf`` (a method that
  leaves more than half of the queries without a pose has an infinite median).
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from mduit_loc.errors import MduitError

# Errors within this relative amount of a threshold count as "at the threshold" (inclusive ties).
TIE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Threshold:
    """A (position in metres, rotation in degrees) pair; a query must meet both."""

    position_m: float
    rotation_deg: float

    def __post_init__(self):
        if not (self.position_m >= 0 and self.rotation_deg >= 0
                and math.isfinite(self.position_m) and math.isfinite(self.rotation_deg)):
            raise MduitError(f"thresholds must be finite and >= 0, got ({self.position_m} m, {self.rotation_deg} deg)")

    @property
    def label(self) -> str:
        """Short column label, e.g. ``0.25m/2°``."""
        return f"{self.position_m:g}m/{self.rotation_deg:g}°"


DEFAULT_THRESHOLDS: tuple[Threshold, ...] = (Threshold(0.25, 2.0), Threshold(0.5, 5.0), Threshold(5.0, 10.0))
_THRESHOLD_PATTERN = re.compile(r"^\s*([0-9.eE+-]+)\s*(?:m)?\s*[,/:]\s*([0-9.eE+-]+)\s*(?:deg|°)?\s*$")


def parse_thresholds(text: str) -> tuple[Threshold, ...]:
    """``"0.25,2 0.5,5 5,10"`` (or ``;``-separated, ``0.25m/2deg`` style) -> thresholds."""
    items = [item for item in re.split(r"[;\s]+", text.strip()) if item]
    if not items:
        raise MduitError("--thresholds: expected pairs 'METRES,DEGREES' such as '0.25,2 0.5,5 5,10', got nothing")
    thresholds = []
    for item in items:
        match = _THRESHOLD_PATTERN.match(item)
        if match is None:
            raise MduitError(f"--thresholds: expected 'METRES,DEGREES' such as '0.25,2', got {item!r}")
        try:
            thresholds.append(Threshold(float(match.group(1)), float(match.group(2))))
        except ValueError:
            raise MduitError(f"--thresholds: expected two numbers in {item!r}") from None
    return tuple(thresholds)


def _within(errors: np.ndarray, limit) -> np.ndarray:
    return errors <= limit * (1.0 + TIE_TOLERANCE) + TIE_TOLERANCE


def localized_mask(position_errors: np.ndarray, rotation_errors: np.ndarray, threshold: Threshold) -> np.ndarray:
    """Boolean per query: both errors within the threshold (inclusive). ``inf`` (missing) never is."""
    position_errors = np.asarray(position_errors, dtype=np.float64)
    rotation_errors = np.asarray(rotation_errors, dtype=np.float64)
    return _within(position_errors, threshold.position_m) & _within(rotation_errors, threshold.rotation_deg)


def recall(position_errors: np.ndarray, rotation_errors: np.ndarray, threshold: Threshold) -> float:
    """Fraction in [0, 1] of all queries localized at ``threshold``; 0 for an empty set."""
    mask = localized_mask(position_errors, rotation_errors, threshold)
    return float(mask.mean()) if mask.size else 0.0


def recalls(position_errors: np.ndarray, rotation_errors: np.ndarray,
            thresholds: Sequence[Threshold]) -> tuple[float, ...]:
    return tuple(recall(position_errors, rotation_errors, t) for t in thresholds)


def recall_curve(position_errors: np.ndarray, rotation_errors: np.ndarray, position_grid: np.ndarray,
                 rotation_deg: float) -> np.ndarray:
    """Recall (fraction) at each position threshold of ``position_grid`` with a fixed rotation threshold."""
    position_errors = np.asarray(position_errors, dtype=np.float64)
    grid = np.asarray(position_grid, dtype=np.float64)
    if position_errors.size == 0:
        return np.zeros(len(grid))
    rotation_ok = _within(np.asarray(rotation_errors, dtype=np.float64), rotation_deg)
    position_ok = _within(position_errors[None, :], grid[:, None])
    return (position_ok & rotation_ok[None, :]).mean(axis=1)


def median_error(errors: np.ndarray) -> float:
    """Median with missing queries as ``inf``; ``nan`` for an empty set."""
    errors = np.asarray(errors, dtype=np.float64)
    if errors.size == 0:
        return float("nan")
    return float(np.median(errors))

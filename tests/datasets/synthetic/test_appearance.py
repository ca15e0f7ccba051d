"""Each condition changes the image, and not only by a global colour transform.

The same database frame is rendered under every condition's appearance with the reference
traversal's transient objects, so that only lighting, weather and season differ.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from mduit_loc.datasets.layout import ALL_CONDITIONS, CAMERAS, DAY_CONDITIONS, NIGHT_CONDITIONS, REFERENCE_CONDITION
from mduit_loc.datasets.synthetic.conditions import STYLES
from mduit_loc.datasets.synthetic.materials import tree_mask

from .conftest import SIZE

# conditions whose look depends on where things are (lamps, lit windows, shadows, snow, wet
# reflections, drops, low sun); the overcast ones differ mostly in colour and foliage
LOCAL_EFFECTS = ("dawn", "dusk", "night", "night-rain", "rain", "snow", "sun")


@pytest.fixture(scope="module")
def looks(synth_town) -> dict[str, np.ndarray]:
    """condition -> (3 cameras, H, W, 3) uint8 of database frame 1 under that condition."""
    return {condition: np.stack([synth_town.render(REFERENCE_CONDITION, 1, camera, appearance=condition)
                                 for camera in CAMERAS])
            for condition in ALL_CONDITIONS}


def _global_colour_fit_residual(source: np.ndarray, target: np.ndarray) -> float:
    """RMS error (in [0, 1] units) of the best affine colour map (3x3 + offset) source -> target."""
    x = np.column_stack([source.reshape(-1, 3) / 255.0, np.ones(source.size // 3)])
    y = target.reshape(-1, 3) / 255.0
    coefficients, *_ = np.linalg.lstsq(x, y, rcond=None)
    return float(np.sqrt(np.mean((x @ coefficients - y) ** 2)))


def test_every_pair_of_conditions_looks_different(looks):
    for a, b in itertools.combinations(ALL_CONDITIONS, 2):
        difference = np.abs(looks[a].astype(np.float64) - looks[b]).mean()
        assert difference > 3.0, (a, b, difference)


def test_night_is_darker_than_every_day_condition(looks):
    mean = {c: float(images.mean()) for c, images in looks.items()}
    brightest_night = max(mean[c] for c in NIGHT_CONDITIONS)
    darkest_day = min(mean[c] for c in (*DAY_CONDITIONS, REFERENCE_CONDITION))
    assert brightest_night < 0.75 * darkest_day, mean


@pytest.mark.parametrize("condition", LOCAL_EFFECTS)
def test_a_global_colour_transform_cannot_undo_the_condition(looks, condition):
    residual = np.mean([_global_colour_fit_residual(looks[REFERENCE_CONDITION][k], looks[condition][k])
                        for k in range(len(CAMERAS))])
    assert residual > 0.035


def test_snow_whitens_the_ground_and_night_lights_are_local(looks):
    ground = slice(-SIZE // 5, None)  # bottom rows: road and pavement
    assert looks["snow"][:, ground].mean() > looks[REFERENCE_CONDITION][:, ground].mean() + 50
    # at night a few pixels (lamps, lit windows, lights) stay bright while the rest is dark
    night = looks["night"].mean(axis=3)
    assert np.median(night) < 60 and np.percentile(night, 99.5) > 150


def test_the_night_sky_is_near_black_while_the_day_sky_is_bright(synth_town, looks):
    # RobotCar's night frames show no skyline: the outline of the roofs against the sky, which a
    # thumbnail matches well across conditions, must not survive into the night conditions
    sky = np.stack([np.isinf(synth_town.depth(REFERENCE_CONDITION, 1, camera)) for camera in CAMERAS])
    assert sky.mean() > 0.02, "frame 1 should show some sky"
    for condition in NIGHT_CONDITIONS:
        night_sky = looks[condition].mean(axis=3)[sky]
        assert np.median(night_sky) < 45, (condition, np.median(night_sky))  # 68 with the lit sky of before
    assert np.median(looks[REFERENCE_CONDITION].mean(axis=3)[sky]) > 150


def test_summer_trees_carry_leaves_and_winter_trees_are_bare():
    grid_u, grid_v = np.meshgrid(np.linspace(0, 4, 80), np.linspace(0, 7, 140))
    u, v = grid_u.ravel().astype(np.float32), grid_v.ravel().astype(np.float32)
    size = np.tile(np.array([[4.0, 7.0]], np.float32), (len(u), 1))
    param = np.full(len(u), 12345, np.int64)
    summer_opaque, summer_leaves = tree_mask(u, v, size, param, STYLES["overcast-summer"].foliage)
    winter_opaque, winter_leaves = tree_mask(u, v, size, param, STYLES["overcast-winter"].foliage)
    assert winter_leaves.sum() == 0 and summer_leaves.mean() > 0.2
    assert summer_opaque.sum() > 2 * winter_opaque.sum()

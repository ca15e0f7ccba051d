"""A tiny benchmark in the RobotCar Seasons layout, written with the shared writer.

Queries (location 1): sun/{rear,left}/2000 and night/{rear,left}/3000 are the train split
(ground truth for sun rear, sun left, night rear only); snow/{rear,left}/2100, dusk/rear/2200 and
night-rain/rear/3100 are the test split, whose ground truth is in ground_truth/ (synthetic style).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mduit_loc.datasets.robotcar_writer import RobotCarSeasonsWriter
from mduit_loc.datasets.types import Intrinsics
from mduit_loc.poses import yaw_pose

DATA = Path(__file__).parent / "data"
INTRINSICS = Intrinsics(8.0, 8.0, 8.0, 8.0, 16, 16)
DATABASE = {"overcast-reference/rear/1000.jpg": yaw_pose(0, (0, 0, 0)),
            "overcast-reference/rear/1001.jpg": yaw_pose(0, (10, 0, 0)),
            "overcast-reference/left/1000.jpg": yaw_pose(90, (0, 0, 0))}
TRAIN_GT = {"sun/rear/2000.jpg": yaw_pose(0, (1, 0, 0)),
            "sun/left/2000.jpg": yaw_pose(90, (1, 0, 0)),
            "night/rear/3000.jpg": yaw_pose(0, (9, 0, 0))}
TRAIN_NO_GT = ["night/left/3000.jpg"]
TEST_GT = {"snow/rear/2100.jpg": yaw_pose(0, (2, 0, 0)),
           "snow/left/2100.jpg": yaw_pose(90, (2, 0, 0)),
           "dusk/rear/2200.jpg": yaw_pose(0, (3, 0, 0)),
           "night-rain/rear/3100.jpg": yaw_pose(0, (8, 0, 0))}


def write_benchmark(root: Path, with_test_ground_truth: bool = True) -> Path:
    writer = RobotCarSeasonsWriter(root)
    for camera in ("rear", "left"):
        writer.write_intrinsics(camera, INTRINSICS)
    image = np.full((16, 16, 3), 100, np.uint8)
    queries = [*TRAIN_GT, *TRAIN_NO_GT, *TEST_GT]
    for name in [*DATABASE, *queries]:
        writer.write_image(name, image)
    writer.write_nvm([(name, pose, INTRINSICS) for name, pose in DATABASE.items()])
    writer.write_query_lists({1: queries})
    writer.write_train(list(TRAIN_GT.items()))
    writer.write_test([n for n in TEST_GT if "/rear/" in n])
    if with_test_ground_truth:
        writer.write_test_ground_truth(list(TEST_GT.items()))
    return root


@pytest.fixture(scope="session")
def benchmark_root(tmp_path_factory) -> Path:
    return write_benchmark(tmp_path_factory.mktemp("bench"))


@pytest.fixture(scope="session")
def benchmark_without_test_gt(tmp_path_factory) -> Path:
    return write_benchmark(tmp_path_factory.mktemp("bench_real_like"), with_test_ground_truth=False)

"""The rendered benchmark is a valid RobotCar Seasons folder: the foundation reader and
``open_dataset`` read it without special cases, with the counts, splits, calibration and ground
truth that the generator intended."""
from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np
from PIL import Image

from mduit_loc.datasets import open_dataset
from mduit_loc.datasets import robotcar_files as files
from mduit_loc.datasets.colmap_text import read_colmap_model
from mduit_loc.datasets.layout import CAMERAS, QUERY_CONDITIONS, REFERENCE_CONDITION, ImageName, canonical_name
from mduit_loc.datasets.robotcar import read_robotcar_seasons
from mduit_loc.datasets.synthetic.traversals import ROBOTCAR_INTRINSICS, car_from_camera
from mduit_loc.evaluation.evaluate import load_ground_truth

from .conftest import LOCATIONS, SIZE, small_preset


def test_reader_counts_per_condition_and_location(synth_root):
    preset = small_preset()
    dataset = read_robotcar_seasons(synth_root)
    assert dataset.kind == "robotcar-seasons"
    per_location = Counter(d.location for d in dataset.database)
    assert per_location == {loc: preset.db_frames_per_location * 3 for loc in range(1, LOCATIONS + 1)}
    assert {d.condition for d in dataset.database} == {REFERENCE_CONDITION}
    per_condition = Counter(q.condition for q in dataset.queries)
    assert per_condition == {c: LOCATIONS * preset.query_frames * 3 for c in QUERY_CONDITIONS}
    per_condition_location = Counter((q.condition, q.location) for q in dataset.queries)
    assert set(per_condition_location.values()) == {preset.query_frames * 3}
    assert Counter(q.camera for q in dataset.queries) == {c: len(dataset.queries) // 3 for c in CAMERAS}

    opened = open_dataset(synth_root)
    assert opened.kind == dataset.kind
    assert [d.name for d in opened.database] == [d.name for d in dataset.database]
    assert [(q.name, q.split) for q in opened.queries] == [(q.name, q.split) for q in dataset.queries]

    manifest = json.loads((synth_root / "synth.json").read_text())
    assert manifest["database_images"] == len(dataset.database)
    assert manifest["query_images"] == len(dataset.queries)
    assert manifest["preset"]["image_size"] == SIZE and manifest["locations"] == LOCATIONS


def test_every_listed_image_exists_and_nothing_else(synth_root):
    dataset = read_robotcar_seasons(synth_root)
    listed = {d.name for d in dataset.database} | {q.name for q in dataset.queries}
    on_disk = {str(p.relative_to(dataset.image_root)) for p in dataset.image_root.rglob("*") if p.is_file()}
    assert listed == on_disk
    for name in sorted(listed)[::17]:
        with Image.open(dataset.image_path(name)) as image:
            assert image.size == (SIZE, SIZE) and image.mode == "RGB"


def test_intrinsics_are_robotcar_scaled_to_the_image_size(synth_root):
    dataset = read_robotcar_seasons(synth_root)
    assert sorted(dataset.intrinsics) == sorted(CAMERAS)
    for camera, intrinsics in dataset.intrinsics.items():
        assert (intrinsics.width, intrinsics.height) == (SIZE, SIZE)
        assert intrinsics.fx == intrinsics.fy == 400.0 * SIZE / 1024
        assert np.isclose(intrinsics.cx, ROBOTCAR_INTRINSICS[camera].cx * SIZE / 1024, atol=1e-6)
        assert np.isclose(intrinsics.cy, ROBOTCAR_INTRINSICS[camera].cy * SIZE / 1024, atol=1e-6)


def test_extrinsics_describe_a_car_rig_and_agree_with_the_poses(synth_root):
    dataset = read_robotcar_seasons(synth_root)
    for camera, car_from_cam in dataset.rig.items():
        rotation = car_from_cam[:3, :3]
        assert np.allclose(rotation.T @ rotation, np.eye(3), atol=1e-8) and np.isclose(np.linalg.det(rotation), 1.0)
        assert np.allclose(car_from_cam, car_from_camera(camera), atol=1e-9)
        assert 1.3 < car_from_cam[2, 3] < 2.0  # roof height
    # viewing directions (camera z in car coordinates, x forward, y left)
    assert dataset.rig["rear"][0, 2] < -0.9 and dataset.rig["left"][1, 2] > 0.9 and dataset.rig["right"][1, 2] < -0.9
    # the three cameras of a frame give the same car pose through the written rig
    truth = files.read_test_ground_truth(synth_root)
    frames: dict[tuple[str, str], list[np.ndarray]] = {}
    poses = [(d.name, d.pose) for d in dataset.database] + sorted(truth.items())
    for name, pose in poses:
        parsed = ImageName.parse(name)
        world_from_cam = pose.inverse().matrix()
        frames.setdefault((parsed.condition, parsed.timestamp), []).append(
            world_from_cam @ np.linalg.inv(dataset.rig[parsed.camera]))
    assert all(len(cars) == 3 for cars in frames.values())
    for cars in frames.values():
        assert np.allclose(cars[0], cars[1], atol=1e-6) and np.allclose(cars[0], cars[2], atol=1e-6)


def test_splits_and_the_separate_test_ground_truth(synth_root):
    dataset = read_robotcar_seasons(synth_root)
    train = {q.name for q in dataset.queries if q.split == "train"}
    test = {q.name for q in dataset.queries if q.split == "test"}
    assert train and test and len(train) + len(test) == len(dataset.queries)
    for condition in QUERY_CONDITIONS:  # every condition has both splits
        assert any(n.startswith(condition + "/") for n in train) and any(n.startswith(condition + "/") for n in test)
    # the three cameras of a frame share the split
    split_of_frame = {}
    for query in dataset.queries:
        assert split_of_frame.setdefault((query.condition, query.timestamp), query.split) == query.split
    # public ground truth only for the train split (rear camera, as the real v2 file); the test
    # poses of all cameras are in their own file
    assert all((q.pose is not None) == (q.camera == "rear") for q in dataset.queries if q.split == "train")
    assert all(q.pose is None for q in dataset.queries if q.split == "test")
    truth = files.read_test_ground_truth(synth_root)
    assert set(truth) == test and not set(truth) & train
    # the train/test lists never point at the ground-truth file or its poses
    train_text = (synth_root / files.TRAIN_FILE).read_text()
    test_lines = (synth_root / files.TEST_FILE).read_text().split("\n")
    assert "ground_truth" not in train_text and "ground_truth" not in "\n".join(test_lines)
    assert all(len(line.split()) == 1 for line in test_lines if line.strip())
    assert all(line.startswith("rear/") for line in test_lines if line.strip())
    written_train = {ImageName.parse(line.split()[0]).timestamp for line in train_text.splitlines()}
    assert not written_train & {ImageName.parse(n).timestamp for n in test}
    # the evaluator picks the test ground truth of a synthetic folder by itself
    assert load_ground_truth(synth_root, "auto").split == "test"
    assert set(load_ground_truth(synth_root, "train").poses) == {n for n in train if "/rear/" in n}


def test_ground_truth_is_the_pose_the_image_was_rendered_from(synth_root, synth_town):
    dataset = read_robotcar_seasons(synth_root)
    truth = files.read_test_ground_truth(synth_root)
    known = {q.name: q.pose for q in dataset.queries if q.pose is not None} | truth
    known |= {d.name: d.pose for d in dataset.database}
    for name, pose in known.items():
        rendered = synth_town.frame(name).camera_pose(ImageName.parse(name).camera)
        assert np.allclose(pose.matrix(), rendered.matrix(), atol=1e-6), name


def test_queries_are_near_but_never_on_database_poses(synth_root):
    dataset = read_robotcar_seasons(synth_root)
    truth = files.read_test_ground_truth(synth_root)
    centres = {c: np.array([d.pose.center for d in dataset.database if d.camera == c]) for c in CAMERAS}
    locations = {c: np.array([d.location for d in dataset.database if d.camera == c]) for c in CAMERAS}
    nearest_by_condition: dict[str, list[float]] = {}
    for query in dataset.queries:
        pose = query.pose if query.pose is not None else truth.get(query.name)
        if pose is None:  # left/right images of the train split: no public pose, as in the real data
            continue
        distances = np.linalg.norm(centres[query.camera] - pose.center[None], axis=1)
        nearest = int(np.argmin(distances))
        assert locations[query.camera][nearest] == query.location, query.name
        assert distances[nearest] < 5.0
        nearest_by_condition.setdefault(query.condition, []).append(float(distances[nearest]))
    for condition, distances in nearest_by_condition.items():
        assert min(distances) > 0.01 and np.median(distances) > 0.1, condition


def test_location_models_hold_the_database_images_of_their_location(synth_root):
    dataset = read_robotcar_seasons(synth_root)
    for location in range(1, LOCATIONS + 1):
        model = read_colmap_model(files.location_model_dir(synth_root, location))
        expected = {d.name: d.pose for d in dataset.database if d.location == location}
        # .png names as in the real models (kapture's importer matches '.*/(\d+)\.png'); the files are .jpg
        assert all(re.fullmatch(r".*/(\d+)\.png", name) for name in model.images)
        assert {canonical_name(name) for name in model.images} == set(expected)
        for name, pose in model.images.items():
            assert np.allclose(pose.matrix(), expected[canonical_name(name)].matrix(), atol=1e-6)
        assert {ImageName.parse(name).camera: model.image_cameras[name] for name in model.images} == {
            "left": 1, "rear": 2, "right": 3}
        assert len(model.points_xyz) > 100
    lists = files.read_query_lists(synth_root)
    assert sorted(lists) == list(range(1, LOCATIONS + 1))

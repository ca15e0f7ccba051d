"""read_robotcar_seasons on the hand-written fixture, bad datasets, and writer -> reader round trips."""
import shutil
from pathlib import Path

import numpy as np
import pytest

from mduit_loc.datasets import robotcar_files as files
from mduit_loc.datasets.robotcar import is_robotcar_layout, read_robotcar_seasons
from mduit_loc.datasets.robotcar_writer import RobotCarSeasonsWriter
from mduit_loc.datasets.types import Intrinsics
from mduit_loc.errors import DataNotFoundError, FormatError, MduitError
from mduit_loc.poses import Pose, yaw_pose

MINI = Path(__file__).parent / "data" / "robotcar_mini"
GOLDEN = Path(__file__).parent / "data" / "golden"
NIGHT_REAR = "night/rear/1418235223450115.jpg"
SUN_REAR = "sun/rear/1416315296136145.jpg"
SUN_LEFT = "sun/left/1416315296136145.jpg"


@pytest.fixture(scope="module")
def mini():
    return read_robotcar_seasons(MINI)


@pytest.fixture()
def mini_copy(tmp_path):
    shutil.copytree(MINI, tmp_path / "mini")
    return tmp_path / "mini"


# --- the fixture -------------------------------------------------------------------------
def test_fixture_counts_names_and_layout(mini):
    assert is_robotcar_layout(MINI) and mini.kind == "robotcar-seasons"
    assert mini.image_root == MINI / "images" and mini.nvm_path == MINI / files.NVM_FILE
    assert [d.name for d in mini.database] == ["overcast-reference/rear/1417176456183210.jpg",
                                               "overcast-reference/rear/1417176457183210.jpg"]
    assert {d.condition for d in mini.database} == {"overcast-reference"}
    assert sorted(q.name for q in mini.queries) == [NIGHT_REAR, SUN_LEFT, SUN_REAR]
    assert mini.conditions == ["night", "overcast-reference", "sun"]
    assert all(mini.image_path(name).is_file() for name in [*mini.database_by_name(), *mini.queries_by_name()])


def test_fixture_database_poses_are_the_nvm_values(mini):
    first, second = mini.database
    np.testing.assert_allclose(first.pose.center, [10, 20, 30])
    np.testing.assert_allclose(first.pose.R, np.eye(3))
    np.testing.assert_allclose(second.pose.center, [11, 20, 30])
    np.testing.assert_allclose(second.pose.R, [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-12)
    assert {d.location for d in mini.database} == {1}  # from colmap_reconstructions/001_aligned


def test_fixture_queries_split_location_and_ground_truth(mini):
    queries = mini.queries_by_name()
    night = queries[NIGHT_REAR]
    assert (night.condition, night.camera, night.location, night.split) == ("night", "rear", 1, "train")
    assert night.day_night == "night" and night.timestamp == "1418235223450115"
    # robotcar_v2_train.txt: identity rotation, camera at (10, 20, 30) in the world.
    np.testing.assert_allclose(night.pose.center, [10, 20, 30])
    np.testing.assert_allclose(night.pose.t, [-10, -20, -30])
    # robotcar_v2_test.txt names rear/<ts>.png without condition: resolved to sun by timestamp.
    sun = queries[SUN_REAR]
    assert (sun.condition, sun.split, sun.pose, sun.day_night) == ("sun", "test", None, "day")
    # The left image of that frame is not in the v2 lists; it shares the rear image's split.
    assert (queries[SUN_LEFT].camera, queries[SUN_LEFT].split, queries[SUN_LEFT].location) == ("left", "test", 1)


def test_fixture_intrinsics_rig_and_training_images(mini):
    assert mini.intrinsics == {"left": Intrinsics(400, 400, 500.107605, 511.461426, 8, 8),
                               "rear": Intrinsics(400, 400, 508.222931, 498.187378, 8, 8)}
    np.testing.assert_array_equal(mini.rig["rear"][:3, 3], [-0.2, 0, 1.5])
    assert set(mini.rig) == {"left", "rear"}
    training = {t.name: t for t in mini.training_images()}
    assert len(training) == 5 and training[SUN_REAR].pose is None and training[NIGHT_REAR].pose is not None
    assert training[NIGHT_REAR].domain == "night" and training[NIGHT_REAR].path == MINI / "images" / NIGHT_REAR
    assert SUN_REAR not in {t.name for t in mini.training_images(include_test_queries=False)}


def test_without_query_lists_queries_come_from_the_image_folders(mini_copy):
    shutil.rmtree(mini_copy / files.QUERY_LISTS_DIR)
    dataset = read_robotcar_seasons(mini_copy)
    assert sorted(q.name for q in dataset.queries) == [NIGHT_REAR, SUN_LEFT, SUN_REAR]
    assert {q.location for q in dataset.queries} == {None}
    assert dataset.queries_by_name()[SUN_REAR].split == "test"


# --- bad datasets ------------------------------------------------------------------------
def _rewrite(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("file,text,line,expected", [
    (files.TRAIN_FILE, "night/rear/999.png 1 0 0 0 0 1 0 0 0 0 1 0 0 0 0 1\n", 1, "one of the dataset's queries"),
    (files.TRAIN_FILE, "night/rear/1418235223450115.png 1 0 0 0 0 1 0 0 0 0 1 0 0 0 1 1\n", 1, "rigid"),
    (files.TEST_FILE, "rear/1416315296136145.png\nrear/1418235223450115.png\n", 2, "not in the training list"),
    (files.TEST_FILE, "night/rear/1416315296136145.png\n", 1, "condition 'sun'"),
    (files.TEST_FILE, "front/1416315296136145.png\n", 1, "unknown camera"),
    ("3D-models/individual/queries_per_location/queries_location_001.txt", "sun/rear/1.jpg\nfog/rear/2.jpg\n", 2,
     "unknown condition 'fog'"),
    ("3D-models/all-merged/all.nvm", "NVM_V3\n1\n./nowhere/1.png 400 1 0 0 0 1 2 3 0 0\n", None, "camera names"),
])
def test_bad_files_name_file_and_line(mini_copy, file, text, line, expected):
    path = _rewrite(mini_copy / file, text)
    with pytest.raises(FormatError, match=expected) as info:
        read_robotcar_seasons(mini_copy)
    assert info.value.path == path and info.value.line == line


def test_missing_parts_are_named(mini_copy, tmp_path):
    with pytest.raises(DataNotFoundError, match="dataset folder not found"):
        read_robotcar_seasons(tmp_path / "nothing")
    (mini_copy / files.NVM_FILE).unlink()
    with pytest.raises(DataNotFoundError, match="all-merged/all.nvm"):
        read_robotcar_seasons(mini_copy)
    shutil.rmtree(mini_copy / "images")
    with pytest.raises(DataNotFoundError, match="image folder not found"):
        read_robotcar_seasons(mini_copy)


# --- writer -> reader --------------------------------------------------------------------
def _image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (16, 24, 3), dtype=np.uint8)


@pytest.fixture()
def written(tmp_path):
    """A two-location dataset written with RobotCarSeasonsWriter, and what was written."""
    root = tmp_path / "written"
    writer = RobotCarSeasonsWriter(root)
    intrinsics = {"rear": Intrinsics(20, 20, 12, 8, 24, 16), "left": Intrinsics(21, 21, 11.5, 8.5, 24, 16)}
    rig = {"rear": yaw_pose(180).inverse().matrix(), "left": yaw_pose(90).inverse().matrix()}
    for camera in intrinsics:
        writer.write_intrinsics(camera, intrinsics[camera])
        writer.write_extrinsics(camera, rig[camera])
    database = {"overcast-reference/rear/100.jpg": yaw_pose(10, (1, 2, 0)),
                "overcast-reference/left/100.jpg": yaw_pose(100, (1, 2, 0)),
                "overcast-reference/rear/200.jpg": yaw_pose(-30, (50, -2, 1))}
    queries = {"night/rear/300.jpg": yaw_pose(12, (1.5, 2, 0)), "night/left/300.jpg": yaw_pose(102, (1.5, 2, 0)),
               "sun/rear/400.jpg": yaw_pose(8, (0.5, 2, 0)), "sun/left/400.jpg": yaw_pose(98, (0.5, 2, 0)),
               "dawn/rear/500.jpg": yaw_pose(-28, (49, -2, 1))}
    for index, name in enumerate([*database, *queries]):
        writer.write_image(name, _image(index))
    entries = [(name, pose, intrinsics[name.split("/")[1]]) for name, pose in database.items()]
    writer.write_nvm(entries, np.array([[1.0, 2, 3]]), None, [np.array([[0, 0, 1.5, -2.5]])])
    writer.write_location_model(1, entries[:2])
    writer.write_location_model(2, entries[2:])
    writer.write_query_lists({1: ["night/rear/300.jpg", "night/left/300.jpg", "sun/rear/400.jpg", "sun/left/400.jpg"],
                              2: ["dawn/rear/500.jpg"]})
    writer.write_train([("night/rear/300.jpg", queries["night/rear/300.jpg"])])
    writer.write_test(["sun/rear/400.jpg", "dawn/rear/500.jpg"])
    test_names = ["sun/rear/400.jpg", "sun/left/400.jpg", "dawn/rear/500.jpg"]
    writer.write_test_ground_truth([(name, queries[name]) for name in test_names])
    return root, intrinsics, rig, database, queries


def test_writer_output_has_the_real_file_formats(written):
    root = written[0]
    assert (root / files.TRAIN_FILE).read_text().startswith("night/rear/300.png ")
    assert (root / files.TEST_FILE).read_text() == "rear/400.png\nrear/500.png\n"
    nvm_lines = (root / files.NVM_FILE).read_text().splitlines()
    assert nvm_lines[0] == "NVM_V3" and nvm_lines[3].startswith("./overcast-reference/rear/100.png 20 ")
    assert (root / "extrinsics" / "rear_extrinsics.txt").read_text().count(",") == 12
    assert sorted(p.name for p in (root / files.LOCATION_MODELS_DIR).iterdir()) == ["001_aligned", "002_aligned"]


def test_location_model_golden_files_name_images_png_with_the_real_camera_ids(written):
    r"""Issue 13 item 1: as the real per-location models, images are ``.png`` (kapture's RobotCar Seasons
    importer matches ``.*/(\d+)\.png`` there) and camera ids 1, 2, 3 are left, rear, right (it maps them
    so), whatever the image order; points seen by two images have a two-image track."""
    root, intrinsics, _, database, _ = written
    entries = [(name, pose, intrinsics[name.split("/")[1]]) for name, pose in database.items()]
    folder = RobotCarSeasonsWriter(root).write_location_model(
        7, entries[:2], [np.array([[1.5, 2.5], [3.25, 4.0]]), np.array([[5.5, 6.5]])],
        [np.array([1, 2]), np.array([1])], np.array([[1.0, 2, 3], [4, 5, 6]]), np.array([[9, 8, 7], [6, 5, 4]]))
    for name in ("cameras.txt", "images.txt", "points3D.txt"):
        assert (folder / name).read_text() == (GOLDEN / "location_model" / name).read_text(), name


def test_writer_then_reader_round_trip(written):
    root, intrinsics, rig, database, queries = written
    dataset = read_robotcar_seasons(root)
    assert dataset.intrinsics == intrinsics
    for camera in rig:
        np.testing.assert_allclose(dataset.rig[camera], rig[camera], atol=1e-9)
    read_db = dataset.database_by_name()
    assert set(read_db) == set(database)
    for name, pose in database.items():
        assert read_db[name].pose.allclose(pose, atol=1e-7), name
        assert read_db[name].camera == name.split("/")[1]
    assert read_db["overcast-reference/rear/200.jpg"].location == 2
    assert read_db["overcast-reference/left/100.jpg"].location == 1
    read_q = dataset.queries_by_name()
    assert set(read_q) == set(queries)
    assert read_q["night/rear/300.jpg"].pose.allclose(queries["night/rear/300.jpg"], atol=1e-7)
    assert {n: q.split for n, q in read_q.items()} == {
        "night/rear/300.jpg": "train", "night/left/300.jpg": "train", "sun/rear/400.jpg": "test",
        "sun/left/400.jpg": "test", "dawn/rear/500.jpg": "test"}
    assert {n: q.location for n, q in read_q.items()}["dawn/rear/500.jpg"] == 2
    assert all(q.pose is None for q in read_q.values() if q.split == "test")
    truth = files.read_test_ground_truth(root)
    assert set(truth) == {"sun/rear/400.jpg", "sun/left/400.jpg", "dawn/rear/500.jpg"}
    assert truth["dawn/rear/500.jpg"].allclose(queries["dawn/rear/500.jpg"], atol=1e-7)


def test_writer_rejects_duplicates_and_bad_names(tmp_path):
    writer = RobotCarSeasonsWriter(tmp_path)
    pose = Pose.identity()
    with pytest.raises(MduitError, match="appears twice"):
        writer.write_train([("sun/rear/1.jpg", pose), ("sun/rear/1.png", pose)])
    with pytest.raises(MduitError, match="appears twice"):
        writer.write_query_lists({1: ["sun/rear/1.jpg"], 2: ["sun/rear/1.jpg"]})
    with pytest.raises(ValueError, match="unknown condition"):
        writer.write_image("fog/rear/1.jpg", _image(0))
    assert not (tmp_path / files.TRAIN_FILE).exists()


def test_an_unreadable_image_does_not_make_the_dataset_unreadable(mini_copy):
    # night/rear/... is the first rear image; the image size comes from the next readable one.
    (mini_copy / "images" / NIGHT_REAR).write_bytes(b"not an image")
    dataset = read_robotcar_seasons(mini_copy)
    assert (dataset.intrinsics["rear"].width, dataset.intrinsics["rear"].height) == (8, 8)

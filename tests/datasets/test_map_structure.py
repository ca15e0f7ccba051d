"""Where a map's files are (``MapFiles``) and the 3D structure read from them (``datasets.structure``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mduit_loc.datasets import open_dataset
from mduit_loc.datasets.colmap_text import ColmapImage, write_colmap_text
from mduit_loc.datasets.map_files import MapFiles, default_image_root
from mduit_loc.datasets.structure import colmap_model_folders, read_structure
from mduit_loc.datasets.types import Intrinsics
from mduit_loc.poses import yaw_pose

MINI = Path(__file__).parent / "data" / "robotcar_mini"
FIRST = "overcast-reference/rear/1417176456183210.jpg"
SECOND = "overcast-reference/rear/1417176457183210.jpg"


def test_map_files_round_trip_through_the_manifest_record():
    files = MapFiles.of(open_dataset(MINI))
    assert files.kind == "robotcar-seasons" and files.root == MINI.resolve()
    assert files.image_root == MINI.resolve() / "images" and files.nvm_path.name == "all.nvm"
    assert MapFiles.from_record(files.to_record()) == files
    bare = MapFiles.from_record({})                       # an old or hand-written manifest
    assert bare == MapFiles(root=Path("."), image_root=Path("."), kind="", nvm_path=None)


def test_default_image_root_is_the_images_folder_of_a_robotcar_layout(tmp_path):
    assert default_image_root(MINI) == MINI / "images"
    assert default_image_root(tmp_path) is None and default_image_root(None) is None


def test_robotcar_structure_comes_from_the_nvm_when_the_location_models_have_no_points():
    dataset = open_dataset(MINI)
    files = MapFiles.of(dataset)
    assert [f.name for f in colmap_model_folders(files)] == ["001_aligned"]
    structure = read_structure(files, dataset.intrinsics)
    assert structure is not None and structure.source.endswith("all.nvm") and structure.points is None
    # NVM measurements are relative to the image centre (8 x 8 px images here): shifted by (4, 4).
    np.testing.assert_allclose(structure.observations[FIRST].pixels, [[0.5, 8.25], [5.0, 6.0]])
    np.testing.assert_allclose(structure.observations[FIRST].points, [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_allclose(structure.observations[SECOND].pixels, [[7.0, 8.0]])
    assert structure.observations[FIRST].cam_from_world is None    # the scene uses the database pose


def test_colmap_map_structure_keeps_the_model_pose_and_camera(tmp_path):
    camera = Intrinsics(50.0, 50.0, 32.0, 24.0, 64, 48)
    pose = yaw_pose(0.0, (0.0, 0.0, 0.0))
    cloud = np.array([[0.0, 0.0, 5.0], [1.0, 0.5, 4.0]])
    pixels = np.array([[32.0, 24.0], [44.5, 30.25]])
    write_colmap_text(tmp_path / "sparse", {1: camera}, [ColmapImage("a.png", pose, 1, pixels, np.array([1, 2]))],
                      cloud)
    files = MapFiles(root=tmp_path, image_root=tmp_path / "images", kind="colmap")
    assert colmap_model_folders(files) == [tmp_path / "sparse"]
    structure = read_structure(files, {})
    # listed under the model's name and the canonical one (RobotCar models say .png, the database .jpg)
    assert structure is not None and set(structure.observations) == {"a.png", "a.jpg"}
    observed = structure.observations["a.png"]
    assert structure.observations["a.jpg"] is observed
    np.testing.assert_allclose(observed.pixels, pixels)
    np.testing.assert_allclose(observed.points, cloud)
    np.testing.assert_allclose(observed.unproject(np.array([[32.0, 24.0]])), [[0.0, 0.0]], atol=1e-9)
    assert observed.cam_from_world is not None


def test_a_map_without_structure_reads_as_none(tmp_path):
    assert read_structure(MapFiles(root=tmp_path, image_root=tmp_path, kind="folders"), {}) is None

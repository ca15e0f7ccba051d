"""Users' own data (COLMAP map + images, folder per domain) and open_dataset's layout detection."""
import shutil
from pathlib import Path

import numpy as np
import pytest

from mduit_loc.datasets import open_dataset
from mduit_loc.datasets.colmap_text import ColmapImage, write_colmap_text
from mduit_loc.datasets.images import save_image
from mduit_loc.datasets.types import Intrinsics
from mduit_loc.datasets.user_data import MAP_CONDITION, read_colmap_map, read_domain_folders
from mduit_loc.errors import DataNotFoundError, MduitError
from mduit_loc.poses import yaw_pose

MINI = Path(__file__).parent / "data" / "robotcar_mini"
PINHOLE = Intrinsics(30, 31, 16, 12, 32, 24)


def _image(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (24, 32, 3), dtype=np.uint8)


def _colmap_project(root: Path, model_dir: str = "sparse/0") -> dict:
    poses = {"frontcam/a.jpg": yaw_pose(0, (0, 0, 1)), "frontcam/b.jpg": yaw_pose(45, (2, 0, 1)),
             "c.jpg": yaw_pose(90, (4, 0, 1))}
    images = [ColmapImage(name, pose, 1 if "/" in name else 2) for name, pose in poses.items()]
    write_colmap_text(root / model_dir, {1: PINHOLE, 2: Intrinsics(40, 40, 16, 12, 32, 24)}, images)
    for index, name in enumerate(poses):
        save_image(root / "images" / name, _image(index))
    return poses


def test_colmap_text_model_with_image_folder(tmp_path):
    poses = _colmap_project(tmp_path)
    dataset = open_dataset(tmp_path)
    assert dataset.kind == "colmap" and dataset.image_root == tmp_path / "images" and dataset.queries == []
    by_name = dataset.database_by_name()
    assert set(by_name) == set(poses)
    for name, pose in poses.items():
        assert by_name[name].pose.allclose(pose, atol=1e-8) and by_name[name].condition == MAP_CONDITION
    # The camera is the first folder of the name, else the COLMAP camera id.
    assert by_name["frontcam/a.jpg"].camera == "frontcam" and by_name["c.jpg"].camera == "camera2"
    assert dataset.intrinsics == {"frontcam": PINHOLE, "camera2": Intrinsics(40, 40, 16, 12, 32, 24)}
    assert all(dataset.image_path(name).is_file() for name in by_name)


def test_colmap_binary_model_written_by_pycolmap(tmp_path):
    import pycolmap

    poses = _colmap_project(tmp_path, "text")
    (tmp_path / "bin").mkdir()
    pycolmap.Reconstruction(str(tmp_path / "text")).write(str(tmp_path / "bin"))
    assert (tmp_path / "bin" / "images.bin").is_file()
    dataset = read_colmap_map(tmp_path / "bin", tmp_path / "images")
    for image in dataset.database:
        assert image.pose.allclose(poses[image.name], atol=1e-8)


def test_colmap_model_without_images_asks_for_image_root(tmp_path):
    _colmap_project(tmp_path)
    shutil.rmtree(tmp_path / "images")
    with pytest.raises(DataNotFoundError, match="--image-root"):
        open_dataset(tmp_path)
    with pytest.raises(DataNotFoundError, match="COLMAP model not found"):
        read_colmap_map(tmp_path / "images")


def test_folder_per_domain(tmp_path):
    save_image(tmp_path / "day" / "a.jpg", _image(0))
    save_image(tmp_path / "day" / "deeper" / "b.png", _image(1))
    save_image(tmp_path / "night" / "c.jpg", _image(2))
    (tmp_path / "night" / "notes.txt").write_text("not an image")
    save_image(tmp_path / ".hidden" / "d.jpg", _image(3))
    dataset = open_dataset(tmp_path)
    assert dataset.kind == "domain-folders" and dataset.database == []
    assert [(q.name, q.condition) for q in dataset.queries] == [
        ("day/a.jpg", "day"), ("day/deeper/b.png", "day"), ("night/c.jpg", "night")]
    assert dataset.conditions == ["day", "night"]
    assert [t.domain for t in dataset.training_images()] == ["day", "day", "night"]
    assert all(t.pose is None and t.path.is_file() for t in dataset.training_images())


def test_a_single_domain_is_not_enough(tmp_path):
    save_image(tmp_path / "day" / "a.jpg", _image(0))
    with pytest.raises(MduitError, match="found 1 domain folder"):
        read_domain_folders(tmp_path)


def test_open_dataset_detects_robotcar_layout():
    assert open_dataset(MINI).kind == "robotcar-seasons"


def test_open_dataset_explains_an_unknown_folder(tmp_path):
    (tmp_path / "readme.txt").write_text("nothing here")
    with pytest.raises(MduitError) as info:
        open_dataset(tmp_path)
    message = str(info.value)
    assert str(tmp_path) in message and "RobotCar Seasons" in message and "COLMAP" in message
    assert "\n" not in message


def test_open_dataset_on_missing_path_or_file(tmp_path):
    with pytest.raises(DataNotFoundError, match="dataset not found"):
        open_dataset(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(MduitError, match="expected a dataset folder.*got a file"):
        open_dataset(tmp_path / "file.txt")

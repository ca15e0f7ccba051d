"""Issue 13 item 3: the camera of each image of a COLMAP map comes from its COLMAP camera (and the
camera's name from its folder where a rig is known), so --per-camera masks and PnP intrinsics are
per image. Small COLMAP text models written here."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from mduit_loc.cli import main
from mduit_loc.datasets.colmap_text import ColmapImage, write_colmap_text
from mduit_loc.datasets.images import save_image
from mduit_loc.datasets.types import Intrinsics
from mduit_loc.datasets.user_data import read_colmap_map
from mduit_loc.poses import yaw_pose
from mduit_loc.retrieval import localize as localize_module
from mduit_loc.retrieval.api import ExtractOptions, Localizer, QueryOptions, SearchOptions
from mduit_loc.retrieval.faiss_index import load_index

QUIET = ["--num-workers", "0", "--no-progress", "--device", "cpu"]
# RobotCar Seasons' published intrinsics (FORMATS.md); the images here are 32x32 thumbnails
LEFT, REAR, RIGHT = (Intrinsics(400.0, 400.0, cx, cy, 1024, 1024) for cx, cy in
                     ((500.107605, 511.461426), (508.222931, 498.187378), (502.503754, 490.259033)))
CAMERAS = {"left": LEFT, "rear": REAR, "right": RIGHT}
TIMESTAMPS = ("1417176458999821", "1417176459999821")


def _robotcar_style_map(root: Path, camera_per_image: bool) -> dict[str, Intrinsics]:
    """``overcast-reference/<camera>/<ts>.jpg`` as hloc writes RobotCar maps; COLMAP cameras either
    one per rig camera (ids 1/2/3) or one per image (COLMAP's default), the second rear image with
    its own focal length. Returns each image's own intrinsics."""
    rng = np.random.default_rng(1)
    cameras: dict[int, Intrinsics] = {}
    images, own = [], {}
    for index, (camera, intrinsics) in enumerate(CAMERAS.items()):
        for shot, timestamp in enumerate(TIMESTAMPS):
            name = f"overcast-reference/{camera}/{timestamp}.jpg"
            if camera_per_image:
                camera_id = len(cameras) + 1
                if camera == "rear" and shot == 1:
                    intrinsics = Intrinsics(410.0, 410.0, intrinsics.cx, intrinsics.cy, 1024, 1024)
            else:
                camera_id = index + 1
            cameras[camera_id] = own[name] = intrinsics
            images.append(ColmapImage(name, yaw_pose(30 * index + shot, (index, shot, 0)), camera_id))
            save_image(root / "images" / name, rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
    write_colmap_text(root / "sparse", cameras, images)
    return own


@pytest.mark.parametrize("camera_per_image", [False, True])
def test_robotcar_style_colmap_map_has_a_camera_and_intrinsics_per_image(tmp_path, camera_per_image):
    own = _robotcar_style_map(tmp_path, camera_per_image)
    dataset = read_colmap_map(tmp_path / "sparse", tmp_path / "images")
    assert {image.name: image.camera for image in dataset.database} == {name: name.split("/")[1] for name in own}
    assert dataset.intrinsics == CAMERAS  # the common calibration of each camera
    for image in dataset.database:
        assert dataset.intrinsics_of(image.name, image.camera) == own[image.name]
    odd = f"overcast-reference/rear/{TIMESTAMPS[1]}.jpg"
    assert dataset.image_intrinsics == ({odd: own[odd]} if camera_per_image else {})


def test_per_camera_masks_and_pnp_intrinsics_follow_each_image(tmp_path, monkeypatch):
    own = _robotcar_style_map(tmp_path, camera_per_image=True)
    index = tmp_path / "idx"
    assert main(["index", "--db", str(tmp_path / "sparse"), "--image-root", str(tmp_path / "images"),
                 "--model", "raw-pixels:2x2", "--out", str(index), *QUIET]) == 0
    loaded = load_index(index)
    assert loaded.table.cameras == ["left", "rear", "right"]
    odd = f"overcast-reference/rear/{TIMESTAMPS[1]}.jpg"
    assert loaded.manifest["image_intrinsics"] == {odd: vars(own[odd])}
    queries = tmp_path / "queries"
    for camera in CAMERAS:
        save_image(queries / "night" / camera / "1.jpg", np.full((32, 32, 3), 90, np.uint8))
    assert main(["query", "--index", str(index), "--images", str(queries), "--per-camera", "--top-k", "5",
                 "--out", str(tmp_path / "res"), *QUIET]) == 0
    for row in csv.DictReader(open(tmp_path / "res" / "scores.csv")):
        assert row["db_camera"] == row["query"].split("/")[1] == row["db_image"].split("/")[1]

    seen = []  # what PnP is given: the query camera's intrinsics, each database image's own

    def refine(self, query_path, query_intrinsics, retrieved, fallback):
        seen.append((Path(query_path).parent.name, query_intrinsics, {r.name: r.intrinsics for r in retrieved}))
        return localize_module.RefineResult(fallback, False, status="recorded")

    monkeypatch.setattr(localize_module.PoseRefiner, "refine", refine)
    options = QueryOptions(search=SearchOptions(k=2, per_camera=True), pose="pnp",
                           extract=ExtractOptions(num_workers=0, progress=False), device=torch.device("cpu"))
    # From the index's manifest (the map lies inside a folder named to it) ...
    recorded = localize_module._MapForRefinement.load(loaded, options, [tmp_path])
    assert {name: recorded.retrieved(loaded.table, i).intrinsics for i, name in enumerate(loaded.table.image_names)} \
        == own
    # ... and from the map given with --data, through a whole query
    options.data, options.image_root = str(tmp_path / "sparse"), str(tmp_path / "images")
    Localizer(index, options).localize([queries])
    assert len(seen) == 3
    for camera, query_intrinsics, retrieved in seen:
        assert query_intrinsics == CAMERAS[camera] and retrieved == {name: own[name] for name in retrieved}
        assert len(retrieved) == 2 and all(name.split("/")[1] == camera for name in retrieved)


RIGS = """# RIG_ID, NUM_SENSORS, REF_SENSOR_TYPE, REF_SENSOR_ID, SENSORS[] as (SENSOR_TYPE, SENSOR_ID, HAS_POSE, [POSE])
1 2 CAMERA 1 CAMERA 2 1 1 0 0 0 -1 0 0
"""
FRAMES = """# FRAME_ID, RIG_ID, RIG_FROM_WORLD[QW, QX, QY, QZ, TX, TY, TZ], NUM_DATA_IDS, DATA_IDS[]
1 1 1 0 0 0 1 0 0 2 CAMERA 1 1 CAMERA 2 2
2 1 1 0 0 0 2 0 0 2 CAMERA 1 3 CAMERA 2 4
"""


def test_rig_model_names_each_sensor_by_its_folder(tmp_path):
    """A COLMAP >= 3.12 model with rigs.txt/frames.txt (read by pycolmap): one folder per sensor."""
    model = tmp_path / "sparse"
    model.mkdir()
    (model / "cameras.txt").write_text("1 PINHOLE 32 24 30 30 16 12\n2 PINHOLE 32 24 20 20 16 12\n")
    (model / "rigs.txt").write_text(RIGS)
    (model / "frames.txt").write_text(FRAMES)
    (model / "images.txt").write_text("1 1 0 0 0 1 0 0 1 cam_front/1.jpg\n\n2 1 0 0 0 0 0 0 2 cam_back/1.jpg\n\n"
                                      "3 1 0 0 0 2 0 0 1 cam_front/2.jpg\n\n4 1 0 0 0 1 0 0 2 cam_back/2.jpg\n\n")
    (model / "points3D.txt").write_text("")
    for name in ("cam_front/1.jpg", "cam_back/1.jpg", "cam_front/2.jpg", "cam_back/2.jpg"):
        save_image(tmp_path / "images" / name, np.zeros((24, 32, 3), np.uint8))
    dataset = read_colmap_map(model, tmp_path / "images")
    assert {image.name: image.camera for image in dataset.database} == {
        "cam_back/1.jpg": "cam_back", "cam_back/2.jpg": "cam_back", "cam_front/1.jpg": "cam_front",
        "cam_front/2.jpg": "cam_front"}
    assert dataset.intrinsics == {"cam_front": Intrinsics(30, 30, 16, 12, 32, 24),
                                  "cam_back": Intrinsics(20, 20, 16, 12, 32, 24)}


def test_images_of_one_folder_with_a_camera_each_are_named_by_camera_id(tmp_path):
    cameras = {1: Intrinsics(30, 30, 16, 12, 32, 24), 2: Intrinsics(31, 31, 16, 12, 32, 24)}
    write_colmap_text(tmp_path / "sparse", cameras, [ColmapImage("db/a.jpg", yaw_pose(0, (0, 0, 0)), 1),
                                                     ColmapImage("db/b.jpg", yaw_pose(9, (1, 0, 0)), 2)])
    (tmp_path / "images").mkdir()
    dataset = read_colmap_map(tmp_path / "sparse", tmp_path / "images")
    assert [(image.name, image.camera) for image in dataset.database] == [("db/a.jpg", "camera1"),
                                                                          ("db/b.jpg", "camera2")]
    assert dataset.intrinsics == {"camera1": cameras[1], "camera2": cameras[2]} and dataset.image_intrinsics == {}

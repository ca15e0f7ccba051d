"""Query inputs (files, folders, lists, datasets), translated databases, retrieval poses."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from mduit_loc.datasets.images import save_image
from mduit_loc.errors import FormatError, MduitError
from mduit_loc.poses import Pose, rotation_error_deg, yaw_pose
from mduit_loc.retrieval.api import AppearanceOptions, build_index, localize
from mduit_loc.retrieval.faiss_index import load_index
from mduit_loc.retrieval.h5_io import read_descriptors
from mduit_loc.retrieval.pose_estimation import retrieval_pose, similarity_weights
from mduit_loc.retrieval.query_inputs import resolve_queries

from . import retrieval_fakes as fakes

MINI = Path(__file__).parents[1] / "datasets" / "data" / "robotcar_mini"


# --- query inputs -----------------------------------------------------------------------------
def test_dataset_folder_means_its_queries_with_camera_location_and_split():
    items = resolve_queries([MINI], split="all")
    by_name = {item.name: item for item in items}
    assert sorted(by_name) == ["night/rear/1418235223450115.jpg", "sun/left/1416315296136145.jpg",
                               "sun/rear/1416315296136145.jpg"]
    assert by_name["sun/left/1416315296136145.jpg"].camera == "left"
    assert by_name["sun/left/1416315296136145.jpg"].location == 1
    assert by_name["night/rear/1418235223450115.jpg"].path == MINI / "images/night/rear/1418235223450115.jpg"
    with pytest.raises(MduitError, match="no queries of split 'nope'|--split must be"):
        resolve_queries([MINI], split="nope")


def test_folders_files_and_list_files_give_names_relative_to_the_image_root(tmp_path):
    image_root = MINI / "images"
    items = resolve_queries([image_root / "sun"], image_root=image_root, dataset_root=MINI, known_cameras=["rear"])
    assert [(i.name, i.camera, i.location) for i in items] == [
        ("sun/left/1416315296136145.jpg", None, 1), ("sun/rear/1416315296136145.jpg", "rear", 1)]
    # Outside the image root, names are relative to the folder given.
    shutil.copytree(image_root / "night", tmp_path / "mine")
    resolved = resolve_queries([tmp_path / "mine"], image_root=image_root)
    assert [i.name for i in resolved] == ["rear/1418235223450115.jpg"]
    listing = tmp_path / "list.txt"
    listing.write_text("# queries\nnight/rear/1418235223450115.png SIMPLE_RADIAL 1024 1024 400 512 512 0\n")
    (item,) = resolve_queries([listing], image_root=image_root)
    assert item.name == "night/rear/1418235223450115.jpg" and item.path.is_file()
    with pytest.raises(FormatError, match="list.txt:2: expected absolute image paths, or names with --image-root"):
        resolve_queries([listing])
    with pytest.raises(MduitError, match="given twice"):
        resolve_queries([listing, listing], image_root=image_root)
    # Programmatic callers may pass names relative to the image root (the .png spelling too).
    (item,) = resolve_queries(["night/rear/1418235223450115.png"], image_root=image_root, dataset_root=MINI,
                              known_cameras=["rear"])
    assert (item.name, item.camera, item.location) == ("night/rear/1418235223450115.jpg", "rear", 1)


# --- translated database ------------------------------------------------------------------------
@pytest.fixture()
def two_condition_dataset(tmp_path):
    """A red and a blue map image; training images of two appearances (night: dark grey, snow: white)."""
    return fakes.color_dataset(
        tmp_path, database=[("map/rear/red.png", (200, 0, 0), yaw_pose(0, (0, 0, 0)), 1),
                            ("map/rear/blue.png", (0, 0, 200), yaw_pose(90, (10, 0, 0)), 1)],
        queries=[("night/rear/n1.png", (40, 40, 40), 1), ("snow/rear/s1.png", (255, 255, 255), 1)])


def _train_split(dataset):
    # Appearance exemplars come from training images only; mark the fixture's queries as train.
    for i, query in enumerate(dataset.queries):
        dataset.queries[i] = type(query)(query.name, query.condition, query.camera, query.location, None, "train")
    return dataset


@pytest.mark.parametrize("device", fakes.DEVICES, ids=str)
def test_translated_database_indexes_every_variant_and_collapses_them(two_condition_dataset, tmp_path, device):
    dataset = _train_split(two_condition_dataset)
    options = fakes.index_options(translate_db=True, save_translations=True, device=device)
    index_dir = build_index(dataset, "test-mduit", tmp_path / "index", options)
    loaded = load_index(index_dir)
    assert loaded.table.appearances == ["original", "night-0", "snow-0"]
    assert loaded.table.num_vectors == 6 and loaded.table.num_images == 2
    appearances = json.loads((index_dir / "appearances.json").read_text())["appearances"]
    assert appearances[0]["sources"] == ["night/rear/n1.png"]
    # Translation blends halfway to the exemplar's mean colour: red -> (120, 20, 20) for night.
    _, vectors = read_descriptors(index_dir / "translations.h5", ["night-0/map/rear/red.png"])
    expected = np.array([200 + 40, 40, 40], np.float64) / 2
    assert vectors[0] == pytest.approx(expected / np.linalg.norm(expected), abs=2e-3)
    assert (index_dir / "translations/snow-0/map/rear/red.png").is_file()
    # A whitish-red query matches red's snow variant best; the blue image still comes second, once.
    save_image(tmp_path / "q" / "rear" / "pink.png", fakes.solid((255, 170, 170)))
    results = localize(index_dir, [tmp_path / "q"], fakes.query_options(top_k=5, device=device))
    assert results.pairs["rear/pink.png"] == ["map/rear/red.png", "map/rear/blue.png"]
    assert results.appearances["rear/pink.png"][0] == "snow-0"


def _unit(values: np.ndarray) -> np.ndarray:
    return values / np.linalg.norm(values, axis=-1, keepdims=True)


def test_fused_translations_store_one_blended_vector_per_image(two_condition_dataset, tmp_path):
    dataset = _train_split(two_condition_dataset)
    options = fakes.index_options(translate_db=True, fuse_translations=0.25)
    index_dir = build_index(dataset, "test-mduit", tmp_path / "index", options)
    loaded = load_index(index_dir)
    assert loaded.table.appearances == ["original"] and loaded.table.num_vectors == loaded.table.num_images == 2
    assert loaded.manifest["translation"]["fused_weight"] == 0.25
    assert loaded.manifest["translation"]["appearances"] == ["night-0", "snow-0"]
    names = loaded.table.image_names
    _, originals = read_descriptors(index_dir / "descriptors.h5", names)
    _, night = read_descriptors(index_dir / "translations.h5", [f"night-0/{n}" for n in names])
    _, snow = read_descriptors(index_dir / "translations.h5", [f"snow-0/{n}" for n in names])
    # Hand-built: 3/4 of the original's unit vector plus 1/4 of the mean of its copies' unit vectors.
    expected = _unit(0.75 * _unit(originals) + 0.25 * (_unit(night) + _unit(snow)) / 2)
    assert loaded.vectors() == pytest.approx(expected.astype(np.float32), abs=1e-5)
    assert not np.allclose(loaded.vectors(), _unit(originals), atol=1e-3)   # the copies did count
    plain = load_index(build_index(dataset, "test-mduit", tmp_path / "plain", fakes.index_options()))
    zero = load_index(build_index(dataset, "test-mduit", tmp_path / "zero",
                                  fakes.index_options(translate_db=True, fuse_translations=0.0)))
    assert zero.vectors() == pytest.approx(plain.vectors(), abs=1e-5)


@pytest.mark.parametrize("fields, message", [({"fuse_translations": 0.5}, "needs --translate-db"),
                                             ({"translate_db": True, "fuse_translations": 1.5}, r"in \[0, 1\]")])
def test_fused_translations_refuse_bad_settings(fields, message):
    with pytest.raises(MduitError, match=message):
        fakes.index_options(**fields)


def test_cluster_appearances_from_unlabelled_test_queries_and_refusal_without_a_translator(
        two_condition_dataset, tmp_path):
    dataset = two_condition_dataset  # queries of the test split only: their appearance may still be used
    options = fakes.index_options(translate_db=True,
                                  appearances=AppearanceOptions(strategy="clusters", num_clusters=2))
    loaded = load_index(build_index(dataset, "test-mduit", tmp_path / "index", options))
    assert loaded.table.appearances == ["original", "cluster-0", "cluster-1"]
    with pytest.raises(MduitError, match="needs an MDUIT run"):
        build_index(dataset, "test-color", tmp_path / "other", fakes.index_options(translate_db=True))


# --- retrieval poses ----------------------------------------------------------------------------
def test_similarity_weights_and_mean_poses_hand_computed():
    assert similarity_weights(np.array([0.5, 0.25, -0.1]), alpha=1) == pytest.approx([2 / 3, 1 / 3, 0])
    assert similarity_weights(np.array([-0.2, 0.0]), alpha=8) == pytest.approx([0.5, 0.5])
    first, second = yaw_pose(0, (0, 0, 0)), yaw_pose(40, (4, 0, 0))
    assert retrieval_pose([first, second], [0.9, 0.8], "top1") is first
    mean = retrieval_pose([first, second], [0.9, 0.8], "mean")
    assert mean.center == pytest.approx([2, 0, 0])
    assert rotation_error_deg(mean, yaw_pose(20)) == pytest.approx(0, abs=1e-6)
    weighted = retrieval_pose([first, second], [0.75, 0.25], "weighted", alpha=1)
    assert weighted.center == pytest.approx([1, 0, 0])
    # Eigen-mean of quaternions at half-angles 0 and 20 deg with weights 3:1: the principal axis of
    # w1 q1 q1^T + w2 q2 q2^T lies at half the angle atan2(w2 sin 40, w1 + w2 cos 40), i.e. 9.686 deg of yaw.
    expected_yaw = np.degrees(np.arctan2(0.25 * np.sin(np.radians(40)), 0.75 + 0.25 * np.cos(np.radians(40))))
    assert rotation_error_deg(weighted, yaw_pose(expected_yaw)) == pytest.approx(0, abs=1e-6)
    with pytest.raises(MduitError, match="unknown pose method"):
        retrieval_pose([first], [1.0], "median")


def test_raw_pixels_end_to_end_on_the_robotcar_layout(tmp_path):
    index_dir = build_index(MINI, "raw-pixels:4x4", tmp_path / "index", fakes.index_options())
    results = localize(index_dir, [MINI], fakes.query_options(top_k=2, per_camera=True),
                       out=tmp_path / "out")
    assert len(results.poses) == 3
    assert all(len(ranked) == 2 for ranked in results.pairs.values())
    for name in ("pairs.txt", "poses.txt", "scores.csv", "queries.csv", "summary.json"):
        assert (tmp_path / "out" / name).is_file()
    assert isinstance(next(iter(results.poses.values())), Pose)


def test_query_list_files_are_read_like_every_text_file(tmp_path):
    """Issue 12 (phase A leftover): BOM and CRLF accepted, a bad byte named by file and line."""
    image_root = MINI / "images"
    listing = tmp_path / "list.txt"
    listing.write_bytes(b"\xef\xbb\xbfnight/rear/1418235223450115.png\r\n")
    (item,) = resolve_queries([listing], image_root=image_root)
    assert item.name == "night/rear/1418235223450115.jpg"
    listing.write_bytes(b"# queries\nnight/rear/14182\xff35223450115.png\n")
    with pytest.raises(FormatError, match=r"list.txt:2: expected UTF-8 text \(byte 0xff"):
        resolve_queries([listing], image_root=image_root)

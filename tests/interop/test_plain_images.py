"""Issue 13 item 6: index any folder of images or an image list (no poses) and query it for hloc
pairs; poses only where the map has them."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from mduit_loc.cli import main
from mduit_loc.datasets.image_collection import open_map, read_image_list
from mduit_loc.datasets.images import save_image
from mduit_loc.errors import MduitError
from mduit_loc.retrieval.faiss_index import load_index

from .hloc_rules import read_pairs_like_hloc

QUIET = ["--num-workers", "0", "--no-progress", "--device", "cpu"]
DB = ("day/a.png", "day/deeper/b.jpg", "night/c.png", "night/d.png", "e.png")


def _noisy(image: np.ndarray, rng) -> np.ndarray:
    return np.clip(image.astype(int) + rng.integers(-8, 9, image.shape), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> Path:
    """photos/: a map without poses, in domain folders and at the top; queries/: noisy copies."""
    root = tmp_path_factory.mktemp("plain")
    rng = np.random.default_rng(5)
    for index, name in enumerate(DB):
        image = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
        save_image(root / "photos" / name, image)
        if index < 3:
            save_image(root / "queries" / f"q{index}.png", _noisy(image, rng))
    save_image(root / "photos" / ".thumbs" / "hidden.png", np.zeros((8, 8, 3), np.uint8))
    (root / "photos" / "notes.txt").write_text("not an image")
    return root


def test_index_of_a_folder_then_query_gives_hloc_pairs_and_no_poses(folders, tmp_path, capsys):
    index = tmp_path / "idx"
    assert main(["index", "--db", str(folders / "photos"), "--model", "raw-pixels:4x4", "--out", str(index),
                 *QUIET]) == 0
    assert "the images have no poses" in capsys.readouterr().out
    loaded = load_index(index)
    assert loaded.table.image_names == sorted(DB) and loaded.table.num_posed == 0
    rows = (index / "database.tsv").read_text().splitlines()
    assert len(rows) == 1 + len(DB) and all(row.split("\t")[5:] == ["-"] * 7 for row in rows[1:])
    assert loaded.manifest["counts"]["images"] == len(DB)

    res = tmp_path / "res"
    assert main(["query", "--index", str(index), "--images", str(folders / "queries"), "--top-k", "3",
                 "--out", str(res), *QUIET]) == 0
    assert "0 of 3 queries localized" in capsys.readouterr().out
    pairs = read_pairs_like_hloc(res / "pairs.txt")
    assert len(pairs) == 9 and [db for q, db in pairs if q == "q1.png"][0] == "day/deeper/b.jpg"
    assert [pairs[3 * i][1] for i in range(3)] == ["day/a.png", "day/deeper/b.jpg", "night/c.png"]  # best first
    assert (res / "poses.txt").read_text() == ""  # only queries that got a pose
    summary = json.loads((res / "summary.json").read_text())
    assert summary["counts"]["without_pose"] == 3 and summary["counts"]["database_images_with_pose"] == 0
    assert summary["without_pose"] == {"pairs only: the retrieved database images have no pose": 3}
    statuses = {row["query"]: row["status"] for row in csv.DictReader(open(res / "queries.csv"))}
    assert set(statuses.values()) == {"pairs only: the retrieved database images have no pose"}
    scores = list(csv.DictReader(open(res / "scores.csv")))
    assert len(scores) == 9 and float(scores[0]["score"]) > float(scores[1]["score"])


def test_pose_methods_that_need_poses_are_refused_with_a_clear_message(folders, tmp_path, capsys):
    index = tmp_path / "idx"
    main(["index", "--db", str(folders / "photos"), "--model", "raw-pixels:4x4", "--out", str(index), *QUIET])
    capsys.readouterr()
    for method in ("pnp", "weighted"):
        code = main(["query", "--index", str(index), "--images", str(folders / "queries"), "--pose", method,
                     "--out", str(tmp_path / method), *QUIET])
        error = capsys.readouterr().err
        assert code == 2 and f"--pose {method} needs database poses" in error and "pairs" in error
    # --per-camera on images without known cameras: every query searches all of them
    assert main(["query", "--index", str(index), "--images", str(folders / "queries"), "--per-camera",
                 "--out", str(tmp_path / "cam"), *QUIET]) == 0


def test_an_image_list_indexes_the_listed_images(folders, tmp_path, capsys):
    listing = tmp_path / "db.txt"
    listing.write_text(f"# hloc-style list: intrinsics after the name are ignored\nnight/c.png SIMPLE_RADIAL 32 24 30 "
                       f"16 12 0\n{folders / 'photos' / 'e.png'}\n./day/a.png\n")
    assert main(["index", "--db", str(listing), "--image-root", str(folders / "photos"), "--model", "raw-pixels:4x4",
                 "--out", str(tmp_path / "idx"), *QUIET]) == 0
    assert load_index(tmp_path / "idx").table.image_names == ["night/c.png", "e.png", "day/a.png"]
    capsys.readouterr()
    assert main(["query", "--index", str(tmp_path / "idx"), "--images", str(folders / "queries"),
                 "--top-k", "1", "--out", str(tmp_path / "res"), *QUIET]) == 0
    assert read_pairs_like_hloc(tmp_path / "res" / "pairs.txt")[2] == ("q2.png", "night/c.png")


def test_image_lists_and_folders_are_checked(folders, tmp_path):
    listing = tmp_path / "db.txt"
    listing.write_text("day/a.png\nmissing.png\n")
    with pytest.raises(MduitError, match="1 of the 2 images"):
        read_image_list(listing, folders / "photos")
    listing.write_text("day/a.png\n../outside.png\n")
    with pytest.raises(MduitError, match="db.txt:2"):
        read_image_list(listing, folders / "photos")
    listing.write_text("day/a.png\nday/a.png\n")
    with pytest.raises(MduitError, match="each image once"):
        read_image_list(listing, folders / "photos")
    (tmp_path / "empty").mkdir()
    with pytest.raises(MduitError, match="no images found"):
        open_map(tmp_path / "empty")
    cameras = tmp_path / "rig"
    for camera in ("left", "rear"):
        save_image(cameras / "run1" / camera / "1.png", np.zeros((8, 8, 3), np.uint8))
    assert [(d.name, d.camera, d.pose) for d in open_map(cameras).database] == [
        ("run1/left/1.png", "left", None), ("run1/rear/1.png", "rear", None)]

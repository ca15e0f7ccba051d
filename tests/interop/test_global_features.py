"""Issue 13 item 5: global descriptors as kapture (its own API reads them back) and hloc (golden
layout, rules restated in hloc_rules) read them."""
from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from mduit_loc.cli import main
from mduit_loc.datasets.images import save_image

from .hloc_rules import read_global_features_like_hloc

DATA = Path(__file__).parent / "data"
QUIET = ["--num-workers", "0", "--no-progress", "--device", "cpu"]
NAMES = ("a.png", "night/rear/1418235223450115.png", "night/rear/1418235223950115.png", "sun/left/7.jpg")


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    """Random images in nested folders: names relative to the folder are what both layouts store."""
    root = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(3)
    for name in NAMES:
        save_image(root / name, rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    return root


def _extract(photos: Path, out: Path, *extra: str) -> int:
    return main(["extract", "--model", "raw-pixels:2x2", "--images", str(photos), "--out", str(out), *extra, *QUIET])


def _h5_layout(path: Path) -> list[str]:
    lines: list[str] = []
    with h5py.File(path, "r") as handle:
        handle.visititems(lambda name, obj: lines.append(
            f"/{name} {'group' if isinstance(obj, h5py.Group) else f'{obj.shape} {obj.dtype}'}"))
    return lines


def test_hloc_global_features_follow_the_golden_layout(photos, tmp_path):
    out = tmp_path / "global.h5"
    assert _extract(photos, out) == 0
    # one group per image, named by its path relative to the image root; slashes are nested groups
    assert _h5_layout(out) == (DATA / "global_features_h5_layout.txt").read_text().splitlines()
    by_hloc = read_global_features_like_hloc(out)
    assert sorted(by_hloc) == sorted(NAMES)
    assert all(v.shape == (12,) and abs(np.linalg.norm(v) - 1) < 1e-5 for v in by_hloc.values())
    assert _extract(photos, tmp_path / "half.h5", "--fp16") == 0
    assert {v.dtype for v in read_global_features_like_hloc(tmp_path / "half.h5").values()} == {np.dtype(np.float16)}


def test_kapture_reads_our_global_features_with_its_own_api(photos, tmp_path, capsys):
    kapture = pytest.importorskip("kapture", reason="kapture not installed (pip install -e '.[interop]')")
    from kapture.io.csv import global_features_from_dir, kapture_from_dir, kapture_to_dir
    from kapture.io.features import get_global_features_fullpath, image_global_features_from_file

    assert _extract(photos, tmp_path / "global.h5") == 0
    expected = read_global_features_like_hloc(tmp_path / "global.h5")
    # A kapture of the images, written by kapture itself: records name images relative to records_data.
    kapture_dir = tmp_path / "kapture"
    sensors = kapture.Sensors()
    sensors["cam"] = kapture.Camera(kapture.CameraType.SIMPLE_PINHOLE, [32, 24, 30, 16, 12])
    records = kapture.RecordsCamera()
    for timestamp, name in enumerate(NAMES):
        records[timestamp, "cam"] = name
    kapture_to_dir(str(kapture_dir), kapture.Kapture(sensors=sensors, records_camera=records))
    shutil.copytree(photos, kapture_dir / "sensors" / "records_data")
    assert _extract(kapture_dir / "sensors" / "records_data", kapture_dir, "--format", "kapture") == 0
    assert "reconstruction/global_features/raw-pixels: 4 descriptor(s) written" in capsys.readouterr().out
    features = global_features_from_dir("raw-pixels", str(kapture_dir), None)
    assert isinstance(features, kapture.GlobalFeatures)
    assert (features.type_name, features.dtype, features.dsize, features.metric_type) == (
        "raw-pixels", np.float32, 12, "L2")
    assert sorted(features) == sorted(NAMES)
    for name in NAMES:
        path = get_global_features_fullpath("raw-pixels", str(kapture_dir), name)
        vector = image_global_features_from_file(path, features.dtype, features.dsize)
        assert vector.shape == (1, 12)
        np.testing.assert_allclose(vector[0], expected[name], rtol=1e-6)
    # The whole kapture loads with its global features, named as its records name the images
    # (what kapture-localization's image pairing looks up).
    loaded = kapture_from_dir(str(kapture_dir))
    assert sorted(loaded.global_features["raw-pixels"]) == sorted(name for _, _, name in kapture.flatten(
        loaded.records_camera))


def test_kapture_export_resumes_names_its_features_and_refuses_another_model(photos, tmp_path, capsys):
    from mduit_loc.retrieval.kapture_features import feature_folder, read_features

    kapture_dir = tmp_path / "kapture"
    assert _extract(photos, kapture_dir, "--format", "kapture", "--feature-name", "mduit_test") == 0
    folder = feature_folder(kapture_dir, "mduit_test")
    assert (folder / "global_features.txt").read_text() == (
        "# kapture format: 1.1\n# name, dtype, dsize, metric_type\nmduit_test, float32, 12, L2\n")
    assert (folder / "night" / "rear" / "1418235223450115.png.gfeat").stat().st_size == 12 * 4
    names, vectors = read_features(folder)
    assert names == sorted(NAMES) and vectors.shape == (4, 12)
    capsys.readouterr()
    assert _extract(photos, kapture_dir, "--format", "kapture", "--feature-name", "mduit_test") == 0
    printed = capsys.readouterr().out
    assert "0 descriptor(s) written" in printed and "4 already present" in printed
    code = main(["extract", "--model", "raw-pixels:4x4", "--images", str(photos), "--out", str(kapture_dir),
                 "--format", "kapture", "--feature-name", "mduit_test", *QUIET])
    assert code == 2 and "another model" in capsys.readouterr().err
    assert _extract(photos, kapture_dir, "--format", "kapture", "--fp16") == 2
    assert "float16" in capsys.readouterr().err

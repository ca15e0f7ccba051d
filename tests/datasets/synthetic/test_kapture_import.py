"""kapture's own RobotCar Seasons importer reads a synthetic benchmark unchanged (issue 13 items 1, 4).

Part of the ``interop`` extra (``pip install -e '.[interop]'``): skipped when kapture is not installed.
"""
from __future__ import annotations

import numpy as np
import pytest

from mduit_loc.datasets.colmap_text import read_colmap_model
from mduit_loc.datasets.layout import canonical_name
from mduit_loc.datasets.robotcar import read_robotcar_seasons
from mduit_loc.datasets.robotcar_files import location_model_dir

from .conftest import LOCATIONS

kapture = pytest.importorskip("kapture", reason="kapture is not installed (pip install -e '.[interop]')")
kapture_csv = pytest.importorskip("kapture.io.csv", reason="kapture is not installed (pip install -e '.[interop]')")
importer = pytest.importorskip("tools.kapture_import_RobotCar_Seasons",
                               reason="kapture's import tools are not installed (pip install -e '.[interop]')")


def test_kapture_imports_every_location_with_poses_points_and_observations(synth_root, tmp_path):
    out = tmp_path / "kapture"
    importer.import_robotcar_seasons(str(synth_root), str(out))  # images are not copied (the default: skip)
    dataset = read_robotcar_seasons(synth_root)
    for location in range(1, LOCATIONS + 1):
        mapping = kapture_csv.kapture_from_dir(str(out / f"{location:02d}" / "mapping"))
        query = kapture_csv.kapture_from_dir(str(out / f"{location:02d}" / "query"))
        database = {d.name: d for d in dataset.database if d.location == location}
        train = {q.name for q in dataset.queries if q.location == location and q.split == "train"}
        test = {q.name for q in dataset.queries if q.location == location and q.split == "test"}
        records = {(ts, camera): name for ts, camera, name in kapture.flatten(mapping.records_camera)}
        assert set(records.values()) == set(database) | train
        assert {name for _, _, name in kapture.flatten(query.records_camera)} == test
        for (ts, camera), name in records.items():
            if name in database:  # kapture's trajectories are world -> device, as our cam_from_world
                assert name == f"overcast-reference/{camera}/{ts}.jpg"
                pose = mapping.trajectories[ts, camera]
                np.testing.assert_allclose(pose.r_raw, database[name].pose.qvec, atol=1e-7)
                np.testing.assert_allclose(pose.t_raw, database[name].pose.t, atol=1e-6)
        model = read_colmap_model(location_model_dir(synth_root, location))
        assert len(mapping.points3d) == len(model.points_xyz)
        observations = mapping.observations
        observed = [canonical_name(name) for key in observations.key_pairs() for name, _ in observations[key]]
        assert set(observed) == set(database)
        assert len(observed) > 2 * len(mapping.points3d)  # multi-view tracks survive the import

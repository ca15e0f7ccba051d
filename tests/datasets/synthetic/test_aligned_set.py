"""The aligned set written with each synthetic benchmark (issue 10 item 1): database poses rendered
under every condition, pixel-aligned with the database image."""
from __future__ import annotations

import json

import numpy as np
import pytest

from mduit_loc.cli import main
from mduit_loc.datasets.aligned import read_aligned_set
from mduit_loc.datasets.images import save_image
from mduit_loc.datasets.layout import ALL_CONDITIONS, CAMERAS, REFERENCE_CONDITION
from mduit_loc.datasets.robotcar import read_robotcar_seasons
from mduit_loc.datasets.synthetic import Town
from mduit_loc.datasets.synthetic.appearance import primary_rays
from mduit_loc.datasets.synthetic.generate import aligned_poses
from mduit_loc.datasets.synthetic.quads import Kind
from mduit_loc.errors import MduitError

from .conftest import LOCATIONS, SEED, small_preset


def test_every_database_pose_of_the_small_test_benchmark_is_aligned_under_every_condition(synth_root):
    aligned = read_aligned_set(synth_root)
    database = read_robotcar_seasons(synth_root).database_by_name()
    assert aligned.conditions == ALL_CONDITIONS
    # the test benchmark has 24 database images and the tiny preset asks for 24 poses: all of them
    assert sorted(pose.database_name for pose in aligned.poses) == sorted(database)
    assert json.loads((synth_root / "synth.json").read_text())["aligned_poses"] == len(aligned.poses) == 24
    for pose in aligned.poses:  # the reference condition's image is the database image itself
        reference = pose.images[REFERENCE_CONDITION].read_bytes()
        assert reference == (synth_root / "images" / pose.database_name).read_bytes()


def test_aligned_images_show_the_database_pose_under_each_condition(synth_root, synth_town, tmp_path):
    """Same geometry at every pixel (the depth the renderer sees), except where the season changes the
    foliage of trees; and the file is that rendering."""
    size = synth_town.preset.image_size
    aligned = read_aligned_set(synth_root)
    for pose in aligned.poses[::7]:
        frame = synth_town.frame(pose.database_name)
        reference = primary_rays(synth_town.scene(REFERENCE_CONDITION), frame, pose.camera, size,
                                 synth_town.preset.max_view_distance_m)
        for condition in aligned.conditions:
            rays = primary_rays(synth_town.scene(REFERENCE_CONDITION, condition), frame, pose.camera, size,
                                synth_town.preset.max_view_distance_m)
            trees = np.zeros(size * size, bool)
            for hits, view in ((reference.hits, reference.view), (rays.hits, rays.view)):
                trees |= (hits.index >= 0) & (view.kind[np.maximum(hits.index, 0)] == Kind.TREE)
            assert trees.mean() < 0.3
            np.testing.assert_array_equal(rays.hits.t[~trees], reference.hits.t[~trees])
            rendered = synth_town.render(REFERENCE_CONDITION, frame.index, pose.camera, appearance=condition)
            save_image(tmp_path / "rendered.jpg", rendered, quality=synth_town.preset.jpeg_quality)
            assert (tmp_path / "rendered.jpg").read_bytes() == pose.images[condition].read_bytes()


def test_pose_selection_spreads_over_locations_and_cameras():
    def chosen(count: int) -> list[tuple[int, str]]:
        return aligned_poses(Town.build(small_preset().with_overrides(aligned_poses=count), SEED))

    town = Town.build(small_preset(), SEED)
    location = {frame.index: frame.location for frame in town.traversals[REFERENCE_CONDITION].frames}
    for count in (3, 5, 8, 20):
        poses = chosen(count)
        assert len(set(poses)) == len(poses) == count
        assert poses == chosen(count)  # deterministic
        assert {camera for _, camera in poses} == set(CAMERAS)
        if count >= LOCATIONS:
            assert {location[index] for index, _ in poses} == set(range(1, LOCATIONS + 1))
    assert len(chosen(1000)) == len(location) * len(CAMERAS) and chosen(0) == []
    with pytest.raises(MduitError, match="aligned_poses must be >= 0"):
        chosen(-1)


def test_check_mentions_the_aligned_set(synth_root, capsys):
    assert main(["check", str(synth_root), "--sample", "5", "--num-workers", "0", "--no-progress"]) == 0
    assert "aligned set: 24 database poses x 10 conditions (aligned/)" in capsys.readouterr().out

"""Multi-view tracks (issue 13 item 4): the database images that see a point observe it, in the NVM
and in the per-location COLMAP models, so hloc's covisibility pairs and triangulation have work to do."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pycolmap

from mduit_loc.datasets import robotcar_files as files
from mduit_loc.datasets.map_files import MapFiles
from mduit_loc.datasets.nvm import read_nvm
from mduit_loc.datasets.robotcar import read_robotcar_seasons
from mduit_loc.datasets.structure import read_structure
from mduit_loc.datasets.synthetic.tracks import MAX_TRACK_LENGTH

from .conftest import LOCATIONS


def covisible_pairs(reconstruction: pycolmap.Reconstruction) -> dict[int, Counter]:
    """Per image id, the other images sharing points with it and how many: what hloc's
    ``pairs_from_covisibility`` ranks (it keeps the top ``num_matched`` of each image)."""
    pairs: dict[int, Counter] = {}
    for image_id, image in reconstruction.images.items():
        counter: Counter = Counter()
        for observation in image.points2D:
            if observation.has_point3D():
                for element in reconstruction.points3D[observation.point3D_id].track.elements:
                    if element.image_id != image_id:
                        counter[element.image_id] += 1
        pairs[image_id] = counter
    return pairs


def test_most_points_are_seen_by_several_database_images(synth_root):
    observations = read_nvm(synth_root / files.NVM_FILE).points.observations
    lengths = np.array([len(o) for o in observations])
    assert np.mean(lengths >= 2) > 0.7 and lengths.max() <= MAX_TRACK_LENGTH
    for o in observations[::50]:  # one observation per image and point; feature indices unique per image
        assert len(set(o[:, 0])) == len(o)
    features = Counter((int(i), int(f)) for o in observations for i, f, _, _ in o)
    assert max(features.values()) == 1


def test_location_models_hold_every_observation_and_give_covisible_pairs(synth_root):
    nvm_measurements = sum(len(o) for o in read_nvm(synth_root / files.NVM_FILE).points.observations)
    model_measurements = 0
    for location in range(1, LOCATIONS + 1):
        reconstruction = pycolmap.Reconstruction(str(files.location_model_dir(synth_root, location)))
        pairs = covisible_pairs(reconstruction)
        assert np.mean([len(counter) > 0 for counter in pairs.values()]) > 0.9
        errors = []
        for image in reconstruction.images.values():
            for observation in image.points2D:
                assert observation.has_point3D()
                xyz = reconstruction.points3D[observation.point3D_id].xyz
                errors.append(np.linalg.norm(image.project_point(xyz) - observation.xy))
                model_measurements += 1
        assert max(errors) < 1.0 and np.median(errors) < 1e-3
    assert model_measurements == nvm_measurements  # tracks stay inside a location: none is lost


def test_nvm_observations_reproject_within_a_pixel(synth_root):
    dataset = read_robotcar_seasons(synth_root)
    model = read_nvm(synth_root / files.NVM_FILE)
    worst = 0.0
    for xyz, observations in zip(model.points.xyz, model.points.observations):
        for image, _, u, v in observations:
            intrinsics = dataset.intrinsics[dataset.database[int(image)].camera]
            cam = model.cameras[int(image)].pose.transform(xyz[None])[0]
            pixel = np.array([intrinsics.fx * cam[0] / cam[2] + intrinsics.cx - intrinsics.width / 2.0,
                              intrinsics.fy * cam[1] / cam[2] + intrinsics.cy - intrinsics.height / 2.0])
            worst = max(worst, float(np.abs(pixel - [u, v]).max()))
    assert worst < 1e-3


def test_pnp_structure_reader_sees_the_tracked_observations(synth_root):
    """The structure PnP refinement lifts keypoints with: each image's own points and those it tracks."""
    dataset = read_robotcar_seasons(synth_root)
    structure = read_structure(MapFiles.of(dataset), dataset.intrinsics)
    assert structure is not None
    per_image = Counter()
    for observations in read_nvm(synth_root / files.NVM_FILE).points.observations:
        per_image.update(int(i) for i in observations[:, 0])
    for index, image in enumerate(dataset.database):
        observed = structure.observations[image.name]
        assert len(observed.pixels) == per_image[index]
        assert observed.cam_from_world is not None and observed.cam_from_world.allclose(image.pose, atol=1e-6)

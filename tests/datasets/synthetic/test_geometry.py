"""Pose/projection consistency: the written 3D points, depth, intrinsics and poses agree.

Everything is read back from the files (intrinsics files, NVM, COLMAP models, ground truth);
only the depth maps come from the renderer (``Town.depth``: the geometry the images show).
"""
from __future__ import annotations

import numpy as np
import pycolmap

from mduit_loc.datasets import robotcar_files as files
from mduit_loc.datasets.layout import REFERENCE_CONDITION, ImageName
from mduit_loc.datasets.nvm import read_nvm
from mduit_loc.datasets.robotcar import read_robotcar_seasons
from mduit_loc.datasets.types import Intrinsics
from mduit_loc.poses import Pose

from .conftest import LOCATIONS, SIZE


def project(points: np.ndarray, intrinsics: Intrinsics, pose: Pose) -> tuple[np.ndarray, np.ndarray]:
    """COLMAP pixel coordinates (N, 2), pixel centres at +0.5, and z-depth (N,)."""
    cam = pose.transform(points)
    z = cam[:, 2]
    safe = np.where(z > 1e-6, z, 1.0)
    return np.column_stack([intrinsics.fx * cam[:, 0] / safe + intrinsics.cx,
                            intrinsics.fy * cam[:, 1] / safe + intrinsics.cy]), z


def back_project(depth: np.ndarray, intrinsics: Intrinsics, pose: Pose) -> np.ndarray:
    """World points of every pixel with a finite depth (ray through the pixel centre)."""
    rows, cols = np.nonzero(np.isfinite(depth))
    z = depth[rows, cols].astype(np.float64)
    cam = np.column_stack([(cols + 0.5 - intrinsics.cx) / intrinsics.fx * z,
                           (rows + 0.5 - intrinsics.cy) / intrinsics.fy * z, z])
    return pose.inverse().transform(cam)


def depth_agreement(points: np.ndarray, intrinsics: Intrinsics, pose: Pose, depth: np.ndarray) -> float:
    """Share of the points seen by a camera whose depth matches the camera's depth map there
    (3 % + 10 cm: pixel quantisation on slanted surfaces; occluders make the rest)."""
    pixels, z = project(points, intrinsics, pose)
    inside = (z > 0.1) & (pixels[:, 0] >= 0) & (pixels[:, 0] < SIZE) & (pixels[:, 1] >= 0) & (pixels[:, 1] < SIZE)
    seen = depth[pixels[inside, 1].astype(int), pixels[inside, 0].astype(int)]
    return float(np.mean(np.abs(seen - z[inside]) < 0.03 * z[inside] + 0.1))


def depth_between_pixel_centres(depth: np.ndarray, pixel: np.ndarray, z: float, tolerance: float = 0.1) -> bool:
    """Whether depth ``z`` at sub-pixel ``pixel`` (COLMAP coordinates) is what the depth map shows there:
    within ``tolerance`` of the range of the 4 pixel centres around it (an occluder is nearer than all)."""
    col, row = (int(np.clip(np.floor(c - 0.5), 0, n - 2)) for c, n in zip(pixel, depth.shape[::-1]))
    around = depth[row:row + 2, col:col + 2]
    return bool(around.min() - tolerance <= z <= around.max() + tolerance)


def test_nvm_points_project_onto_their_observed_pixels_at_the_rendered_depth(synth_root, synth_town):
    dataset = read_robotcar_seasons(synth_root)
    model = read_nvm(synth_root / files.NVM_FILE)
    assert len(model.points.xyz) > 100 and len(model.points.observations) == len(model.points.xyz)
    names = [dataset.database[k].name for k in range(len(model.cameras))]
    depths = {}
    worst_pixel, worst_depth, tracked = 0.0, 0.0, []
    for xyz, observations in zip(model.points.xyz, model.points.observations):
        for k, (image, _, u, v) in enumerate(observations):
            name = names[int(image)]
            camera = ImageName.parse(name).camera
            intrinsics = dataset.intrinsics[camera]
            observed = np.array([u + SIZE / 2.0, v + SIZE / 2.0])  # NVM: relative to the image centre
            pixel, z = project(xyz[None], intrinsics, model.cameras[int(image)].pose)
            worst_pixel = max(worst_pixel, float(np.abs(pixel[0] - observed).max()))
            if name not in depths:
                depths[name] = synth_town.depth(REFERENCE_CONDITION, synth_town.frame(name).index, camera)
            if k == 0:  # the image the point was sampled from: the ray through this very pixel centre
                rendered = float(depths[name][int(observed[1]), int(observed[0])])
                worst_depth = max(worst_depth, abs(rendered - float(z[0])) / float(z[0]))
            else:  # another image that sees it (a track): between the depths of the 4 nearest pixel centres
                tracked.append(depth_between_pixel_centres(depths[name], observed, float(z[0])))
    assert worst_pixel < 1e-3   # well within a pixel: the points are exact back-projections or projections
    assert worst_depth < 1e-4
    assert len(tracked) > len(model.points.xyz) and np.mean(tracked) > 0.98


def test_location_model_keypoints_reproject_within_a_pixel(synth_root):
    for location in range(1, LOCATIONS + 1):
        reconstruction = pycolmap.Reconstruction(str(files.location_model_dir(synth_root, location)))
        errors = [np.linalg.norm(image.project_point(reconstruction.points3D[p.point3D_id].xyz) - p.xy)
                  for image in reconstruction.images.values() for p in image.points2D if p.has_point3D()]
        assert len(errors) > 100 and max(errors) < 1e-2


def test_depth_sampled_point_projects_back_to_its_pixel(synth_root, synth_town):
    dataset = read_robotcar_seasons(synth_root)
    truth = files.read_test_ground_truth(synth_root)
    name, pose = sorted(truth.items())[0]
    camera = ImageName.parse(name).camera
    depth = synth_town.depth(ImageName.parse(name).condition, synth_town.frame(name).index, camera)
    rows, cols = np.nonzero(np.isfinite(depth))
    assert len(rows) > SIZE * SIZE / 3  # mostly town, some sky
    points = back_project(depth, dataset.intrinsics[camera], pose)
    pixels, z = project(points, dataset.intrinsics[camera], pose)
    assert np.abs(pixels - np.column_stack([cols + 0.5, rows + 0.5])).max() < 1e-6
    # the same points seen from the database image nearest to the query land on matching depth
    database = [d for d in dataset.database if d.camera == camera]
    nearest = min(database, key=lambda d: np.linalg.norm(d.pose.center - pose.center))
    db_depth = synth_town.depth(REFERENCE_CONDITION, synth_town.frame(nearest.name).index, camera)
    assert depth_agreement(points, dataset.intrinsics[camera], nearest.pose, db_depth) > 0.6


def test_database_points_are_seen_at_their_depth_by_the_queries_ground_truth_pose(synth_root, synth_town):
    """Multi-view check of the written ground truth: points from a database image's depth,
    projected into a test query with its written pose, meet the query's rendered depth; moving
    the pose 1 m along the viewing axis breaks the agreement."""
    dataset = read_robotcar_seasons(synth_root)
    truth = files.read_test_ground_truth(synth_root)
    right, moved = [], []
    for name, pose in sorted(truth.items())[::3]:
        parsed = ImageName.parse(name)
        intrinsics = dataset.intrinsics[parsed.camera]
        database = [d for d in dataset.database if d.camera == parsed.camera]
        nearest = min(database, key=lambda d: np.linalg.norm(d.pose.center - pose.center))
        db_depth = synth_town.depth(REFERENCE_CONDITION, synth_town.frame(nearest.name).index, parsed.camera)
        points = back_project(db_depth, intrinsics, nearest.pose)
        query_depth = synth_town.depth(parsed.condition, synth_town.frame(name).index, parsed.camera)
        right.append(depth_agreement(points, intrinsics, pose, query_depth))
        moved.append(depth_agreement(points, intrinsics, Pose(pose.R, pose.t + np.array([0.0, 0.0, 1.0])), query_depth))
    assert len(right) >= 20
    # Not all: the query's own parked cars and traffic hide part of what the database image saw.
    assert np.median(right) > 0.7
    assert np.median(moved) < np.median(right) - 0.3


def test_neighbouring_database_images_see_the_same_geometry(synth_root, synth_town):
    dataset = read_robotcar_seasons(synth_root)
    for camera in ("left", "rear"):
        first, second = [d for d in dataset.database if d.camera == camera and d.location == 1][:2]
        intrinsics = dataset.intrinsics[camera]
        depth_1 = synth_town.depth(REFERENCE_CONDITION, synth_town.frame(first.name).index, camera)
        depth_2 = synth_town.depth(REFERENCE_CONDITION, synth_town.frame(second.name).index, camera)
        points = back_project(depth_1, intrinsics, first.pose)
        assert depth_agreement(points, intrinsics, second.pose, depth_2) > 0.8

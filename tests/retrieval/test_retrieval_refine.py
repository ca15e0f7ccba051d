"""6-DoF refinement: PnP on known correspondences, and SIFT + PnP on a rendered scene."""
from __future__ import annotations

import numpy as np
import pytest

from mduit_loc.datasets.colmap_text import ColmapImage, write_colmap_text
from mduit_loc.datasets.images import save_image
from mduit_loc.datasets.types import Intrinsics
from mduit_loc.errors import MduitError
from mduit_loc.poses import Pose, pose_errors, yaw_pose
from mduit_loc.retrieval.api import build_index, localize
from mduit_loc.retrieval.refine import PoseRefiner, RefineOptions, RetrievedImage, estimate_pose
from mduit_loc.retrieval.scene3d import ImageStructure, PointCloudScene, ViewGeometry, project_points

from . import retrieval_fakes as fakes
from . import retrieval_scene as scene

INTRINSICS = Intrinsics(250.0, 250.0, 160.0, 120.0, 320, 240)
DB_POSE = yaw_pose(0, (0.0, 0.0, 1.5))
QUERY_POSE = yaw_pose(5, (1.0, 0.5, 1.6))       # 1.1 m and 5 degrees from the database image


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wall")
    texture = scene.wall_texture()
    save_image(folder / "db.png", scene.render(texture, DB_POSE, INTRINSICS))
    save_image(folder / "query.png", scene.render(texture, QUERY_POSE, INTRINSICS))
    return folder, texture


def test_pnp_recovers_a_known_pose_from_correspondences_with_outliers():
    rng = np.random.default_rng(0)
    points = rng.uniform([-3, -2, 6], [3, 2, 12], (200, 3))
    truth = yaw_pose(30, (2.0, -1.0, 0.5))
    world = truth.inverse().transform(points)      # points given in camera coordinates -> world
    pixels = points[:, :2] / points[:, 2:] * 250.0 + [160.0, 120.0]
    pixels[:60] = rng.uniform([0, 0], [320, 240], (60, 2))  # 30 % outliers
    pose, inliers = estimate_pose(pixels, world, INTRINSICS, RefineOptions())
    assert inliers >= 140  # every true correspondence (a random outlier may land near its projection)
    assert pose_errors(pose, truth)[0] < 1e-6 and pose_errors(pose, truth)[1] < 1e-4


def test_projection_keeps_the_nearest_point_per_cell():
    camera = Pose.identity()
    points = np.array([[0.0, 0.0, 5.0], [0.0, 0.0, 2.0], [1.0, 0.0, 4.0], [0.0, 0.0, -3.0]])
    structure = project_points(points, camera, INTRINSICS, cell=2.0)
    assert structure.points.tolist() == [[0.0, 0.0, 2.0], [1.0, 0.0, 4.0]]  # hidden and behind dropped
    assert structure.pixels.tolist() == [[160.0, 120.0], [222.5, 120.0]]


def test_lifting_back_projects_the_keypoint_at_the_neighbours_depth_and_refuses_depth_edges():
    camera = ViewGeometry.pinhole(Pose.identity(), INTRINSICS)
    # Two structure pixels at depth 5: (160, 120) sees (0, 0, 5) and (170, 120) sees (0.2, 0, 5).
    structure = ImageStructure(np.array([[160.0, 120.0], [170.0, 120.0]]), np.array([[0, 0, 5.0], [0.2, 0, 5.0]]),
                               geometry=camera)
    found, points = structure.lift(np.array([[165.0, 125.0], [300.0, 200.0]]), radius=8.0)
    # The keypoint's own ray at depth 5: x = (165 - 160) / 250 * 5, y = (125 - 120) / 250 * 5.
    assert found.tolist() == [0] and points == pytest.approx(np.array([[0.1, 0.1, 5.0]]))
    snapped = ImageStructure(structure.pixels, structure.points).lift(np.array([[163.0, 120.0]]), radius=8.0)[1]
    assert snapped.tolist() == [[0, 0, 5.0]]  # no camera geometry: the nearest point itself
    edge = ImageStructure(np.array([[160.0, 120.0], [170.0, 120.0]]), np.array([[0, 0, 5.0], [0.4, 0, 10.0]]),
                          geometry=camera)
    assert edge.lift(np.array([[165.0, 120.0]]), radius=8.0)[0].size == 0  # depths 5 and 10 disagree
    assert edge.default_radius() == pytest.approx(15.0)  # 1.5 x the 10-px spacing


def test_default_radius_is_the_structure_spacing_even_with_clustered_pixels():
    """Multi-view tracks add nearly coincident pixels to a grid: the radius follows the mean spacing
    (10 px / sqrt(3) for three pixels per grid point), not the ~1 px between the pixels of a cluster."""
    grid = np.stack(np.meshgrid(np.arange(5.0, 320, 10), np.arange(5.0, 240, 10)), axis=-1).reshape(-1, 2)
    clustered = np.concatenate([grid, grid + 0.7, grid - [0.5, 0.9]])
    assert ImageStructure(grid, np.zeros((len(grid), 3))).default_radius() == pytest.approx(15.0)
    radius = ImageStructure(clustered, np.zeros((len(clustered), 3))).default_radius()
    assert radius == pytest.approx(15.0 / np.sqrt(3), rel=0.05)


def test_lifting_through_sparse_structure_is_exact_on_a_plane_where_snapping_is_not():
    pose = yaw_pose(25, (0.0, 0.0, 1.5))          # oblique view: depth varies across the wall
    structure = PointCloudScene(scene.wall_points(0.4)).structure("db", pose, INTRINSICS)
    rng = np.random.default_rng(0)
    keypoints = rng.uniform([120, 40], [280, 200], (200, 2))  # where the wall has points (x > 105 px)
    found, points = structure.lift(keypoints)
    assert len(found) == 200
    # The true point of a keypoint: where its ray meets the wall x = WALL_X.
    rays = np.c_[(keypoints[found] - [160.0, 120.0]) / 250.0, np.ones(len(found))] @ pose.R
    truth = pose.center + rays * ((scene.WALL_X - pose.center[0]) / rays[:, :1])
    assert np.linalg.norm(points - truth, axis=1).max() < 1e-6
    snapped = ImageStructure(structure.pixels, structure.points).lift(keypoints[found], structure.default_radius())[1]
    assert np.median(np.linalg.norm(snapped - truth, axis=1)) > 0.05


def test_ransac_threshold_scales_with_the_image_unless_given():
    assert RefineOptions().ransac_threshold(INTRINSICS) == pytest.approx(3.2)
    assert RefineOptions().ransac_threshold(Intrinsics(40, 40, 32, 32, 64, 64)) == 1.0
    assert RefineOptions(ransac_max_error_px=12).ransac_threshold(INTRINSICS) == 12


def test_sift_pnp_refinement_beats_the_retrieval_pose_on_a_rendered_scene(rendered):
    folder, _ = rendered
    refiner = PoseRefiner(PointCloudScene(scene.wall_points()), RefineOptions())
    retrieved = [RetrievedImage("db", folder / "db.png", DB_POSE, INTRINSICS)]
    result = refiner.refine(folder / "query.png", INTRINSICS, retrieved, fallback=DB_POSE)
    assert result.refined and result.status == "ok" and result.num_inliers >= 100
    retrieval_position, retrieval_rotation = pose_errors(DB_POSE, QUERY_POSE)
    position, rotation = pose_errors(result.pose, QUERY_POSE)
    assert retrieval_position > 1.0 and retrieval_rotation > 4.9
    assert position < 0.1 and rotation < 0.5


def test_refinement_falls_back_to_the_retrieval_pose(rendered):
    folder, _ = rendered
    retrieved = [RetrievedImage("db", folder / "db.png", DB_POSE, INTRINSICS)]
    no_structure = PoseRefiner(None).refine(folder / "query.png", INTRINSICS, retrieved, DB_POSE)
    assert not no_structure.refined and no_structure.pose is DB_POSE and "no 3D structure" in no_structure.status
    empty = PoseRefiner(PointCloudScene(np.zeros((0, 3)))).refine(folder / "query.png", INTRINSICS, retrieved, DB_POSE)
    assert not empty.refined and empty.pose is DB_POSE and empty.status == "too few 2D-3D correspondences"


def test_query_command_pnp_on_a_colmap_map_with_a_plain_query_folder(rendered, tmp_path):
    _, texture = rendered
    small = Intrinsics(190.0, 190.0, 120.0, 90.0, 240, 180)
    db_poses = {f"db/{i}.png": yaw_pose(yaw, (0.0, y, 1.5))
                for i, (yaw, y) in enumerate([(-8, -2.0), (0, 0.0), (8, 2.0)])}
    cloud = scene.wall_points(0.25)  # sparse: ~5 px between structure pixels, as in the synthetic benchmark
    images = []
    for name, pose in db_poses.items():
        save_image(tmp_path / "images" / name, scene.render(texture, pose, small))
        visible = project_points(cloud, pose, small, cell=2.0)
        images.append(ColmapImage(name, pose, 1, visible.pixels, visible.point_ids + 1))  # COLMAP ids from 1
    write_colmap_text(tmp_path / "sparse", {1: small}, images, cloud)
    query_pose = yaw_pose(3, (0.8, 0.6, 1.4))
    save_image(tmp_path / "queries" / "q.png", scene.render(texture, query_pose, small))
    index_dir = build_index(tmp_path / "sparse", "raw-pixels:4x4", tmp_path / "index",
                            fakes.index_options(image_root=str(tmp_path / "images")))
    with pytest.raises(MduitError, match="pass --data .*sparse to use that map"):  # a path the index records
        localize(index_dir, [tmp_path / "queries"], fakes.query_options(top_k=2, pose="pnp"), out=tmp_path / "out")
    options = fakes.query_options(top_k=2, pose="pnp", data=str(tmp_path / "sparse"),
                                  image_root=str(tmp_path / "images"))
    results = localize(index_dir, [tmp_path / "queries"], options, out=tmp_path / "out")
    refinement = results.refinement["q.png"]
    assert refinement.refined, refinement.status
    top1 = dict(zip(["db/0.png", "db/1.png", "db/2.png"], db_poses.values()))[results.pairs["q.png"][0]]
    retrieval_position, retrieval_rotation = pose_errors(top1, query_pose)
    position, rotation = pose_errors(results.poses["q.png"], query_pose)
    assert retrieval_position > 0.8 and retrieval_rotation > 2.9
    assert position < 0.15 and rotation < 0.5, (position, rotation)
    assert "pnp" in (tmp_path / "out" / "queries.csv").read_text()



def test_the_query_size_of_an_oversized_image_is_a_one_line_error(tmp_path, monkeypatch):
    """Issue 12 (phase A leftover): PIL's decompression-bomb limit, through the image helpers."""
    from PIL import Image

    from mduit_loc.errors import FormatError
    from mduit_loc.retrieval.refine import load_image_size

    path = tmp_path / "q.png"
    save_image(path, np.zeros((30, 40, 3), np.uint8))
    assert load_image_size(path) == (30, 40)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(FormatError, match=r"q.png: expected an image of at most 100 pixels"):
        load_image_size(path)
    path.write_bytes(b"not an image")
    with pytest.raises(FormatError, match=r"q.png: expected a readable image"):
        load_image_size(path)

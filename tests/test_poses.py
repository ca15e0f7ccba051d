import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mduit_loc.poses import (
    Pose,
    mean_pose,
    position_error,
    qvec_to_rotmat,
    rotation_error_deg,
    rotmat_to_qvec,
    submission_line,
    yaw_pose,
)


def test_yaw_110_vs_125_is_15_degrees():
    assert rotation_error_deg(yaw_pose(110), yaw_pose(125)) == pytest.approx(15.0, abs=1e-9)


def test_rotation_error_is_sign_invariant():
    pose = Pose.from_qvec([0.5, 0.5, -0.5, 0.5], [1, 2, 3])
    flipped = Pose.from_qvec([-0.5, -0.5, 0.5, -0.5], [1, 2, 3])
    assert rotation_error_deg(pose, flipped) == pytest.approx(0.0, abs=1e-6)


def test_rotation_error_180_degrees_is_clipped_not_nan():
    a = Pose(np.diag([1.0, -1.0, -1.0]), np.zeros(3))
    assert rotation_error_deg(a, Pose.identity()) == pytest.approx(180.0)


def test_position_error_uses_camera_centres_not_translations():
    # Same centre (1, 0, 0) seen with different rotations: translations differ, centres do not.
    a, b = yaw_pose(0, [1, 0, 0]), yaw_pose(90, [1, 0, 0])
    assert not np.allclose(a.t, b.t)
    assert position_error(a, b) == pytest.approx(0.0, abs=1e-12)
    assert position_error(yaw_pose(0, [0, 0, 0]), yaw_pose(0, [3, 4, 0])) == pytest.approx(5.0)


def test_centre_is_minus_rt_t():
    pose = Pose.from_qvec([0.9, 0.1, -0.3, 0.2], [1.0, -2.0, 0.5])
    assert np.allclose(pose.center, -pose.R.T @ pose.t)
    assert np.allclose(pose.transform(pose.center[None]), 0.0)


def test_from_world_from_cam_matrix_hand_computed():
    # camera->world: rotation 90 deg about z, camera at (10, 20, 30)
    world_from_cam = np.array([[0, -1, 0, 10], [1, 0, 0, 20], [0, 0, 1, 30], [0, 0, 0, 1.0]])
    pose = Pose.from_world_from_cam_matrix(world_from_cam)
    assert np.allclose(pose.center, [10, 20, 30])
    assert np.allclose(pose.R, world_from_cam[:3, :3].T)
    assert np.allclose(pose.world_from_cam_matrix(), world_from_cam)


def test_from_nvm_uses_centre():
    qvec = [np.cos(np.pi / 4), 0, 0, np.sin(np.pi / 4)]
    pose = Pose.from_qvec_center(qvec, [11, 20, 30])
    assert np.allclose(pose.center, [11, 20, 30])
    assert np.allclose(pose.t, -pose.R @ np.array([11, 20, 30]))


def test_rigid3d_round_trip_reorders_quaternion():
    import pycolmap

    pose = Pose.from_qvec([0.8, 0.2, -0.4, 0.4], [1, 2, 3])
    rigid = pose.to_rigid3d()
    w, x, y, z = pose.qvec
    assert np.allclose(rigid.rotation.quat, [x, y, z, w])
    assert Pose.from_rigid3d(rigid).allclose(pose)
    assert isinstance(rigid, pycolmap.Rigid3d)


def test_submission_line():
    line = submission_line("rear/123.jpg", Pose.from_qvec([1, 0, 0, 0], [1.5, -2, 0.25]))
    assert line == "rear/123.jpg 1 0 0 0 1.5 -2 0.25"


def test_non_rotation_rejected():
    with pytest.raises(ValueError, match="not a rotation"):
        Pose(np.diag([1.0, 1.0, -1.0]), np.zeros(3))
    with pytest.raises(ValueError, match="last row"):
        Pose.from_world_from_cam_matrix(np.ones((4, 4)))


def test_mean_pose_of_symmetric_headings():
    mean = mean_pose([yaw_pose(80, [0, 0, 0]), yaw_pose(100, [2, 0, 0])])
    assert rotation_error_deg(mean, yaw_pose(90)) == pytest.approx(0.0, abs=1e-6)
    assert np.allclose(mean.center, [1, 0, 0])
    weighted = mean_pose([yaw_pose(0, [0, 0, 0]), yaw_pose(0, [4, 0, 0])], weights=[3, 1])
    assert np.allclose(weighted.center, [1, 0, 0])


quaternions = st.lists(st.floats(-1, 1, allow_nan=False), min_size=4, max_size=4).filter(
    lambda q: np.linalg.norm(q) > 1e-3)


@settings(max_examples=50, deadline=None)
@given(quaternions)
def test_quaternion_round_trip(q):
    q = np.array(q) / np.linalg.norm(q)
    back = rotmat_to_qvec(qvec_to_rotmat(q))
    assert np.allclose(back, q) or np.allclose(back, -q)
    assert back[0] >= 0

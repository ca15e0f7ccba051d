"""One pose type for the whole toolkit, in the COLMAP convention.

``Pose`` is ``cam_from_world``: a world point ``x_w`` maps to camera coordinates
``x_c = R @ x_w + t``; the camera centre is ``c = -R.T @ t``. Quaternions are written
``qw qx qy qz`` (the order COLMAP text files, NVM and benchmark submissions use);
pycolmap's ``Rotation3d.quat`` is ``x y z w`` and is reordered here, nowhere else.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import quaternion as npq  # numpy-quaternion

_ORTHO_TOL = 1e-3


def _as_rotation(matrix, what: str = "rotation") -> np.ndarray:
    rotation = np.asarray(matrix, dtype=np.float64)
    if rotation.shape != (3, 3) or not np.all(np.isfinite(rotation)):
        raise ValueError(f"{what}: expected a finite 3x3 matrix, got shape {rotation.shape}")
    if not is_rotation_matrix(rotation):
        raise ValueError(f"{what}: not a rotation matrix (R^T R != I or det(R) != +1)")
    return rotation


def is_rotation_matrix(matrix: np.ndarray, tol: float = _ORTHO_TOL) -> bool:
    matrix = np.asarray(matrix, dtype=np.float64)
    return bool(
        matrix.shape == (3, 3)
        and np.allclose(matrix.T @ matrix, np.eye(3), atol=tol)
        and abs(np.linalg.det(matrix) - 1.0) < tol
    )


def qvec_to_rotmat(qvec) -> np.ndarray:
    """``qw qx qy qz`` (any norm > 0) to a 3x3 rotation matrix."""
    qvec = np.asarray(qvec, dtype=np.float64)
    norm = np.linalg.norm(qvec)
    if qvec.shape != (4,) or not np.isfinite(norm) or norm < 1e-12:
        raise ValueError(f"quaternion: expected 4 finite values with non-zero norm, got {qvec.tolist()}")
    return npq.as_rotation_matrix(npq.quaternion(*(qvec / norm)))


def rotmat_to_qvec(rotation: np.ndarray) -> np.ndarray:
    """3x3 rotation to ``qw qx qy qz`` with ``qw >= 0`` (the sign is a convention, not data)."""
    qvec = npq.as_float_array(npq.from_rotation_matrix(np.asarray(rotation, dtype=np.float64)))
    qvec = qvec / np.linalg.norm(qvec)
    qvec = -qvec if qvec[0] < 0 else qvec
    return qvec + 0.0  # -0.0 -> 0.0, so files never show "-0" for an exact zero


@dataclass(frozen=True, eq=False)
class Pose:
    """cam_from_world rigid transform: ``x_cam = R x_world + t``."""

    R: np.ndarray
    t: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "R", _as_rotation(self.R))
        translation = np.asarray(self.t, dtype=np.float64).reshape(-1)
        if translation.shape != (3,) or not np.all(np.isfinite(translation)):
            raise ValueError(f"translation: expected 3 finite values, got {np.asarray(self.t).tolist()}")
        object.__setattr__(self, "t", translation)

    # --- constructors -------------------------------------------------------------------
    @classmethod
    def identity(cls) -> "Pose":
        return cls(np.eye(3), np.zeros(3))

    @classmethod
    def from_qvec(cls, qvec, t) -> "Pose":
        """From a cam_from_world quaternion ``qw qx qy qz`` and translation (COLMAP, submissions)."""
        return cls(qvec_to_rotmat(qvec), t)

    @classmethod
    def from_qvec_center(cls, qvec, center) -> "Pose":
        """From a world→camera quaternion and a camera centre (the NVM camera convention)."""
        rotation = qvec_to_rotmat(qvec)
        return cls(rotation, -rotation @ np.asarray(center, dtype=np.float64))

    @classmethod
    def from_world_from_cam_matrix(cls, matrix) -> "Pose":
        """From a camera→world 4x4 ``[R_wc c; 0 1]`` (e.g. robotcar_v2_train.txt)."""
        matrix = np.asarray(matrix, dtype=np.float64)
        if matrix.shape != (4, 4):
            raise ValueError(f"expected a 4x4 matrix, got shape {matrix.shape}")
        if not np.allclose(matrix[3], [0, 0, 0, 1], atol=1e-6):
            raise ValueError(f"last row of a rigid 4x4 must be 0 0 0 1, got {matrix[3].tolist()}")
        world_from_cam_R = _as_rotation(matrix[:3, :3], "camera-to-world rotation")
        center = matrix[:3, 3]
        return cls(world_from_cam_R.T, -world_from_cam_R.T @ center)

    @classmethod
    def from_cam_from_world_matrix(cls, matrix) -> "Pose":
        matrix = np.asarray(matrix, dtype=np.float64)
        if matrix.shape not in ((4, 4), (3, 4)):
            raise ValueError(f"expected a 3x4 or 4x4 matrix, got shape {matrix.shape}")
        return cls(matrix[:3, :3], matrix[:3, 3])

    @classmethod
    def from_rigid3d(cls, rigid) -> "Pose":
        """From a pycolmap ``Rigid3d`` (its quaternion is ``x y z w``)."""
        x, y, z, w = np.asarray(rigid.rotation.quat, dtype=np.float64)
        return cls.from_qvec([w, x, y, z], np.asarray(rigid.translation))

    # --- views --------------------------------------------------------------------------
    @property
    def qvec(self) -> np.ndarray:
        """cam_from_world quaternion ``qw qx qy qz`` with ``qw >= 0``."""
        return rotmat_to_qvec(self.R)

    @property
    def center(self) -> np.ndarray:
        """Camera centre in world coordinates, ``-R^T t``."""
        return -self.R.T @ self.t

    def matrix(self) -> np.ndarray:
        """cam_from_world as a 4x4."""
        out = np.eye(4)
        out[:3, :3] = self.R
        out[:3, 3] = self.t
        return out

    def world_from_cam_matrix(self) -> np.ndarray:
        return self.inverse().matrix()

    def to_rigid3d(self):
        import pycolmap

        w, x, y, z = self.qvec
        return pycolmap.Rigid3d(pycolmap.Rotation3d(np.array([x, y, z, w])), self.t.copy())

    # --- algebra ------------------------------------------------------------------------
    def inverse(self) -> "Pose":
        return Pose(self.R.T, -self.R.T @ self.t)

    def __matmul__(self, other: "Pose") -> "Pose":
        """Composition: ``(a @ b)(x) = a(b(x))``, e.g. ``cam_from_car @ car_from_world``."""
        return Pose(self.R @ other.R, self.R @ other.t + self.t)

    def transform(self, points_world: np.ndarray) -> np.ndarray:
        """Map (N, 3) world points into camera coordinates."""
        return np.asarray(points_world, dtype=np.float64) @ self.R.T + self.t

    def allclose(self, other: "Pose", atol: float = 1e-6) -> bool:
        return bool(np.allclose(self.R, other.R, atol=atol) and np.allclose(self.t, other.t, atol=atol))

    def __repr__(self) -> str:
        q = " ".join(f"{v:.6f}" for v in self.qvec)
        t = " ".join(f"{v:.4f}" for v in self.t)
        return f"Pose(q=[{q}], t=[{t}])"


# --- errors -------------------------------------------------------------------------------
def position_error(estimate: Pose, ground_truth: Pose) -> float:
    """Distance between the camera centres, in the map's units (metres on RobotCar)."""
    return float(np.linalg.norm(estimate.center - ground_truth.center))


def rotation_error_deg(estimate: Pose, ground_truth: Pose) -> float:
    """Angle of ``R_gt^T R_est`` in degrees: ``arccos((trace - 1) / 2)``, clipped to [-1, 1].

    Computed from matrices, so it cannot depend on the q / -q sign of a quaternion.
    """
    cos_angle = (np.trace(ground_truth.R.T @ estimate.R) - 1.0) / 2.0
    return float(np.degrees(np.arccos(np.clip(cos_angle, -1.0, 1.0))))


def pose_errors(estimate: Pose, ground_truth: Pose) -> tuple[float, float]:
    """(position error, rotation error in degrees)."""
    return position_error(estimate, ground_truth), rotation_error_deg(estimate, ground_truth)


# --- averaging ----------------------------------------------------------------------------
def mean_rotation(rotations: list[np.ndarray], weights=None) -> np.ndarray:
    """Weighted quaternion mean: eigenvector of ``sum w_i q_i q_i^T`` (sign-invariant)."""
    quats = np.stack([rotmat_to_qvec(r) for r in rotations])
    weights = np.ones(len(quats)) if weights is None else np.asarray(weights, dtype=np.float64)
    scatter = (quats * weights[:, None]).T @ quats
    _, vectors = np.linalg.eigh(scatter)
    return qvec_to_rotmat(vectors[:, -1])


def mean_pose(poses: list[Pose], weights=None) -> Pose:
    """Average camera centres (weighted) and rotations (quaternion mean); returns cam_from_world."""
    if not poses:
        raise ValueError("mean_pose needs at least one pose")
    weights = np.ones(len(poses)) if weights is None else np.asarray(weights, dtype=np.float64)
    if np.any(weights < 0) or weights.sum() <= 0:
        raise ValueError("mean_pose weights must be non-negative with a positive sum")
    weights = weights / weights.sum()
    center = (np.stack([p.center for p in poses]) * weights[:, None]).sum(axis=0)
    rotation = mean_rotation([p.R for p in poses], weights)
    return Pose(rotation, -rotation @ center)


# --- text ---------------------------------------------------------------------------------
def format_pose(pose: Pose, precision: int = 10) -> str:
    """``qw qx qy qz tx ty tz`` of a cam_from_world pose."""
    # Adding 0.0 turns -0.0 into 0.0 so identical poses always print identically.
    return " ".join(f"{float(v) + 0.0:.{precision}g}" for v in (*pose.qvec, *pose.t))


def submission_line(name: str, pose: Pose) -> str:
    """One benchmark submission line: ``name qw qx qy qz tx ty tz`` (world→camera)."""
    return f"{name} {format_pose(pose)}"


def yaw_pose(yaw_deg: float, center=(0.0, 0.0, 0.0)) -> Pose:
    """A camera looking along the world x-y plane with heading ``yaw_deg`` (for tests and synthesis).

    Camera axes (x right, y down, z forward); the world is z-up.
    """
    yaw = np.radians(yaw_deg)
    forward = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    down = np.array([0.0, 0.0, -1.0])
    right = np.cross(down, forward)
    rotation = np.stack([right, down, forward])  # rows: camera axes in world coordinates
    return Pose(rotation, -rotation @ np.asarray(center, dtype=np.float64))

"""Query poses from retrieval ("pose approximation", as in kapture-localization).

- ``top1`` (default): the pose of the best database image — the most accurate choice on RobotCar
  Seasons (averaging the top 5 lowered NetVLAD's recall there, see FORMATS.md);
- ``mean``: equal weights over the top k (kapture's EWB);
- ``weighted``: weights ``w_i = max(s_i, 0)^alpha`` from the cosine similarities (kapture's CSI,
  alpha = 8).
Camera centres are averaged with the weights; rotations with the weighted quaternion mean
(eigenvector of ``sum w_i q_i q_i^T``, sign-invariant), both from ``mduit_loc.poses.mean_pose``.
Only retrieved images that have a pose count: against a map without poses (a plain image folder)
a query gets ranked pairs and no pose.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from mduit_loc.errors import MduitError
from mduit_loc.poses import Pose, mean_pose

RETRIEVAL_METHODS = ("top1", "mean", "weighted")
POSE_METHODS = (*RETRIEVAL_METHODS, "pnp")
DEFAULT_ALPHA = 8.0


def similarity_weights(scores: np.ndarray, alpha: float = DEFAULT_ALPHA) -> np.ndarray:
    """``max(s, 0)^alpha``, normalised; equal weights when every score is <= 0."""
    weights = np.clip(np.asarray(scores, np.float64), 0.0, None) ** alpha
    total = weights.sum()
    if not np.isfinite(total) or total <= 0:
        return np.full(len(weights), 1.0 / max(1, len(weights)))
    return weights / total


def retrieval_pose(poses: Sequence[Pose], scores: Sequence[float] | np.ndarray, method: str = "top1",
                   alpha: float = DEFAULT_ALPHA) -> Pose:
    """Pose of a query from its ranked database poses (best first) and their similarities."""
    if not poses:
        raise ValueError("retrieval_pose needs at least one retrieved database image")
    if method == "top1":
        return poses[0]
    if method == "mean":
        return mean_pose(list(poses))
    if method == "weighted":
        return mean_pose(list(poses), similarity_weights(np.asarray(scores), alpha))
    raise MduitError(f"unknown pose method {method!r}; expected one of {', '.join(RETRIEVAL_METHODS)}")


def estimate_poses(image_ids: np.ndarray, scores: np.ndarray, table, method: str = "top1",
                   pose_top_k: int | None = None, alpha: float = DEFAULT_ALPHA) -> dict[int, Pose]:
    """Query row -> pose for every row with at least one result that has a pose (``image_ids`` -1 padded)."""
    if method not in RETRIEVAL_METHODS:
        raise MduitError(f"unknown pose method {method!r}; expected one of {', '.join(RETRIEVAL_METHODS)}")
    width = image_ids.shape[1] if pose_top_k is None else min(pose_top_k, image_ids.shape[1])
    poses: dict[int, Pose] = {}
    for row in range(len(image_ids)):
        ids, row_scores = image_ids[row, :width], scores[row, :width]
        keep = np.array([i >= 0 and table.has_pose(int(i)) for i in ids], bool)
        if keep.any():
            poses[row] = retrieval_pose([table.pose(int(i)) for i in ids[keep]], row_scores[keep], method, alpha)
    return poses

"""Which training images show the same place: the supervision of the contrastive module (paper §3.1).

The paper builds the contrastive positives and negatives from the pose annotation: images within 7 m
and 8 degrees of each other show the same place (positives), the others are negatives. Datasets
without metric poses can still say which images show one place:
- a folder per domain whose files share names across domains (Nordland: the same file name is the
  same place in summer and in winter) gives a place label per image;
- sequence data (frames numbered along one route) gives a frame number per image, and frames within
  ``sequence_tolerance`` of each other show the same place.

``PlaceTable`` answers, for a block of rows, "same place as" (positives) and "may be a negative"
(labelled, and not the same place) against all images, in bounded memory (callers pass row blocks).
An image without any label (a test query, an unposed image) is never a positive and never a
negative of a labelled image: nothing says where it was taken.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from mduit_loc.poses import Pose

_NUMBER = re.compile(r"(\d+)(?!.*\d)")  # the last number in a name: images-00010.png -> 10


@dataclass
class PlaceTable:
    """Poses (centres (N, 3), rotations (N, 3, 3) cam_from_world, ``known`` (N,)) and place labels
    (``labels`` (N,) int64 ids, -1 none; ``sequence`` (N,) int64 frame numbers, -1 none)."""

    centers: torch.Tensor
    rotations: torch.Tensor
    known: torch.Tensor
    labels: torch.Tensor
    sequence: torch.Tensor
    max_distance_m: float = 7.0
    max_angle_deg: float = 8.0
    sequence_tolerance: int = 0

    @classmethod
    def build(cls, poses: Sequence[Pose | None], places: Sequence[str | None] | None = None, *,
              max_distance_m: float = 7.0, max_angle_deg: float = 8.0,
              sequence_tolerance: int | None = None) -> "PlaceTable":
        """From per-image poses and optional place labels. ``sequence_tolerance`` (frame-number units):
        None compares place labels exactly; an integer reads the last number of each label as a frame
        number and makes frames within the tolerance the same place."""
        count = len(poses)
        centers, rotations = np.zeros((count, 3)), np.tile(np.eye(3), (count, 1, 1))
        known = np.zeros(count, dtype=bool)
        for index, pose in enumerate(poses):
            if pose is not None:
                centers[index], rotations[index], known[index] = pose.center, pose.R, True
        places = list(places) if places is not None else [None] * count
        labels, sequence = np.full(count, -1, np.int64), np.full(count, -1, np.int64)
        ids: dict[str, int] = {}
        for index, place in enumerate(places):
            if place is None:
                continue
            labels[index] = ids.setdefault(place, len(ids))
            match = _NUMBER.search(place) if sequence_tolerance is not None else None
            if match is not None:
                sequence[index] = int(match.group(1))
        return cls(torch.from_numpy(centers), torch.from_numpy(rotations), torch.from_numpy(known),
                   torch.from_numpy(labels), torch.from_numpy(sequence), float(max_distance_m), float(max_angle_deg),
                   int(sequence_tolerance or 0) if sequence_tolerance is not None else -1)

    def __len__(self) -> int:
        return len(self.known)

    @property
    def labelled(self) -> torch.Tensor:
        """(N,) True where the image has a pose or a place label."""
        return self.known | (self.labels >= 0)

    @property
    def any_labelled(self) -> bool:
        return bool(self.labelled.any())

    def same_place(self, rows: torch.Tensor, columns: torch.Tensor | None = None) -> torch.Tensor:
        """(len(rows), len(columns)) True where both images are labelled and show the same place
        (an image is the same place as itself)."""
        columns = torch.arange(len(self)) if columns is None else columns
        near = self._near_pose(rows, columns)
        if self.sequence_tolerance >= 0:
            seq_a, seq_b = self.sequence[rows][:, None], self.sequence[columns][None, :]
            near |= (seq_a >= 0) & (seq_b >= 0) & ((seq_a - seq_b).abs() <= self.sequence_tolerance)
        else:
            lab_a, lab_b = self.labels[rows][:, None], self.labels[columns][None, :]
            near |= (lab_a >= 0) & (lab_a == lab_b)
        return near

    def may_be_negative(self, rows: torch.Tensor, columns: torch.Tensor | None = None) -> torch.Tensor:
        """(len(rows), len(columns)) True where the column image can serve as a negative of the row
        image: both labelled by the same kind of annotation and not the same place. An unlabelled row
        (no supervision) may take any other image."""
        columns = torch.arange(len(self)) if columns is None else columns
        row_labelled = self.labelled[rows][:, None]
        comparable = (self.known[rows][:, None] & self.known[columns][None, :]) | \
                     ((self.labels[rows] >= 0)[:, None] & (self.labels[columns] >= 0)[None, :])
        allowed = torch.where(row_labelled, comparable & ~self.same_place(rows, columns),
                              torch.ones_like(comparable))
        return allowed & (rows[:, None] != columns[None, :])

    def pose_gap(self, rows: torch.Tensor, columns: torch.Tensor | None = None) -> torch.Tensor:
        """(len(rows), len(columns)) how far apart two posed views are, in units of the thresholds:
        distance / max_distance_m + angle / max_angle_deg (0: the same pose; inf where a pose is unknown)."""
        columns = torch.arange(len(self)) if columns is None else columns
        distance, cosine, both_known = self._relative_poses(rows, columns)
        gap = distance / self.max_distance_m + torch.rad2deg(torch.arccos(cosine.clamp(-1.0, 1.0))) / self.max_angle_deg
        return gap.masked_fill(~both_known, math.inf)

    def _relative_poses(self, rows: torch.Tensor,
                        columns: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Centre distances, cosines of the relative rotation angles and "both posed", per pair."""
        distance = torch.cdist(self.centers[rows], self.centers[columns])
        # trace(R_a R_b^T) = sum(R_a * R_b): the relative rotation angle without a product per pair.
        trace = torch.einsum("aij,bij->ab", self.rotations[rows], self.rotations[columns])
        both_known = self.known[rows][:, None] & self.known[columns][None, :]
        return distance, (trace - 1.0) / 2.0, both_known

    def _near_pose(self, rows: torch.Tensor, columns: torch.Tensor) -> torch.Tensor:
        distance, cosine, both_known = self._relative_poses(rows, columns)
        close_rotation = cosine >= math.cos(math.radians(self.max_angle_deg)) - 1e-12
        return both_known & (distance <= self.max_distance_m) & close_rotation

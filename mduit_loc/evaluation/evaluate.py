"""Join estimated poses with ground truth and score them per subset (day/night, condition, camera).

The core, ``evaluate(estimates, ground_truth, meta, thresholds)``, works on plain dicts so that it
is testable by hand; ``load_ground_truth(root, split)`` reads a dataset's ground truth for it.

Subsets (``SubsetScore.group`` / ``.subset``):
- ``all`` / ``all``: every evaluated query;
- ``day-night`` / ``day-all``, ``night-all``: *pooled* over all images of the day (night)
  conditions, as the benchmark does, never an average of the per-condition scores;
- ``condition`` / ``<condition>``; ``camera`` / ``<camera>``; ``camera-day-night`` / ``<camera> day``...
The queries evaluated are all ground-truth queries (optionally only some cameras); a query the
estimates lack is a failure (see ``metrics``). Estimates of images without ground truth are
ignored and listed in ``EvaluationResult.ignored``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from mduit_loc.datasets import open_dataset
from mduit_loc.datasets import robotcar_files as files
from mduit_loc.datasets.layout import CAMERAS, QUERY_CONDITIONS, ImageName, canonical_name, day_or_night
from mduit_loc.datasets.robotcar_files import TEST_GROUND_TRUTH_FILE
from mduit_loc.errors import MduitError
from mduit_loc.evaluation.metrics import DEFAULT_THRESHOLDS, Threshold, median_error, recalls
from mduit_loc.poses import Pose, pose_errors

DAY_ALL, NIGHT_ALL, ALL = "day-all", "night-all", "all"
SPLITS = ("auto", "train", "test")


@dataclass(frozen=True)
class QueryMeta:
    condition: str
    camera: str


@dataclass(frozen=True)
class QueryResult:
    name: str
    condition: str
    camera: str
    day_night: str                # "day", "night" or "other" (a condition that is neither)
    position_error: float         # metres; inf when there is no estimate
    rotation_error: float         # degrees; inf when there is no estimate

    @property
    def estimated(self) -> bool:
        return bool(np.isfinite(self.position_error))


@dataclass(frozen=True)
class SubsetScore:
    group: str
    subset: str
    n: int
    n_estimated: int
    recalls: tuple[float, ...]    # fractions, aligned with the thresholds; nan when n == 0
    median_position_m: float
    median_rotation_deg: float


@dataclass
class EvaluationResult:
    method: str
    thresholds: tuple[Threshold, ...]
    queries: list[QueryResult]
    subsets: list[SubsetScore]
    ignored: list[str] = field(default_factory=list)  # estimate names with no ground truth

    def subset(self, name: str, group: str | None = None) -> SubsetScore:
        for score in self.subsets:
            if score.subset == name and (group is None or score.group == group):
                return score
        raise KeyError(f"no subset {name!r} in the evaluation of {self.method!r}")

    def groups(self, group: str) -> list[SubsetScore]:
        return [score for score in self.subsets if score.group == group]

    def errors(self, subset: str = ALL) -> tuple[np.ndarray, np.ndarray]:
        """(position, rotation) errors of the queries of a subset (for curves)."""
        chosen = [q for q in self.queries if subset in _memberships(q)]
        return (np.array([q.position_error for q in chosen], dtype=np.float64),
                np.array([q.rotation_error for q in chosen], dtype=np.float64))


@dataclass
class GroundTruth:
    poses: dict[str, Pose]
    meta: dict[str, QueryMeta]
    split: str
    source: str                   # file or description, for messages


def _day_night(condition: str) -> str:
    try:
        return day_or_night(condition)
    except ValueError:
        return "other"


def _memberships(query: QueryResult) -> dict[str, str]:
    """subset name -> group, for every subset the query belongs to."""
    members = {ALL: "all", query.condition: "condition", query.camera: "camera"}
    if query.day_night in ("day", "night"):
        members[f"{query.day_night}-all"] = "day-night"
        members[f"{query.camera} {query.day_night}"] = "camera-day-night"
    return members


def _meta_of(name: str, meta: Mapping[str, QueryMeta | tuple[str, str]] | None) -> QueryMeta:
    given = meta.get(name) if meta else None
    if given is not None:
        return given if isinstance(given, QueryMeta) else QueryMeta(*given)
    try:
        parsed = ImageName.parse(name)
    except ValueError as err:
        raise MduitError(f"cannot tell the condition and camera of ground-truth image {name!r}: {err}") from None
    if parsed.condition is None:
        raise MduitError(f"ground-truth image {name!r} has no condition in its name and no metadata was given")
    return QueryMeta(parsed.condition, parsed.camera)


def align_estimates(estimates: Mapping[str, Pose],
                    ground_truth_names: Sequence[str]) -> tuple[dict[str, Pose], list[str]]:
    """Map estimate names onto ground-truth names: canonical spelling (``.png`` -> ``.jpg``), and
    ``camera/timestamp`` names without a condition (submission style) matched by camera and timestamp.
    Returns (ground-truth name -> estimate, names of estimates without ground truth)."""
    known = set(ground_truth_names)
    by_frame: dict[tuple[str, str], str] = {}
    for name in ground_truth_names:
        try:
            parsed = ImageName.parse(name)
            by_frame[(parsed.camera, parsed.timestamp)] = name
        except ValueError:
            continue
    aligned: dict[str, Pose] = {}
    written_as: dict[str, str] = {}
    ignored: list[str] = []
    for written, pose in estimates.items():
        name = canonical_name(written)
        if name not in known:
            try:
                parsed = ImageName.parse(name)
                name = by_frame.get((parsed.camera, parsed.timestamp), name) if parsed.condition is None else name
            except ValueError:
                pass
        if name not in known:
            ignored.append(written)
            continue
        if name in aligned:
            raise MduitError(f"the estimates name the same query twice: {written_as[name]!r} and {written!r}")
        aligned[name], written_as[name] = pose, written
    return aligned, ignored


def _score(group: str, subset: str, members: list[QueryResult], thresholds: Sequence[Threshold]) -> SubsetScore:
    position = np.array([q.position_error for q in members], dtype=np.float64)
    rotation = np.array([q.rotation_error for q in members], dtype=np.float64)
    scores = recalls(position, rotation, thresholds) if members else tuple(float("nan") for _ in thresholds)
    return SubsetScore(group, subset, len(members), int(np.isfinite(position).sum()), scores,
                       median_error(position), median_error(rotation))


def _ordered_subsets(queries: list[QueryResult]) -> list[tuple[str, str]]:
    """(group, subset) in display order; day-all and night-all are always present."""
    conditions = {q.condition for q in queries}
    cameras = {q.camera for q in queries}
    condition_order = [c for c in QUERY_CONDITIONS if c in conditions] + sorted(conditions - set(QUERY_CONDITIONS))
    camera_order = [c for c in CAMERAS if c in cameras] + sorted(cameras - set(CAMERAS))
    subsets = [("all", ALL), ("day-night", DAY_ALL), ("day-night", NIGHT_ALL)]
    subsets += [("condition", c) for c in condition_order]
    subsets += [("camera", c) for c in camera_order]
    present = {(g, s) for q in queries for s, g in _memberships(q).items()}
    subsets += [("camera-day-night", f"{c} {dn}") for c in camera_order for dn in ("day", "night")
                if ("camera-day-night", f"{c} {dn}") in present]
    return subsets


def evaluate(estimates: Mapping[str, Pose], ground_truth: Mapping[str, Pose],
             meta: Mapping[str, QueryMeta | tuple[str, str]] | None = None,
             thresholds: Sequence[Threshold] = DEFAULT_THRESHOLDS, method: str = "method",
             cameras: Sequence[str] | None = None) -> EvaluationResult:
    """Score ``estimates`` (name -> cam_from_world) against ``ground_truth`` over all its queries.

    ``meta`` gives (condition, camera) per ground-truth name; names absent from it are parsed
    (``condition/camera/ts.jpg``). ``cameras`` restricts the evaluated queries (e.g. ``["rear"]``,
    as the benchmark server scores).
    """
    thresholds = tuple(thresholds)
    if not thresholds:
        raise MduitError("at least one threshold is needed")
    names = sorted(ground_truth)
    metas = {name: _meta_of(name, meta) for name in names}
    if cameras is not None:
        names = [name for name in names if metas[name].camera in set(cameras)]
        if not names:
            found = sorted({m.camera for m in metas.values()})
            raise MduitError(f"no ground-truth query of camera(s) {', '.join(cameras)}; "
                             f"the ground truth has camera(s) {', '.join(found) or 'none'}")
    aligned, ignored = align_estimates(estimates, names)
    queries = []
    for name in names:
        info = metas[name]
        errors = pose_errors(aligned[name], ground_truth[name]) if name in aligned else (np.inf, np.inf)
        queries.append(QueryResult(name, info.condition, info.camera, _day_night(info.condition), *errors))
    members: dict[str, list[QueryResult]] = {}
    for query in queries:
        for subset in _memberships(query):
            members.setdefault(subset, []).append(query)
    subsets = [_score(group, subset, members.get(subset, []), thresholds)
               for group, subset in _ordered_subsets(queries)]
    return EvaluationResult(method, thresholds, queries, subsets, ignored)


# --- ground truth of a dataset ------------------------------------------------------------
def resolve_split(root: str | Path, split: str) -> str:
    """``auto``: the test split when the dataset ships its ground truth (synthetic benchmark), else train."""
    if split not in SPLITS:
        raise MduitError(f"--split must be one of {', '.join(SPLITS)}, got {split!r}")
    if split != "auto":
        return split
    return "test" if (Path(root) / TEST_GROUND_TRUTH_FILE).is_file() else "train"


def load_ground_truth(root: str | Path, split: str = "auto", dataset=None) -> GroundTruth:
    """Ground truth of a RobotCar Seasons folder: ``robotcar_v2_train.txt`` (train) or the synthetic
    benchmark's ``ground_truth/robotcar_v2_test_gt.txt`` (test). ``dataset``: an opened one, if any."""
    root = Path(root)
    split = resolve_split(root, split)
    dataset = dataset if dataset is not None else open_dataset(root)
    if dataset.kind != "robotcar-seasons":
        raise MduitError(f"{root}: evaluation needs a RobotCar Seasons layout with ground truth "
                         f"(found a {dataset.kind!r} dataset)")
    meta = {q.name: QueryMeta(q.condition, q.camera) for q in dataset.queries}
    if split == "train":
        poses = {q.name: q.pose for q in dataset.queries if q.split == "train" and q.pose is not None}
        source = str(root / files.TRAIN_FILE)
        if not poses:
            raise MduitError(f"{root}: no training ground truth ({files.TRAIN_FILE} missing or empty)")
    else:
        if not (root / files.TEST_GROUND_TRUTH_FILE).is_file():
            raise MduitError(
                f"{root}: no test ground truth ({files.TEST_GROUND_TRUTH_FILE}); the real RobotCar Seasons "
                "test poses are secret: write a submission with 'mduit-loc submit --benchmark robotcar-seasons "
                "--poses RESULTS --out FILE' and upload it to the benchmark server, or use --split train")
        poses = files.read_test_ground_truth(root)
        source = str(root / files.TEST_GROUND_TRUTH_FILE)
    return GroundTruth(poses, {name: meta[name] for name in poses if name in meta}, split, source)

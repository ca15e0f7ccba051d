"""``mduit-loc check DIR``: recognise a dataset folder, validate it, and summarise it.

Layouts: RobotCar Seasons (real, or the synthetic benchmark with its ``synth.json`` and aligned
set), a COLMAP model + image folder, or a folder per appearance domain (the same detection as ``open_dataset``).
A file that cannot be parsed stops the check with the reader's one-line error (file, line,
expectation). Everything else is collected: each problem is one line, and any problem makes
the command exit non-zero. Warnings (optional files absent, suspicious calibration) do not.
"""
from __future__ import annotations

import random
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from mduit_loc.datasets import open_dataset
from mduit_loc.datasets import robotcar_files as files
from mduit_loc.datasets.aligned import ALIGNED_DIR, ALIGNED_LIST, AlignedSet, has_aligned_set, read_aligned_set
from mduit_loc.datasets.colmap_text import find_model_folder, read_colmap_model
from mduit_loc.datasets.images import IMAGE_SUFFIXES, load_image
from mduit_loc.datasets.layout import ALL_CONDITIONS, CAMERAS, canonical_name, day_or_night
from mduit_loc.datasets.nvm import validate_nvm
from mduit_loc.datasets.robotcar import is_robotcar_layout
from mduit_loc.datasets.types import LocalizationDataset
from mduit_loc.errors import DataNotFoundError, FormatError, MduitError
from mduit_loc.poses import Pose, is_rotation_matrix
from mduit_loc.runtime import default_num_workers

LAYOUT_ROBOTCAR = "robotcar-seasons"
LAYOUT_SYNTHETIC = "synthetic benchmark (robotcar-seasons layout)"
LAYOUT_COLMAP = "colmap model + images"
LAYOUT_DOMAINS = "folder per appearance domain"
SYNTHETIC_MARKER = "synth.json"


@dataclass
class CheckOptions:
    full: bool = False          # decode every image, not a sample
    sample: int = 200           # images decoded without --full
    seed: int = 0               # which sample
    num_workers: int = 0        # DataLoader workers for decoding
    progress: bool = False      # tqdm bar on stderr while decoding


@dataclass
class CheckReport:
    root: Path
    layout: str
    dataset: LocalizationDataset
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    images_listed: int = 0
    images_missing: int = 0
    images_decoded: int = 0
    model_points: int | None = None         # 3D points of the map model(s), when parsed
    model_measurements: int | None = None   # their 2D measurements (NVM)
    aligned: AlignedSet | None = None       # the aligned set of a synthetic benchmark, when it has one

    @property
    def ok(self) -> bool:
        return not self.problems


# --- command ------------------------------------------------------------------------------
def add_arguments(parser) -> None:
    parser.add_argument("path", metavar="DIR", help="dataset folder (RobotCar Seasons layout, synthetic "
                        "benchmark, COLMAP model with images, or one folder per appearance domain)")
    parser.add_argument("--image-root", help="image folder of a COLMAP model (default: DIR/images)")
    parser.add_argument("--full", action="store_true", help="decode every image (default: a random sample)")
    parser.add_argument("--sample", type=int, default=200, help="images decoded without --full (default: 200)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the decoded sample (default: 0)")
    parser.add_argument("--max-problems", type=int, default=20,
                        help="problems printed, one line each (default: 20); all are counted")
    parser.add_argument("--num-workers", type=int, default=default_num_workers(),
                        help="DataLoader workers decoding images (default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    if args.sample < 0 or args.max_problems < 0 or args.num_workers < 0:
        raise MduitError("--sample, --max-problems and --num-workers must be >= 0")
    options = CheckOptions(full=args.full, sample=args.sample, seed=args.seed,
                           num_workers=args.num_workers, progress=not args.no_progress)
    report = check_dataset(args.path, args.image_root, options)
    print(summary_table(report))
    for warning in report.warnings:
        print(f"warning: {warning}")
    if report.ok:
        print(f"OK: {report.root} is a valid {report.layout} dataset")
        return 0
    shown = report.problems[: max(0, args.max_problems)]
    for problem in shown:
        print(f"problem: {problem}", file=sys.stderr)
    if len(report.problems) > len(shown):
        print(f"problem: ... and {len(report.problems) - len(shown)} more (raise --max-problems to list them)",
              file=sys.stderr)
    print(f"check failed: {len(report.problems)} problem(s) in {report.root}", file=sys.stderr)
    return 1


# --- detection and checks -----------------------------------------------------------------
def detect_layout(path: str | Path) -> str:
    """The layout ``open_dataset`` will read ``path`` as."""
    path = Path(path)
    if not path.exists():
        raise DataNotFoundError(path, "dataset folder")
    if is_robotcar_layout(path):
        return LAYOUT_SYNTHETIC if (path / SYNTHETIC_MARKER).is_file() else LAYOUT_ROBOTCAR
    if find_model_folder(path) is not None:
        return LAYOUT_COLMAP
    return LAYOUT_DOMAINS


def check_dataset(path: str | Path, image_root: str | Path | None = None,
                  options: CheckOptions | None = None) -> CheckReport:
    options = options or CheckOptions()
    layout = detect_layout(path)
    dataset = open_dataset(path, image_root)
    report = CheckReport(Path(path), layout, dataset)
    sources = _image_sources(dataset, layout)
    report.images_listed = len(sources)
    existing = _check_images_exist(dataset, sources, report)
    _check_images_decode(dataset, existing, options, report)
    _check_poses(dataset, report)
    _check_models(dataset, layout, report)
    if layout != LAYOUT_DOMAINS:
        _check_intrinsics(dataset, report)
    if layout in (LAYOUT_ROBOTCAR, LAYOUT_SYNTHETIC):
        _check_robotcar_files(dataset, sources, report)
    if layout == LAYOUT_SYNTHETIC:
        _check_test_ground_truth(dataset, report)
    if layout in (LAYOUT_ROBOTCAR, LAYOUT_SYNTHETIC):
        _check_aligned_set(dataset, layout, report)
    return report


def _image_sources(dataset: LocalizationDataset, layout: str) -> dict[str, str]:
    """Every image the dataset lists -> the file that lists it (named in problems)."""
    root = dataset.root
    if layout in (LAYOUT_ROBOTCAR, LAYOUT_SYNTHETIC):
        database_source = files.NVM_FILE
        has_lists = (root / files.QUERY_LISTS_DIR).is_dir()
    else:
        database_source = "COLMAP model"
        has_lists = False
    sources = {image.name: database_source for image in dataset.database}
    for query in dataset.queries:
        if has_lists and query.location is not None:
            source = files.query_list_path(root, query.location).relative_to(root).as_posix()
        elif layout == LAYOUT_DOMAINS:
            source = f"domain folder {query.condition!r}"
        else:
            source = "images/ folder scan"
        sources.setdefault(query.name, source)
    return sources


def _check_images_exist(dataset: LocalizationDataset, sources: dict[str, str], report: CheckReport) -> list[str]:
    existing = []
    for name, source in sources.items():
        if dataset.image_path(name).is_file():
            existing.append(name)
        else:
            report.problems.append(f"{dataset.image_path(name)}: image listed in {source} does not exist")
    report.images_missing = len(sources) - len(existing)
    return existing


class _DecodeDataset(torch.utils.data.Dataset[tuple[int, int, int, str]]):
    """Decodes images fully in DataLoader workers: items are (index, width, height, error).

    The decoder is ``load_image``'s, so whatever fails here fails there (and vice versa).
    """

    def __init__(self, paths: list[Path]):
        self.paths = paths

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[int, int, int, str]:
        try:
            height, width = load_image(self.paths[index]).shape[:2]
        except FormatError as err:
            return index, 0, 0, f"expected {err.expected}" + (f", got {err.got}" if err.got else "")
        except MduitError as err:
            return index, 0, 0, str(err)
        return index, width, height, ""


def _check_images_decode(dataset: LocalizationDataset, names: list[str], options: CheckOptions,
                         report: CheckReport) -> None:
    if not options.full and len(names) > options.sample:
        names = sorted(random.Random(options.seed).sample(names, options.sample))
    paths = [dataset.image_path(name) for name in names]
    loader: torch.utils.data.DataLoader[tuple[int, int, int, str]]
    loader = torch.utils.data.DataLoader(_DecodeDataset(paths), batch_size=None,
                                         num_workers=options.num_workers if len(paths) > 1 else 0)
    cameras = _camera_of_names(dataset)
    for index, width, height, error in tqdm(loader, total=len(paths), desc="decoding", unit="img",
                                            disable=not options.progress or None, file=sys.stderr):
        name = names[index]
        if error:
            report.problems.append(f"{paths[index]}: not a readable image ({error})")
            continue
        report.images_decoded += 1
        intrinsics = dataset.intrinsics.get(cameras.get(name, ""))
        if intrinsics is not None and (width, height) != (intrinsics.width, intrinsics.height):
            report.problems.append(f"{paths[index]}: {width}x{height} pixels, but the {cameras[name]!r} camera's "
                                   f"images are {intrinsics.width}x{intrinsics.height} (intrinsics)")


def _camera_of_names(dataset: LocalizationDataset) -> dict[str, str]:
    cameras = {image.name: image.camera for image in dataset.database}
    cameras.update((query.name, query.camera) for query in dataset.queries)
    return cameras


def _pose_problem(pose: Pose) -> str | None:
    if not (np.all(np.isfinite(pose.R)) and np.all(np.isfinite(pose.t))):
        return "a pose with non-finite values"
    if not is_rotation_matrix(pose.R):
        return "a rotation that is not orthonormal with det +1"
    return None


def _check_poses(dataset: LocalizationDataset, report: CheckReport) -> None:
    for kind, items in (("database image", dataset.database), ("query", dataset.queries)):
        for item in items:
            problem = _pose_problem(item.pose) if item.pose is not None else None
            if problem:
                report.problems.append(f"{kind} {item.name}: {problem}")


def _check_models(dataset: LocalizationDataset, layout: str, report: CheckReport) -> None:
    """Parse the map models' point sections, which reading the dataset skips (a problem each)."""
    try:
        if layout in (LAYOUT_ROBOTCAR, LAYOUT_SYNTHETIC):
            summary = validate_nvm(dataset.nvm_path or dataset.root / files.NVM_FILE)
            report.model_points, report.model_measurements = summary.points, summary.measurements
            for model_dir in sorted((dataset.root / files.LOCATION_MODELS_DIR).glob("*_aligned")):
                if model_dir.name.split("_")[0].isdigit() and find_model_folder(model_dir) == model_dir:
                    read_colmap_model(model_dir, with_points=True)
        elif layout == LAYOUT_COLMAP:
            folder = find_model_folder(dataset.root)
            if folder is not None:
                report.model_points = len(read_colmap_model(folder, with_points=True).points_xyz)
    except MduitError as err:
        report.problems.append(str(err))


def _check_intrinsics(dataset: LocalizationDataset, report: CheckReport) -> None:
    used = Counter(image.camera for image in dataset.database)
    used.update(query.camera for query in dataset.queries)
    for camera, count in sorted(used.items()):
        intrinsics = dataset.intrinsics.get(camera)
        if intrinsics is None:
            where = (f"{dataset.root / 'intrinsics' / f'{camera}_intrinsics.txt'}"
                     if report.layout != LAYOUT_COLMAP else "the COLMAP model")
            report.problems.append(f"no intrinsics for camera {camera!r} ({count} images); expected in {where}")
            continue
        if intrinsics.fx <= 0 or intrinsics.fy <= 0:
            report.problems.append(f"camera {camera!r}: focal lengths fx={intrinsics.fx:g}, fy={intrinsics.fy:g}; "
                                   "expected positive values")
        if not (0 <= intrinsics.cx <= intrinsics.width and 0 <= intrinsics.cy <= intrinsics.height):
            report.warnings.append(
                f"camera {camera!r}: principal point ({intrinsics.cx:.1f}, {intrinsics.cy:.1f}) lies outside its "
                f"{intrinsics.width}x{intrinsics.height} images; intrinsics and images do not match")


def _check_robotcar_files(dataset: LocalizationDataset, sources: dict[str, str], report: CheckReport) -> None:
    root = dataset.root
    if not dataset.database:
        report.problems.append(f"{root / files.NVM_FILE}: the reference model lists no database images")
    if not (root / files.QUERY_LISTS_DIR).is_dir():
        report.warnings.append(f"no {files.QUERY_LISTS_DIR}/: queries were found by scanning images/, "
                               "without locations")
    for name in (files.TRAIN_FILE, files.TEST_FILE):
        if not (root / name).is_file():
            report.warnings.append(f"no {name}: no query has a split from it")
    cameras = {image.camera for image in dataset.database} | {query.camera for query in dataset.queries}
    missing_rig = sorted(c for c in cameras if c not in dataset.rig)
    if missing_rig:
        report.warnings.append(f"no extrinsics for camera(s) {', '.join(missing_rig)} (rig unknown)")
    unlisted = _unlisted_images(dataset, set(sources))
    if unlisted:
        report.warnings.append(f"{len(unlisted)} image(s) under images/ are in no model or query list, "
                               f"e.g. {unlisted[0]}")


def _unlisted_images(dataset: LocalizationDataset, listed: set[str]) -> list[str]:
    found = (path.relative_to(dataset.image_root).as_posix() for path in dataset.image_root.rglob("*")
             if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file())
    return sorted(name for name in found if canonical_name(name) not in listed)


def _check_test_ground_truth(dataset: LocalizationDataset, report: CheckReport) -> None:
    """The synthetic benchmark evaluates its test split locally: every test query needs a pose."""
    try:
        truth = files.read_test_ground_truth(dataset.root)
    except DataNotFoundError as err:
        report.problems.append(str(err))
        return
    queries = dataset.queries_by_name()
    path = dataset.root / files.TEST_GROUND_TRUTH_FILE
    for name in sorted(set(truth) - set(queries)):
        report.problems.append(f"{path}: {name} is not one of the dataset's queries")
    for name in sorted(n for n, q in queries.items() if q.split == "test" and n not in truth):
        report.problems.append(f"{path}: no ground truth for test query {name}")


def _check_aligned_set(dataset: LocalizationDataset, layout: str, report: CheckReport) -> None:
    """The aligned set (aligned/aligned.txt) parses, its images exist and are database poses."""
    if not has_aligned_set(dataset.root):
        if layout == LAYOUT_SYNTHETIC:
            report.warnings.append(f"no aligned set ({ALIGNED_DIR}/{ALIGNED_LIST}): rendered by an older "
                                   "'mduit-loc synth'; re-render with --overwrite to get one")
        return
    try:
        report.aligned = read_aligned_set(dataset.root)
    except MduitError as err:
        report.problems.append(str(err))
        return
    database = dataset.database_by_name()
    for pose in report.aligned.poses:
        if pose.database_name not in database:
            report.problems.append(f"{report.aligned.folder / ALIGNED_LIST}: {pose.camera}/{pose.timestamp} is not "
                                   f"the pose of a database image ({pose.database_name} is not in the NVM model)")


# --- summary ------------------------------------------------------------------------------
def _day_night(condition: str) -> str:
    try:
        return day_or_night(condition)
    except ValueError:  # user domains and COLMAP maps are neither
        return "-"


def _ordered(values, preferred) -> list[str]:
    values = set(values)
    return [v for v in preferred if v in values] + sorted(values - set(preferred))


def summary_table(report: CheckReport) -> str:
    dataset = report.dataset
    counts = Counter((image.condition, image.camera) for image in dataset.database)
    counts.update((query.condition, query.camera) for query in dataset.queries)
    conditions = _ordered((c for c, _ in counts), ALL_CONDITIONS)
    cameras = _ordered((c for _, c in counts), CAMERAS)
    width = max([len("condition"), len("total")] + [len(c) for c in conditions])
    lines = [f"dataset: {report.root} ({report.layout})",
             f"images per condition and camera ({len(dataset.database)} database, {len(dataset.queries)} queries):",
             f"  {'condition':<{width}}  {'day/night':<9}" + "".join(f"  {c:>7}" for c in cameras) + "    total"]
    for condition in conditions:
        row = [counts[(condition, camera)] for camera in cameras]
        lines.append(f"  {condition:<{width}}  {_day_night(condition):<9}"
                     + "".join(f"  {n:>7}" for n in row) + f"  {sum(row):>7}")
    totals = [sum(counts[(c, camera)] for c in conditions) for camera in cameras]
    lines.append(f"  {'total':<{width}}  {'':<9}" + "".join(f"  {n:>7}" for n in totals) + f"  {sum(totals):>7}")
    splits = Counter(query.split or "none" for query in dataset.queries)
    lines.append("queries per split: " + (", ".join(f"{s} {n}" for s, n in sorted(splits.items())) or "none"))
    day_night = Counter(_day_night(query.condition) for query in dataset.queries)
    lines.append("queries day/night: " + (", ".join(f"{k} {n}" for k, n in sorted(day_night.items())) or "none"))
    db_locations = {image.location for image in dataset.database if image.location is not None}
    query_locations = {query.location for query in dataset.queries if query.location is not None}
    lines.append(f"locations: {len(db_locations | query_locations)} ({len(db_locations)} with database images, "
                 f"{len(query_locations)} with queries)")
    lines.append("intrinsics: " + (", ".join(sorted(dataset.intrinsics)) or "none")
                 + "; rig extrinsics: " + (", ".join(sorted(dataset.rig)) or "none"))
    if report.model_points is not None:
        measurements = (f" ({report.model_measurements} measurements)"
                        if report.model_measurements is not None else "")
        lines.append(f"3D points: {report.model_points}{measurements}")
    if report.aligned is not None:
        lines.append(f"aligned set: {len(report.aligned.poses)} database poses x {len(report.aligned.conditions)} "
                     f"conditions ({ALIGNED_DIR}/)")
    lines.append(f"images: {report.images_listed} listed, {report.images_missing} missing, "
                 f"{report.images_decoded} decoded")
    return "\n".join(lines)

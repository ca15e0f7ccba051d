"""``mduit-loc eval``: recall of poses at the RobotCar Seasons thresholds, day / night, per condition / camera.

Examples::

    mduit-loc eval --benchmark robotcar-seasons --data data/synth --poses res/mduit/poses.txt
    mduit-loc eval --data data/synth --poses netvlad=res/netvlad/poses.txt --poses mduit=res/mduit/poses.txt --details
    mduit-loc eval --data data/robotcar --split train --cameras rear --poses res/poses.txt
    mduit-loc eval --data data/synth --model runs/mduit --per-camera --per-location --out eval/

Which queries: every query of the split with ground truth (``robotcar_v2_train.txt`` for ``train``,
the synthetic benchmark's ``ground_truth/robotcar_v2_test_gt.txt`` for ``test``), of all cameras that
have it, with a per-camera breakdown; ``--cameras rear`` mimics the benchmark server, which scores
the rear camera only. Counting: position error <= tau_t AND rotation error <= tau_R (inclusive);
a query without an estimate is a failure; day all / night all pool all images of those conditions.
Outputs in ``--out``: eval.csv (long format), eval_queries.csv (per-query errors), recall_curves.png,
report.md and report.html, replaced together (``output_set``); ``--out`` is locked while eval runs.
``mduit-loc eval --table1 ...`` is an alias of ``mduit-loc table1 ...`` (the paper's Table 1, trained
and evaluated by ``mduit_loc.pipelines``); the dispatcher in ``mduit_loc.cli`` routes it there.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mduit_loc.datasets import open_dataset
from mduit_loc.datasets.types import LocalizationDataset
from mduit_loc.errors import MduitError
from mduit_loc.evaluation.evaluate import GroundTruth, align_estimates, evaluate, load_ground_truth
from mduit_loc.evaluation.metrics import DEFAULT_THRESHOLDS, parse_thresholds
from mduit_loc.evaluation.plots import plot_recall_curves
from mduit_loc.evaluation.report import HTML_FILE, MARKDOWN_FILE, evaluation_sections, write_report
from mduit_loc.evaluation.submission import parse_cameras
from mduit_loc.evaluation.tables import format_results, write_csv, write_query_csv
from mduit_loc.output_lock import output_lock
from mduit_loc.output_set import staged_outputs
from mduit_loc.pose_files import read_poses
from mduit_loc.poses import Pose
from mduit_loc.retrieval.api import (
    ExtractOptions,
    IndexOptions,
    QueryItem,
    QueryOptions,
    SearchOptions,
    build_index,
    localize,
)
from mduit_loc.retrieval.cli_common import add_fuse_argument
from mduit_loc.runtime import add_device_argument, resolve_device

CSV_FILE, QUERY_CSV_FILE, PLOT_FILE = "eval.csv", "eval_queries.csv", "recall_curves.png"
EVAL_MEMBERS = (CSV_FILE, QUERY_CSV_FILE, PLOT_FILE, MARKDOWN_FILE, HTML_FILE)   # one output set


def add_arguments(parser: argparse.ArgumentParser) -> None:
    default_thresholds = " ".join(f"{t.position_m:g},{t.rotation_deg:g}" for t in DEFAULT_THRESHOLDS)
    parser.add_argument("--benchmark", choices=("robotcar-seasons",), default="robotcar-seasons",
                        help="benchmark protocol (default: robotcar-seasons)")
    parser.add_argument("--data", required=True, type=Path, help="dataset folder in the RobotCar Seasons layout")
    parser.add_argument("--poses", action="append", default=[], metavar="[NAME=]FILE",
                        help="poses file 'name qw qx qy qz tx ty tz' (cam_from_world); repeat to compare methods")
    parser.add_argument("--model", action="append", default=[], metavar="[NAME=]MODEL",
                        help="run retrieval first: build an index of the dataset with this model (MDUIT run, "
                             "NetVLAD run or .mat, raw-pixels) in OUT/index-NAME and localize the queries")
    parser.add_argument("--index", action="append", default=[], metavar="[NAME=]INDEX",
                        help="run retrieval first with an existing index from 'mduit-loc index'")
    parser.add_argument("--split", choices=("auto", "train", "test"), default="auto",
                        help="ground truth: train (robotcar_v2_train.txt) or test (the synthetic benchmark's "
                             "ground_truth/robotcar_v2_test_gt.txt); auto (default): test when the dataset has it")
    parser.add_argument("--cameras", default="all",
                        help="cameras evaluated: all (default: every camera with ground truth) or a list such as "
                             "'rear' (what the benchmark server scores)")
    parser.add_argument("--thresholds", default=default_thresholds,
                        help=f"'METRES,DEGREES' pairs (default: '{default_thresholds}')")
    parser.add_argument("--out", type=Path,
                        help="output folder (default: 'eval' beside the first --poses file, else ./eval)")
    parser.add_argument("--details", action="store_true", help="also print per-condition and per-camera tables")
    parser.add_argument("--plot-rotation", type=float, default=10.0,
                        help="fixed rotation threshold (degrees) of the recall-vs-position plot (default: 10)")
    group = parser.add_argument_group("retrieval (with --model / --index)")
    group.add_argument("--per-camera", action="store_true", help="retrieve only images of the query's camera")
    group.add_argument("--per-location", action="store_true", help="retrieve only images of the query's location")
    group.add_argument("--translate-db", action="store_true", help="--model: index translated database copies too")
    add_fuse_argument(group)
    group.add_argument("--pose", default="top1", help="pose from retrieval: top1 (default), mean, weighted, pnp")
    group.add_argument("--top-k", type=int, default=10, help="database images retrieved per query (default: 10)")
    group.add_argument("--batch-size", type=int, default=16, help="images per batch (default: 16)")
    add_device_argument(group)


def split_named(text: str, option: str) -> tuple[str | None, str]:
    """``name=path`` -> (name, path); a bare path -> (None, path)."""
    name, sep, value = text.partition("=")
    if sep and name and "/" not in name and "\\" not in name:
        if not value:
            raise MduitError(f"{option} {text!r}: expected NAME=PATH with a path after '='")
        return name, value
    return None, text


def default_method_name(path: Path) -> str:
    """``res/netvlad/poses.txt`` -> ``netvlad``; ``res/mduit_poses.txt`` -> ``mduit_poses``."""
    path = Path(path)
    stem = path.stem if path.suffix else path.name
    if stem in ("poses", "index", "run", "") and path.parent.name:
        return path.parent.name
    return stem


def _unique(name: str, taken: set[str]) -> str:
    candidate, number = name, 2
    while candidate in taken:
        candidate, number = f"{name}-{number}", number + 1
    taken.add(candidate)
    return candidate


def _sources(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    """(kind, method name, value) for every --poses / --model / --index, in order."""
    sources: list[tuple[str, str, str]] = []
    taken: set[str] = set()
    for kind, values in (("poses", args.poses), ("model", args.model), ("index", args.index)):
        for text in values:
            name, value = split_named(text, f"--{kind}")
            sources.append((kind, _unique(name or default_method_name(Path(value)), taken), value))
    if not sources:
        raise MduitError("nothing to evaluate: give --poses FILE (or --model MODEL / --index INDEX)")
    return sources


def _out_dir(args: argparse.Namespace, sources: list[tuple[str, str, str]]) -> Path:
    if args.out is not None:
        return args.out
    first_poses = next((value for kind, _, value in sources if kind == "poses"), None)
    return Path(first_poses).parent / "eval" if first_poses else Path("eval")


def _localize(kind: str, name: str, value: str, args: argparse.Namespace, dataset: LocalizationDataset,
              ground_truth: GroundTruth, cameras: tuple[str, ...] | None, out: Path) -> dict[str, Pose]:
    device, extract = resolve_device(args.device), ExtractOptions(batch_size=args.batch_size)
    if kind == "model":
        index = build_index(dataset, value, out / f"index-{name}",
                            IndexOptions(translate_db=args.translate_db, fuse_translations=args.fuse_translations,
                                         extract=extract, device=device))
    else:
        index = Path(value)
    items = [QueryItem(q.name, dataset.image_path(q.name), q.camera, q.location) for q in dataset.queries
             if q.name in ground_truth.poses and (cameras is None or q.camera in cameras)]
    search = SearchOptions(k=args.top_k, per_camera=args.per_camera, per_location=args.per_location)
    options = QueryOptions(search=search, extract=extract, pose=args.pose, data=str(args.data), device=device)
    results = localize(index, items, options, out / name)
    print(f"{name}: {len(results.poses)} of {len(items)} queries localized; poses in {out / name / 'poses.txt'}",
          file=sys.stderr)
    return results.poses


def run(args: argparse.Namespace) -> int:
    thresholds = parse_thresholds(args.thresholds)
    cameras = None if args.cameras.strip() == "all" else parse_cameras(args.cameras)
    sources = _sources(args)
    out = _out_dir(args, sources)
    with output_lock(out, "eval"):   # one writer; the files are replaced together at the end (output_set)
        return _run(args, thresholds, cameras, sources, out)


def _run(args: argparse.Namespace, thresholds, cameras: tuple[str, ...] | None,
         sources: list[tuple[str, str, str]], out: Path) -> int:
    # Read every poses file before the (slower) dataset, so a malformed file fails fast.
    estimates = {name: read_poses(value) for kind, name, value in sources if kind == "poses"}
    dataset = open_dataset(args.data)
    ground_truth = load_ground_truth(args.data, args.split, dataset)
    print(f"ground truth: {len(ground_truth.poses)} queries of the {ground_truth.split} split ({ground_truth.source})",
          file=sys.stderr)
    results = []
    for kind, name, value in sources:
        poses = estimates[name] if kind == "poses" else _localize(kind, name, value, args, dataset, ground_truth,
                                                                  cameras, out)
        aligned, _ = align_estimates(poses, list(ground_truth.poses))
        if poses and not aligned:
            raise MduitError(f"{value}: none of its {len(poses)} poses is a query of the {ground_truth.split} split "
                             f"({ground_truth.source}); wrong --split or --data?")
        results.append(evaluate(poses, ground_truth.poses, ground_truth.meta, thresholds, name, cameras))
    print(format_results(results, details=args.details))
    with staged_outputs(out, EVAL_MEMBERS) as staged:
        write_csv(staged.path(CSV_FILE), results)
        write_query_csv(staged.path(QUERY_CSV_FILE), results)
        plot_path = plot_recall_curves(results, staged.path(PLOT_FILE), rotation_deg=args.plot_rotation)
        title = f"Evaluation on {args.data} ({ground_truth.split} split)"
        write_report(staged.staging, title, evaluation_sections(results, plot_path, True, args.plot_rotation))
    print("\nwrote " + ", ".join(str(out / name) for name in EVAL_MEMBERS))
    return 0

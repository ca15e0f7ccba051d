"""``mduit-loc eval``: recall of poses at the RobotCar Seasons thresholds, day / night, per condition / camera.

Examples::

    mduit-loc eval --benchmark robotcar-seasons --data data/synth --poses res/mduit/poses.txt
    mduit-loc eval --data data/synth --poses netvlad=res/netvlad/poses.txt --poses mduit=res/mduit/poses.txt --details
    mduit-loc eval --data data/robotcar --split train --cameras rear --poses res/poses.txt
    mduit-loc eval --data data/synth --model runs/mduit --per-camera --per-location --out eval/
    mduit-loc eval --table1 --data data/synth_small --preset small --budget-min 6 --out table1/

Which queries: every query of the split with ground truth (``robotcar_v2_train.txt`` for ``train``,
the synthetic benchmark's ``ground_truth/robotcar_v2_test_gt.txt`` for ``test``), of all cameras that
have it, with a per-camera breakdown; ``--cameras rear`` mimics the benchmark server, which scores
the rear camera only. Counting: position error <= tau_t AND rotation error <= tau_R (inclusive);
a query without an estimate is a failure; day all / night all pool all images of those conditions.
Outputs in ``--out``: eval.csv (long format), eval_queries.csv (per-query errors), recall_curves.png,
report.md and report.html.
With ``--table1`` it trains and evaluates the paper's Table 1 rows itself (``mduit_loc.evaluation.table1``):
table1.csv, table1.md, eval.csv and recall_curves.png in ``--out`` (default ./table1_output).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mduit_loc.errors import MduitError
from mduit_loc.evaluation.metrics import DEFAULT_THRESHOLDS
from mduit_loc.evaluation.pipeline_training import add_training_arguments, budget_from_args

CSV_FILE, QUERY_CSV_FILE, PLOT_FILE = "eval.csv", "eval_queries.csv", "recall_curves.png"


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
    group.add_argument("--pose", default="top1", help="pose from retrieval: top1 (default), mean, weighted, pnp")
    group.add_argument("--top-k", type=int, default=10, help="database images retrieved per query (default: 10)")
    group.add_argument("--batch-size", type=int, default=16, help="images per batch (default: 16)")
    # Same flag as mduit_loc.runtime.add_device_argument, without importing torch for --help.
    group.add_argument("--device", default="auto",
                       help="'auto' (CUDA if available, else CPU), 'cpu', 'cuda' or 'cuda:N' (default: auto)")
    add_table1_arguments(parser)


def add_table1_arguments(parser: argparse.ArgumentParser) -> None:
    """``--table1``: train and evaluate the paper's Table 1 rows on --data (see mduit_loc.evaluation.table1)."""
    group = parser.add_argument_group("the paper's Table 1 (--table1)")
    group.add_argument("--table1", action="store_true",
                       help="train NetVLAD and the four MDUIT variants (w/o I2I and NCE, w/o I2I, w/o NCE, Full) "
                            "on --data with the same budget, evaluate them and print the paper's Table 1 with the "
                            "paper's numbers beside; finished methods are not redone (default --out: ./table1_output)")
    group.add_argument("--preset", choices=("tiny", "small", "full"),
                       help="--table1: render this synthetic benchmark into --data first when --data is absent "
                            "or empty (otherwise --data is used as it is)")
    group.add_argument("--budget-min", type=float, default=6.0,
                       help="--table1: wall-clock training minutes per method (default: 6)")
    add_training_arguments(group, "--table1")
    group.add_argument("--threads", type=int,
                       help="--table1: torch threads (default: all cores, or 1 when the machine is already busy)")
    group.add_argument("--no-progress", action="store_true", help="--table1: no progress bars")


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


def _sources(args) -> list[tuple[str, str, str]]:
    """(kind, method name, value) for every --poses / --model / --index, in order."""
    sources, taken = [], set()
    for kind, values in (("poses", args.poses), ("model", args.model), ("index", args.index)):
        for text in values:
            name, value = split_named(text, f"--{kind}")
            sources.append((kind, _unique(name or default_method_name(Path(value)), taken), value))
    if not sources:
        raise MduitError("nothing to evaluate: give --poses FILE (or --model MODEL / --index INDEX)")
    return sources


def _out_dir(args, sources) -> Path:
    if args.out is not None:
        return args.out
    first_poses = next((value for kind, _, value in sources if kind == "poses"), None)
    return Path(first_poses).parent / "eval" if first_poses else Path("eval")


def _localize(kind: str, name: str, value: str, args, dataset, ground_truth, cameras, out: Path) -> dict:
    try:
        from mduit_loc.retrieval.api import IndexOptions, QueryItem, QueryOptions, build_index, localize
    except ImportError as err:
        raise MduitError(f"--{kind} needs the retrieval stage (mduit_loc.retrieval.api): {err}") from None
    if kind == "model":
        index = build_index(dataset, value, out / f"index-{name}",
                            IndexOptions(translate_db=args.translate_db, batch_size=args.batch_size,
                                         device=args.device))
    else:
        index = Path(value)
    items = [QueryItem(q.name, dataset.image_path(q.name), q.camera, q.location) for q in dataset.queries
             if q.name in ground_truth.poses and (cameras is None or q.camera in cameras)]
    options = QueryOptions(top_k=args.top_k, per_camera=args.per_camera, per_location=args.per_location,
                           pose=args.pose, data=str(args.data), batch_size=args.batch_size, device=args.device)
    results = localize(index, items, options, out / name)
    print(f"{name}: {len(results.poses)} of {len(items)} queries localized; poses in {out / name / 'poses.txt'}",
          file=sys.stderr)
    return results.poses


def run_table1_command(args) -> int:
    from mduit_loc.evaluation import pipeline
    from mduit_loc.evaluation.pipeline import RetrievalProtocol, configure_threads
    from mduit_loc.evaluation.table1 import print_table1, run_table1

    if args.poses or args.model or args.index:
        raise MduitError("--table1 trains its own models: leave out --poses, --model and --index")
    budget = budget_from_args(args)
    print(f"Table 1: {configure_threads(args.threads)} torch thread(s)", file=sys.stderr)
    if args.preset and pipeline.holds_nothing(args.data):
        pipeline.render_synthetic(args.data, args.preset, quiet=args.no_progress)
    out = args.out or Path("table1_output")
    protocol = RetrievalProtocol(per_camera=True, per_location=True, pose=args.pose, top_k=args.top_k,
                                 batch_size=args.batch_size, num_workers=args.num_workers, device=args.device,
                                 progress=not args.no_progress)
    table = run_table1(args.data, out, budget, protocol)
    print_table1(table, out)
    return 0


def run(args) -> int:
    if getattr(args, "table1", False):
        return run_table1_command(args)
    from mduit_loc.datasets import open_dataset
    from mduit_loc.evaluation.evaluate import align_estimates, evaluate, load_ground_truth
    from mduit_loc.evaluation.metrics import parse_thresholds
    from mduit_loc.evaluation.plots import plot_recall_curves
    from mduit_loc.evaluation.report import evaluation_sections, write_report
    from mduit_loc.evaluation.submission import parse_cameras
    from mduit_loc.evaluation.tables import format_results, write_csv, write_query_csv
    from mduit_loc.pose_files import read_poses

    thresholds = parse_thresholds(args.thresholds)
    cameras = None if args.cameras.strip() == "all" else parse_cameras(args.cameras)
    sources = _sources(args)
    out = _out_dir(args, sources)
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
    csv_path = write_csv(out / CSV_FILE, results)
    write_query_csv(out / QUERY_CSV_FILE, results)
    plot_path = plot_recall_curves(results, out / PLOT_FILE, rotation_deg=args.plot_rotation)
    title = f"Evaluation on {args.data} ({ground_truth.split} split)"
    report = write_report(out, title, evaluation_sections(results, plot_path, True, args.plot_rotation))
    print(f"\nwrote {csv_path}, {out / QUERY_CSV_FILE}, {plot_path}, {report.markdown}, {report.html}")
    return 0

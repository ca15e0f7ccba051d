"""Stages shared by ``mduit-loc demo`` and Table 1: render data, train, index, localize, evaluate.

Every stage is idempotent: it looks for its finished output and skips, so a killed run continues
where it stopped when started again (an interrupted training resumes from its checkpoint). Other
packages are driven through their stable entry points: the CLI modules (``synth``, ``train``,
``train-netvlad``, ``translate``) with their documented flags, and ``mduit_loc.retrieval.api``.
Training budgets are handled in ``pipeline_training``.
"""
from __future__ import annotations

import importlib
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from mduit_loc.errors import MduitError
from mduit_loc.io_utils import write_json_atomic

STAGE_FILE = "stage.json"          # marker written last in a retrieval results folder
TIMINGS_FILE = "timings.json"      # wall seconds per stage, accumulated over (re)runs


@dataclass(frozen=True)
class MethodSpec:
    """A method of the comparison: how to train it and how to index with it."""

    label: str                     # shown in tables ("NetVLAD", "w/o I2I, NCE", "Full", ...)
    key: str                       # folder name ("netvlad", "mduit-full", ...)
    kind: str                      # "netvlad" or "mduit"
    train_flags: tuple[str, ...] = ()   # extra 'mduit-loc train' flags (ablations)
    translate_db: bool = False     # index translated copies of the database (needs the I2I module)
    view: str | None = None        # MDUIT descriptor view ("content:4x4" -> RUN#content:4x4); None: z
    trained_by: str | None = None  # key of the method whose model this one reuses (no training of its own)

    @property
    def run_key(self) -> str:
        """The run folder (``runs/<run_key>``) holding this method's model."""
        return self.trained_by or self.key


@dataclass(frozen=True)
class RetrievalProtocol:
    """How queries are localized; the same for every method of a comparison."""

    per_camera: bool = True
    per_location: bool = True
    pose: str = "top1"
    top_k: int = 10
    batch_size: int = 16
    num_workers: int | None = None
    device: str = "auto"
    progress: bool = True

    def describe(self) -> str:
        masks = [m for m, on in (("same camera", self.per_camera), ("same location", self.per_location)) if on]
        where = f"retrieval restricted to the {' and '.join(masks)}" if masks else "retrieval over the whole map"
        pose = ("the pose of the top-1 database image" if self.pose == "top1"
                else f"the pose from the retrieved database images ({self.pose})")
        return f"{where}; {pose}"


# --- running other commands in-process -------------------------------------------------------
def configure_threads(threads: int | None) -> int:
    """Set torch's intra-op threads for every stage; ``None``: automatic. Returns the number used.

    Automatic: all cores on an idle machine, but one thread when the machine is already busy (load
    average >= cores), because oversubscribed OpenMP threads spin and wait: measured here on a
    shared 2-core machine, an MDUIT tiny step took ~20 s with 2 threads and ~4 s with 1.
    """
    import os

    import torch

    cores = os.cpu_count() or 1
    if threads is None:
        try:
            busy = os.getloadavg()[0] >= cores
        except OSError:  # not available on this platform
            busy = False
        threads = 1 if busy else cores
    if threads < 1:
        raise MduitError(f"--threads must be >= 1, got {threads}")
    torch.set_num_threads(threads)
    return threads


def run_command(command: str, argv: Iterable[object]) -> None:
    """Run ``mduit-loc COMMAND ARGV`` in this process; errors propagate as exceptions."""
    from mduit_loc.cli import COMMANDS, build_parser

    arguments = [command, *(str(a) for a in argv)]
    args = build_parser(command).parse_args(arguments)
    status = importlib.import_module(COMMANDS[command][0]).run(args)
    if status:
        raise MduitError(f"'mduit-loc {' '.join(arguments)}' failed with status {status}")


class StageClock:
    """Prints one header line per stage and keeps the wall seconds of each in ``TIMINGS_FILE``."""

    def __init__(self, out: Path, total: int, prefix: str):
        self.path, self.total, self.prefix, self.number = Path(out) / TIMINGS_FILE, total, prefix, 0
        self.started = time.perf_counter()
        try:
            self.timings = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.timings = {}

    def stage(self, name: str, what: str) -> "_Stage":
        self.number += 1
        return _Stage(self, name, f"[{self.prefix} {self.number}/{self.total}] {what}")

    def record(self, name: str, seconds: float, skipped: bool) -> None:
        if not skipped or name not in self.timings:
            self.timings[name] = {"seconds": round(seconds, 1), "skipped": skipped}
            write_json_atomic(self.path, self.timings)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


class _Stage:
    def __init__(self, clock: StageClock, name: str, header: str):
        self.clock, self.name, self.header, self.skipped = clock, name, header, False

    def skip(self, reason: str) -> None:
        self.skipped = True
        print(f"    skipped: {reason}", file=sys.stderr, flush=True)

    def __enter__(self) -> "_Stage":
        print(self.header, file=sys.stderr, flush=True)
        self.started = time.perf_counter()
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            seconds = time.perf_counter() - self.started
            self.clock.record(self.name, seconds, self.skipped)
            if not self.skipped:
                print(f"    done in {format_seconds(seconds)}", file=sys.stderr, flush=True)


def format_seconds(seconds: float) -> str:
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{seconds:.1f}s"


# --- data ----------------------------------------------------------------------------------
def synthetic_ready(root: Path) -> bool:
    return (Path(root) / "synth.json").is_file()


def holds_nothing(root: Path) -> bool:
    """True when ``root`` is absent or an empty folder (a place to render a benchmark into)."""
    root = Path(root)
    return not root.exists() or (root.is_dir() and not any(root.iterdir()))


def render_synthetic(root: Path, preset: str, seed: int = 0, size: int | None = None,
                     locations: int | None = None, quiet: bool = False) -> Path:
    """Render the synthetic benchmark into ``root`` unless it is there; a half-rendered one is redone.

    Rendering goes to a sibling temporary folder renamed at the end, so ``root`` only ever holds a
    complete dataset.
    """
    root = Path(root)
    if synthetic_ready(root):
        return root
    if root.exists() and any(root.iterdir()):
        raise MduitError(f"{root} exists but holds no synthetic benchmark (no synth.json); remove it or "
                         "choose another output folder")
    partial = root.with_name(root.name + ".rendering")
    if partial.exists():  # our own leftover from an interrupted run
        shutil.rmtree(partial)
    argv = ["--out", partial, "--preset", preset, "--seed", seed]
    argv += ["--size", size] if size else []
    argv += ["--locations", locations] if locations else []
    argv += ["--quiet"] if quiet else []
    run_command("synth", argv)
    if root.exists():
        root.rmdir()
    partial.rename(root)
    return root


# --- retrieval and evaluation ----------------------------------------------------------------
def model_checksum(run_dir: Path) -> str:
    try:
        return str(json.loads((Path(run_dir) / "run.json").read_text(encoding="utf-8"))["checksum"])
    except (OSError, ValueError, KeyError) as err:
        raise MduitError(f"{run_dir}: not a finished training run (run.json without a checksum: {err})") from None


def localize_method(data: Path, run_dir: Path, method: MethodSpec, index_dir: Path, results_dir: Path,
                    protocol: RetrievalProtocol) -> Path:
    """Index the map with the method's model (translated database for MDUIT with I2I), localize the test
    queries; returns ``results_dir/poses.txt``. Skipped when done with the same model."""
    from mduit_loc.retrieval.api import IndexOptions, QueryOptions, build_index, localize

    checksum = model_checksum(run_dir)
    marker = Path(results_dir) / STAGE_FILE
    model = str(Path(run_dir).resolve()) + (f"#{method.view}" if method.view else "")
    wanted = {"model": model, "checksum": checksum, "translate_db": method.translate_db,
              "protocol": {"per_camera": protocol.per_camera, "per_location": protocol.per_location,
                           "pose": protocol.pose, "top_k": protocol.top_k}}
    if _marker_matches(marker, wanted):
        return Path(results_dir) / "poses.txt"
    index_options = IndexOptions(translate_db=method.translate_db, batch_size=protocol.batch_size,
                                 num_workers=protocol.num_workers, device=protocol.device,
                                 progress=protocol.progress)
    build_index(data, model, index_dir, index_options)
    query_options = QueryOptions(top_k=protocol.top_k, per_camera=protocol.per_camera,
                                 per_location=protocol.per_location, pose=protocol.pose, data=str(data),
                                 split="test", batch_size=protocol.batch_size, num_workers=protocol.num_workers,
                                 device=protocol.device, progress=protocol.progress)
    from mduit_loc.datasets import open_dataset

    localize(index_dir, open_dataset(data), query_options, results_dir)
    write_json_atomic(marker, wanted)
    return Path(results_dir) / "poses.txt"


def _marker_matches(marker: Path, wanted: dict) -> bool:
    try:
        return json.loads(marker.read_text(encoding="utf-8")) == wanted
    except (OSError, ValueError):
        return False


def evaluate_poses(data: Path, poses_files: dict[str, Path]):
    """EvaluationResult per method (label -> poses file) against the dataset's test ground truth."""
    from mduit_loc.evaluation.evaluate import evaluate, load_ground_truth
    from mduit_loc.pose_files import read_poses

    ground_truth = load_ground_truth(data, "auto")
    return [evaluate(read_poses(path), ground_truth.poses, ground_truth.meta, method=label)
            for label, path in poses_files.items()]


def write_submissions(data: Path, poses_files: dict[str, Path], out_dir: Path) -> dict[str, Path]:
    """A RobotCar Seasons submission file (rear camera, test list) per method."""
    from mduit_loc.evaluation.submission import (build_submission, check_complete, required_test_queries,
                                                 write_submission)
    from mduit_loc.pose_files import read_poses

    required = required_test_queries(data)
    written = {}
    for key, path in poses_files.items():
        submission = build_submission(read_poses(path), required)
        check_complete(submission, path, ("rear",))
        written[key] = write_submission(Path(out_dir) / f"submission_{key}.txt", submission)
    return written

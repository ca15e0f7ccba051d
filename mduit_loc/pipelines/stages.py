"""Stages shared by ``mduit-loc demo`` and Table 1: render data, index and localize, evaluate, submit.

Every stage is idempotent: it looks for its finished output and skips, so a killed run continues
where it stopped when started again. Each stage calls the typed API of the package doing the work
(``datasets.synthetic.generate``, ``retrieval.api``, ``evaluation``); training is in ``training``.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from mduit_loc.datasets import open_dataset
from mduit_loc.datasets.synthetic import generate, get_preset
from mduit_loc.errors import MduitError
from mduit_loc.evaluation.evaluate import EvaluationResult, evaluate, load_ground_truth
from mduit_loc.evaluation.submission import build_submission, check_complete, required_test_queries, write_submission
from mduit_loc.io_utils import write_json_atomic
from mduit_loc.pipelines.methods import RAW_PIXELS_SPEC, MethodSpec, RetrievalProtocol
from mduit_loc.pose_files import read_poses
from mduit_loc.retrieval.api import (
    ExtractOptions,
    IndexOptions,
    QueryOptions,
    QueryTranslationOptions,
    SearchOptions,
    build_index,
    localize,
)
from mduit_loc.retrieval.descriptor_models import load_descriptor

STAGE_FILE = "stage.json"          # marker written last in a retrieval results folder


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
    chosen = get_preset(preset, image_size=size, n_locations=locations)
    workers = max(1, min(4, os.cpu_count() or 1))  # the output does not depend on it
    result = generate(partial, chosen, seed=seed, workers=workers, progress=not quiet)
    print(f"wrote {result.n_database} database and {result.n_queries} query images ({chosen.n_locations} "
          f"locations, {chosen.image_size} px, {result.n_train_frames} train / {result.n_test_frames} test query "
          f"frames) to {root} in {result.seconds:.1f} s", file=sys.stderr)
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


def method_model(method: MethodSpec, run_dir: Path) -> tuple[str, str]:
    """(descriptor spec, checksum) of ``method``'s model: its run folder (and view), or raw pixels."""
    if method.kind == "raw":
        return RAW_PIXELS_SPEC, load_descriptor(RAW_PIXELS_SPEC).checksum
    return str(Path(run_dir).resolve()) + (f"#{method.view}" if method.view else ""), model_checksum(run_dir)


def localize_method(data: Path, run_dir: Path, method: MethodSpec, index_dir: Path, results_dir: Path,
                    protocol: RetrievalProtocol, translator_dir: Path | None = None) -> Path:
    """Index the map with the method's model (translated database for MDUIT with I2I), localize the test
    queries (translated first by ``translator_dir``'s model when the method says so); returns
    ``results_dir/poses.txt``. Each part is skipped when done with the same models: rows that describe
    the database alike share ``index_dir``."""
    model, checksum = method_model(method, run_dir)
    index_marker = Path(index_dir).with_name(Path(index_dir).name + "." + STAGE_FILE)
    wanted_index: dict[str, Any] = {"model": model, "checksum": checksum, "translate_db": method.translate_db}
    if method.fuse_translations is not None:   # only then: markers of unfused indexes stay valid
        wanted_index["fuse_translations"] = method.fuse_translations
    translation = None
    if method.translate_queries_to is not None:
        if translator_dir is None:
            raise MduitError(f"{method.label}: query translation needs the translator's run folder")
        translation = QueryTranslationOptions(condition=method.translate_queries_to,
                                              translator=str(Path(translator_dir).resolve()))
    wanted = {**wanted_index, "protocol": {"per_camera": protocol.per_camera, "per_location": protocol.per_location,
                                           "pose": protocol.pose, "top_k": protocol.top_k},
              "translate_queries": None if translation is None else
              {"condition": translation.condition, "translator": model_checksum(Path(translator_dir or "."))}}
    marker = Path(results_dir) / STAGE_FILE
    if _marker_matches(marker, wanted):
        return Path(results_dir) / "poses.txt"
    extract = ExtractOptions(batch_size=protocol.batch_size, num_workers=protocol.num_workers,
                             progress=protocol.progress)
    if not (_marker_matches(index_marker, wanted_index) and (Path(index_dir) / "manifest.json").is_file()):
        build_index(data, model, index_dir, IndexOptions(translate_db=method.translate_db, extract=extract,
                                                         fuse_translations=method.fuse_translations,
                                                         device=protocol.device))
        write_json_atomic(index_marker, wanted_index)
    search = SearchOptions(k=protocol.top_k, per_camera=protocol.per_camera, per_location=protocol.per_location)
    query_options = QueryOptions(search=search, extract=extract, pose=protocol.pose, data=str(data), split="test",
                                 device=protocol.device, translate_queries=translation)
    localize(index_dir, open_dataset(data), query_options, results_dir)
    write_json_atomic(marker, wanted)
    return Path(results_dir) / "poses.txt"


def _marker_matches(marker: Path, wanted: dict[str, Any]) -> bool:
    try:
        return bool(json.loads(marker.read_text(encoding="utf-8")) == wanted)
    except (OSError, ValueError):
        return False


def evaluate_poses(data: Path, poses_files: dict[str, Path]) -> list[EvaluationResult]:
    """EvaluationResult per method (label -> poses file) against the dataset's test ground truth."""
    ground_truth = load_ground_truth(data, "auto")
    return [evaluate(read_poses(path), ground_truth.poses, ground_truth.meta, method=label)
            for label, path in poses_files.items()]


def write_submissions(data: Path, poses_files: dict[str, Path], out_dir: Path) -> dict[str, Path]:
    """A RobotCar Seasons submission file (rear camera, test list) per method."""
    required = required_test_queries(data)
    written = {}
    for key, path in poses_files.items():
        submission = build_submission(read_poses(path), required)
        check_complete(submission, path, ("rear",))
        written[key] = write_submission(Path(out_dir) / f"submission_{key}.txt", submission)
    return written

"""What ``mduit-loc query`` writes into ``--out RESULTS`` (all files replaced together, ``output_set``).

- ``pairs.txt``: hloc pairs, ``query db`` per line, ranked best first (``pose_files.write_pairs``);
- ``poses.txt``: ``name qw qx qy qz tx ty tz`` cam_from_world (``pose_files.write_poses``), pose lines
  only (hloc's readers take every line as a pose); its convention and pose method are in summary.json;
- ``scores.csv``: one row per (query, rank): ``query,rank,db_image,score,appearance,db_camera``;
- ``queries.csv``: one row per query: camera, location, number of results, top-1 and its score,
  pose method, where the pose came from (``retrieval`` / ``pnp``), PnP correspondences, inliers
  and status;
- ``failed_images.txt``: query images that could not be read (``--on-error skip``), with reasons;
- ``summary.json``: counts and the options used.
"""
from __future__ import annotations

import csv
from pathlib import Path

from mduit_loc.io_utils import atomic_open, write_json_atomic
from mduit_loc.output_lock import output_lock
from mduit_loc.output_set import staged_outputs
from mduit_loc.pose_files import write_pairs, write_poses

PAIRS_FILE = "pairs.txt"
POSES_FILE = "poses.txt"
SCORES_FILE = "scores.csv"
QUERIES_FILE = "queries.csv"
FAILED_FILE = "failed_images.txt"
SUMMARY_FILE = "summary.json"
MEMBERS = (PAIRS_FILE, POSES_FILE, SCORES_FILE, QUERIES_FILE, FAILED_FILE, SUMMARY_FILE)   # one output set
POSES_FORMAT = {"name": POSES_FILE, "convention": "cam_from_world (COLMAP)", "columns": "name qw qx qy qz tx ty tz"}
SCORES_COLUMNS = ("query", "rank", "db_image", "score", "appearance", "db_camera")
QUERIES_COLUMNS = ("query", "camera", "location", "num_results", "top1", "top1_score", "pose_method",
                   "pose_source", "num_correspondences", "num_inliers", "status")


def write_scores_csv(path: Path, results) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(SCORES_COLUMNS)
        for query, ranked in results.pairs.items():
            for rank, (db_name, score, appearance, camera) in enumerate(
                    zip(ranked, results.scores[query], results.appearances[query], results.db_cameras[query]), 1):
                writer.writerow((query, rank, db_name, f"{score:.6f}", appearance, camera))


def write_queries_csv(path: Path, results) -> None:
    with atomic_open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(QUERIES_COLUMNS)
        for item in results.queries:
            ranked = results.pairs.get(item.name, [])
            scores = results.scores.get(item.name, [])
            refinement = results.refinement.get(item.name)
            source = "none" if item.name not in results.poses else (
                "pnp" if refinement is not None and refinement.refined else "retrieval")
            writer.writerow((
                item.name, item.camera or "", "" if item.location is None else item.location, len(ranked),
                ranked[0] if ranked else "", f"{scores[0]:.6f}" if scores else "", results.pose_method, source,
                refinement.num_correspondences if refinement else "", refinement.num_inliers if refinement else "",
                refinement.status if refinement else results.no_pose.get(item.name, "ok"),
            ))


def write_failed(path: Path, failed) -> None:
    with atomic_open(path, "w", encoding="utf-8") as handle:
        for failure in failed:
            handle.write(f"{failure.path}\t{failure.reason}\n")


def write_results(out_dir: str | Path, results, summary: dict) -> Path:
    """Write the result files as one set (``output_set``): staged, then moved into ``out_dir`` together,
    so a killed run leaves the previous set whole; a ``failed_images.txt`` of an earlier run is removed."""
    out_dir = Path(out_dir)
    with output_lock(out_dir, "query"), staged_outputs(out_dir, MEMBERS) as staged:
        write_pairs(staged.path(PAIRS_FILE), results.pairs)
        write_poses(staged.path(POSES_FILE), results.poses)
        # poses.txt has no header (hloc's readers take every line as a pose): what it holds is said here.
        summary = {**summary, "poses_file": POSES_FORMAT | {"pose_method": results.pose_method}}
        write_scores_csv(staged.path(SCORES_FILE), results)
        write_queries_csv(staged.path(QUERIES_FILE), results)
        if results.failed:
            write_failed(staged.path(FAILED_FILE), results.failed)
        write_json_atomic(staged.path(SUMMARY_FILE), summary)
    return out_dir

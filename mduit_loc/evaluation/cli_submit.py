"""``mduit-loc submit``: write a RobotCar Seasons benchmark submission file from a poses file.

Examples::

    mduit-loc submit --benchmark robotcar-seasons --poses res/poses.txt --out submission.txt --data data/robotcar
    mduit-loc submit --poses res/poses.txt --out submission_v2.txt --v2 --allow-missing

Each line is ``rear/<timestamp>.jpg qw qx qy qz tx ty tz`` (world->camera, camera folder prefixed,
no condition); ``--v2`` writes ``.png`` names as the v2 test list. Only the rear camera is written
(the server scores it) unless ``--cameras`` asks for more. With ``--data``, every test query of the
dataset (robotcar_v2_test.txt) must have a pose; without it, the poses file's own queries are written.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mduit_loc.evaluation.submission import (
    build_submission,
    check_complete,
    parse_cameras,
    read_submission_poses,
    required_test_queries,
    write_submission,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--benchmark", choices=("robotcar-seasons",), default="robotcar-seasons",
                        help="benchmark format (default: robotcar-seasons)")
    parser.add_argument("--poses", required=True, type=Path, help="poses file from 'mduit-loc query'")
    parser.add_argument("--out", required=True, type=Path, help="submission file to write")
    parser.add_argument("--v2", action="store_true", help="RobotCar Seasons v2: '.png' image names")
    parser.add_argument("--cameras", default="rear",
                        help="cameras written: rear (default; the only one the server scores), all, or a list")
    parser.add_argument("--data", type=Path,
                        help="dataset folder: its test list (robotcar_v2_test.txt) says which queries must be present")
    parser.add_argument("--allow-missing", action="store_true",
                        help="write the file even when test queries have no pose (they score as failures)")


def run(args) -> int:
    cameras = parse_cameras(args.cameras)
    poses = read_submission_poses(args.poses)
    required = required_test_queries(args.data) if args.data is not None else None
    submission = build_submission(poses, required, cameras, args.v2)
    if not args.allow_missing:
        check_complete(submission, args.poses, cameras)
    write_submission(args.out, submission)
    notes = []
    if submission.missing:
        notes.append(f"{len(submission.missing)} test queries missing (allowed)")
    if submission.skipped:
        notes.append(f"{len(submission.skipped)} poses of other cameras or not in the test list left out")
    suffix = f"; {'; '.join(notes)}" if notes else ""
    print(f"wrote {len(submission.lines)} poses ({'/'.join(cameras)}, {'.png' if args.v2 else '.jpg'} names) "
          f"to {args.out}{suffix}", file=sys.stderr)
    return 0

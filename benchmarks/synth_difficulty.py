"""How hard is the synthetic benchmark? A naive global descriptor (a normalised grey thumbnail)
retrieves the top-1 database image of the same camera; its pose is the estimate. Prints the
day/night recall at the RobotCar Seasons thresholds for each preset, over the test queries of
all three cameras (ground truth from ground_truth/robotcar_v2_test_gt.txt).

    python benchmarks/synth_difficulty.py --presets tiny small [--seed 0] [--data-root DIR]

Real NetVLAD on RobotCar Seasons reaches about 91 % (day) and 16 % (night) at (5 m, 10 deg).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from mduit_loc.datasets.images import load_image
from mduit_loc.datasets.robotcar import read_robotcar_seasons
from mduit_loc.datasets.robotcar_files import read_test_ground_truth
from mduit_loc.datasets.synthetic import generate, get_preset
from mduit_loc.poses import pose_errors

THRESHOLDS = ((0.25, 2.0), (0.5, 5.0), (5.0, 10.0))
THUMBNAIL = 16


def thumbnail_descriptor(path: Path) -> np.ndarray:
    """Grey THUMBNAIL x THUMBNAIL image, zero mean, unit norm."""
    grey = load_image(path, size=(THUMBNAIL, THUMBNAIL)).astype(np.float32).mean(axis=2).ravel()
    grey -= grey.mean()
    return grey / max(float(np.linalg.norm(grey)), 1e-6)


def difficulty(root: Path) -> dict[str, list[float]]:
    """Recall (%) per day/night at each threshold, top-1 retrieval among the same camera."""
    dataset = read_robotcar_seasons(root)
    truth = read_test_ground_truth(root)
    database = {camera: [d for d in dataset.database if d.camera == camera] for camera in dataset.intrinsics}
    descriptors = {camera: np.stack([thumbnail_descriptor(dataset.image_path(d.name)) for d in images])
                   for camera, images in database.items()}
    successes: dict[str, list[np.ndarray]] = {"day": [], "night": []}
    for query in dataset.queries:
        if query.name not in truth:
            continue
        scores = descriptors[query.camera] @ thumbnail_descriptor(dataset.image_path(query.name))
        best = database[query.camera][int(np.argmax(scores))]
        position, rotation = pose_errors(best.pose, truth[query.name])
        successes[query.day_night].append(np.array([position <= p and rotation <= r for p, r in THRESHOLDS]))
    return {key: (100.0 * np.mean(values, axis=0)).tolist() for key, values in successes.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "small"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--data-root", type=Path, default=None,
                        help="reuse/keep datasets in DATA_ROOT/<preset>-seed<N> instead of a temporary folder")
    args = parser.parse_args(argv)
    header = "preset | images (db/query) | render s | " + " | ".join(
        f"{dn} {p:g} m {r:g} deg" for dn in ("day", "night") for p, r in THRESHOLDS)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.presets:
            base = args.data_root if args.data_root is not None else Path(tmp)
            root = base / f"{name}-seed{args.seed}"
            seconds = float("nan")
            if not (root / "synth.json").is_file():
                result = generate(root, get_preset(name), seed=args.seed, workers=args.workers, progress=False)
                seconds = result.seconds
            started = time.perf_counter()
            recall = difficulty(root)
            n_db = len(list((root / "images" / "overcast-reference").rglob("*.jpg")))
            n_query = len(list((root / "images").rglob("*.jpg"))) - n_db
            values = " | ".join(f"{v:5.1f}" for key in ("day", "night") for v in recall[key])
            rows.append(f"{name} | {n_db}/{n_query} | {seconds:.0f} | {values}")
            print(f"{name}: evaluated in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    print(header)
    print("|".join(["---"] * (3 + 2 * len(THRESHOLDS))))
    for row in rows:
        print(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())

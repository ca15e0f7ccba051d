"""How hard is the synthetic benchmark? A naive global descriptor (a normalised grey thumbnail)
retrieves the top-1 database image of the same camera; its pose is the estimate. Prints the
day/night recall at the RobotCar Seasons thresholds for each preset, over the test queries of
all three cameras (ground truth from ground_truth/robotcar_v2_test_gt.txt), scored by the
project's evaluator (``mduit_loc.evaluation.evaluate``: pooled day-all / night-all), and the
recall at (5 m, 10 deg) per condition.

    .venv/bin/python benchmarks/synth_difficulty.py --presets tiny small [--seed 0] [--size PX] [--data-root DIR]

Real NetVLAD on RobotCar Seasons reaches about 91 % (day) and 16 % (night) at (5 m, 10 deg).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mduit_loc.datasets.images import load_image  # noqa: E402
from mduit_loc.datasets.layout import QUERY_CONDITIONS  # noqa: E402
from mduit_loc.datasets.robotcar import read_robotcar_seasons  # noqa: E402
from mduit_loc.datasets.synthetic import generate, get_preset  # noqa: E402
from mduit_loc.evaluation.evaluate import DAY_ALL, NIGHT_ALL, EvaluationResult, evaluate, load_ground_truth  # noqa: E402
from mduit_loc.evaluation.metrics import DEFAULT_THRESHOLDS  # noqa: E402

THUMBNAIL = 16


def thumbnail_descriptor(path: Path) -> np.ndarray:
    """Grey THUMBNAIL x THUMBNAIL image, zero mean, unit norm."""
    grey = load_image(path, size=(THUMBNAIL, THUMBNAIL)).astype(np.float32).mean(axis=2).ravel()
    grey -= grey.mean()
    return grey / max(float(np.linalg.norm(grey)), 1e-6)


def difficulty(root: Path) -> EvaluationResult:
    """Top-1 thumbnail retrieval among the database images of the query's camera, scored on the
    test split (all cameras) by the project's evaluator."""
    dataset = read_robotcar_seasons(root)
    truth = load_ground_truth(root, "test", dataset)
    database = {camera: [d for d in dataset.database if d.camera == camera] for camera in dataset.intrinsics}
    descriptors = {camera: np.stack([thumbnail_descriptor(dataset.image_path(d.name)) for d in images])
                   for camera, images in database.items()}
    estimates = {}
    for query in dataset.queries:
        if query.name in truth.poses:
            scores = descriptors[query.camera] @ thumbnail_descriptor(dataset.image_path(query.name))
            estimates[query.name] = database[query.camera][int(np.argmax(scores))].pose
    return evaluate(estimates, truth.poses, truth.meta, DEFAULT_THRESHOLDS, method="thumbnail top-1")


def _render(root: Path, name: str, seed: int, workers: int, size: int | None) -> float:
    """Renders the preset unless ``root`` already holds it; seconds taken (nan when reused)."""
    if (root / "synth.json").is_file():
        return float("nan")
    preset = get_preset(name) if size is None else get_preset(name).with_overrides(image_size=size)
    return generate(root, preset, seed=seed, workers=workers, progress=False).seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", "--preset", nargs="+", default=["tiny", "small"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--size", type=int, default=None,
                        help="render every preset at this image size (e.g. 224 to measure `full`'s 49 locations "
                             "without its 7-hour 1024-px render); default: each preset's own")
    parser.add_argument("--data-root", type=Path, default=None,
                        help="reuse/keep datasets in DATA_ROOT/<preset>-seed<N> instead of a temporary folder")
    args = parser.parse_args(argv)
    labels = [t.label for t in DEFAULT_THRESHOLDS]
    summary = ["| preset | db / query images | test queries (day / night) | render s | "
               + " | ".join(f"day {x}" for x in labels) + " | " + " | ".join(f"night {x}" for x in labels) + " |",
               "|" + "---|" * (4 + 2 * len(labels))]
    per_condition = ["| preset | " + " | ".join(QUERY_CONDITIONS) + " |", "|" + "---|" * (1 + len(QUERY_CONDITIONS))]
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.presets:
            label = name if args.size is None else f"{name}@{args.size}px"
            root = (args.data_root if args.data_root is not None else Path(tmp)) / f"{label}-seed{args.seed}"
            seconds = _render(root, name, args.seed, args.workers, args.size)
            started = time.perf_counter()
            result = difficulty(root)
            day, night = result.subset(DAY_ALL), result.subset(NIGHT_ALL)
            n_db = len(list((root / "images" / "overcast-reference").rglob("*.jpg")))
            n_query = len(list((root / "images").rglob("*.jpg"))) - n_db
            values = " | ".join(f"{100 * v:.1f}" for v in (*day.recalls, *night.recalls))
            rendered = "reused" if np.isnan(seconds) else f"{seconds:.0f}"
            summary.append(f"| {label} | {n_db} / {n_query} | {day.n} / {night.n} | {rendered} | {values} |")
            coarse = [100 * result.subset(c, "condition").recalls[-1] for c in QUERY_CONDITIONS]
            per_condition.append(f"| {label} | " + " | ".join(f"{v:.1f}" for v in coarse) + " |")
            print(f"{label}: evaluated in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    print("\n".join(summary))
    print(f"\nRecall (%) at {labels[-1]} per condition:\n")
    print("\n".join(per_condition))
    return 0


if __name__ == "__main__":
    sys.exit(main())

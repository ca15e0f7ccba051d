"""Render the synthetic benchmark and write it in the RobotCar Seasons layout.

Outputs (through ``RobotCarSeasonsWriter``): images of every condition and camera, intrinsics,
extrinsics, ``3D-models/all-merged/all.nvm`` (database poses and 3D points from exact depth, each
observed by every nearby database image that sees it: ``tracks``), per-location query lists and
COLMAP models (images named ``.png`` as in the real dataset), ``robotcar_v2_train.txt`` / ``robotcar_v2_test.txt``
(rear camera, as the real v2 files), the test ground truth of all cameras in
``ground_truth/robotcar_v2_test_gt.txt``, the aligned set (``aligned/``: ``preset.aligned_poses``
database poses rendered under every condition, see ``mduit_loc.datasets.aligned``) and ``synth.json``
(what was generated).
Every random choice is seeded from (seed, purpose, condition, location, frame), so a re-run
writes the same bytes, whatever the number of worker processes.
"""
from __future__ import annotations

import dataclasses
import multiprocessing
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mduit_loc.datasets.aligned import ALIGNED_DIR, write_aligned_list
from mduit_loc.datasets.images import save_image
from mduit_loc.datasets.layout import ALL_CONDITIONS, CAMERAS, QUERY_CONDITIONS, REFERENCE_CONDITION
from mduit_loc.datasets.robotcar_writer import RobotCarSeasonsWriter
from mduit_loc.datasets.synthetic.appearance import Scene, depth_map, render_view
from mduit_loc.datasets.synthetic.conditions import CONDITION_INDEX
from mduit_loc.datasets.synthetic.model_points import DatabasePoints, database_points, pixel_grid
from mduit_loc.datasets.synthetic.noise import rng_for
from mduit_loc.datasets.synthetic.presets import SynthPreset
from mduit_loc.datasets.synthetic.tracks import add_tracks
from mduit_loc.datasets.synthetic.traversals import Frame, Traversal, car_from_camera, intrinsics_for, make_traversal
from mduit_loc.datasets.synthetic.world import World, build_world
from mduit_loc.errors import MduitError
from mduit_loc.io_utils import write_json_atomic

FORMAT_VERSION = 2               # 2: multi-view tracks, .png names in the location models, aligned/
MANIFEST = "synth.json"          # written last: its presence marks a complete dataset
RENDERING_MARKER = ".mduit-synth-rendering"  # present while rendering (and after an interrupted run)


@dataclass
class SynthResult:
    root: Path
    n_database: int
    n_queries: int
    n_train_frames: int
    n_test_frames: int
    seconds: float
    n_aligned_poses: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)  # images, aligned set, 3D points, tracks


@dataclass
class Town:
    """The world and all traversals: a pure function of (preset, seed)."""

    preset: SynthPreset
    world: World
    traversals: dict[str, Traversal]
    _scenes: dict[tuple[str, str], Scene] = field(default_factory=dict, repr=False)

    @classmethod
    def build(cls, preset: SynthPreset, seed: int) -> "Town":
        world = build_world(seed, preset.n_locations, preset.location_length_m, preset.location_spacing_m)
        return cls(preset, world, {c: make_traversal(preset, world, c) for c in ALL_CONDITIONS})

    def scene(self, condition: str, appearance: str | None = None) -> Scene:
        """The static town with ``condition``'s transient objects, lit and weathered as ``appearance``
        (default: ``condition``, as in the dataset); built once per pair."""
        key = (condition, appearance or condition)
        if key not in self._scenes:
            traversal = self.traversals[condition]
            if key[1] != condition:
                traversal = dataclasses.replace(traversal, condition=key[1])
            self._scenes[key] = Scene(self.world, traversal)
        return self._scenes[key]

    def frame(self, name: str) -> Frame:
        """The frame of an image name ``condition/camera/timestamp.jpg`` written by ``generate``."""
        condition, _, file_name = name.split("/")
        timestamp = int(file_name.split(".")[0])
        for frame in self.traversals[condition].frames:
            if frame.timestamp == timestamp:
                return frame
        raise MduitError(f"no {condition} frame with timestamp {timestamp} in this synthetic town")

    def render(self, condition: str, frame_index: int, camera: str, appearance: str | None = None) -> np.ndarray:
        """The image of one camera of a frame of ``condition``'s traversal; with ``appearance``, the
        same scene (same transient objects) under another condition's light, weather and season."""
        frame = self.traversals[condition].frames[frame_index]
        return render_view(self.scene(condition, appearance), frame, camera, self.preset.image_size,
                           self.preset.supersample, self.preset.max_view_distance_m)

    def depth(self, condition: str, frame_index: int, camera: str) -> np.ndarray:
        """(size, size) z-depth in metres of the image ``render(condition, frame_index, camera)``."""
        frame = self.traversals[condition].frames[frame_index]
        return depth_map(self.scene(condition), frame, camera, self.preset.image_size, self.preset.max_view_distance_m)


# --- rendering, optionally in worker processes -------------------------------------------
_WORKER_TOWN: Town | None = None


def _init_worker(preset: SynthPreset, seed: int) -> None:
    global _WORKER_TOWN
    os.environ["OMP_NUM_THREADS"] = "1"
    _WORKER_TOWN = Town.build(preset, seed)


RenderJob = tuple[str, int, str, str | None]  # Town.render's condition, frame index, camera, appearance


def _render_job(job: RenderJob) -> np.ndarray:
    assert _WORKER_TOWN is not None
    return _WORKER_TOWN.render(*job)


def _render_all(town: Town, jobs: list[RenderJob], workers: int, seed: int, progress: bool):
    """Yields (job, image) in job order; the order never depends on the number of workers."""
    bar = _progress(len(jobs), progress)
    if workers <= 1:
        for job in jobs:
            yield job, town.render(*job)
            bar.update(1)
    else:
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        with multiprocessing.get_context(method).Pool(workers, _init_worker, (town.preset, seed)) as pool:
            for job, image in zip(jobs, pool.imap(_render_job, jobs, chunksize=4)):
                yield job, image
                bar.update(1)
    bar.close()


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc="rendering", unit="img", disable=not enabled or None, file=sys.stderr,
                leave=False)


# --- splits -------------------------------------------------------------------------------
def split_frames(town: Town, seed: int) -> dict[str, set[int]]:
    """Per query condition, the frame indices whose ground truth is public (train split)."""
    train = {}
    for condition in QUERY_CONDITIONS:
        n = len(town.traversals[condition].frames)
        n_train = min(max(1, int(round(town.preset.train_fraction * n))), n - 1) if n > 1 else 0
        order = rng_for(seed, 600, CONDITION_INDEX[condition]).permutation(n)
        train[condition] = set(int(i) for i in order[:n_train])
    return train


# --- the whole dataset --------------------------------------------------------------------
def prepare_output(root: Path, overwrite: bool) -> None:
    """Refuse to mix with other files; with ``overwrite``, only a previous synthetic dataset (complete
    or interrupted) is removed. Marks ``root`` as being rendered until ``generate`` finishes."""
    if root.exists() and not root.is_dir():
        raise MduitError(f"output {root} is a file; --out must be a folder")
    if root.exists() and any(root.iterdir()):
        interrupted = (root / RENDERING_MARKER).is_file()
        if not overwrite:
            state = "holds an interrupted 'mduit-loc synth' run" if interrupted else "is not empty"
            raise MduitError(f"output folder {root} {state}; choose another --out or pass --overwrite "
                             f"(only a folder written by 'mduit-loc synth' is overwritten)")
        if not (root / MANIFEST).is_file() and not interrupted:
            raise MduitError(f"refusing to overwrite {root}: it has no {MANIFEST}, so it was not written by "
                             f"'mduit-loc synth'")
        for child in root.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    root.mkdir(parents=True, exist_ok=True)
    (root / RENDERING_MARKER).write_text("rendering; removed when 'mduit-loc synth' finishes\n")


def generate(root: str | Path, preset: SynthPreset, seed: int = 0, workers: int = 1, progress: bool = True,
             overwrite: bool = False) -> SynthResult:
    started = time.perf_counter()
    root = Path(root)
    prepare_output(root, overwrite)
    town = Town.build(preset, seed)
    stage_seconds: dict[str, float] = {}
    writer = RobotCarSeasonsWriter(root)
    for camera in CAMERAS:
        writer.write_intrinsics(camera, intrinsics_for(camera, preset.image_size))
        writer.write_extrinsics(camera, car_from_camera(camera))

    jobs: list[RenderJob] = [(condition, frame.index, camera, None) for condition in ALL_CONDITIONS
                             for frame in town.traversals[condition].frames for camera in CAMERAS]
    n_dataset_jobs = len(jobs)
    aligned = aligned_poses(town)
    # the reference condition's aligned images are the database images: copied, not rendered again
    jobs += [(REFERENCE_CONDITION, index, camera, condition) for index, camera in aligned
             for condition in QUERY_CONDITIONS]
    grid = pixel_grid(preset.image_size, preset.points_per_image)
    grid_colours: dict[tuple[int, str], np.ndarray] = {}
    stage_started = time.perf_counter()
    for k, (job, image) in enumerate(_render_all(town, jobs, workers, seed, progress)):
        condition, index, camera, appearance = job
        frame = town.traversals[condition].frames[index]
        if k == n_dataset_jobs:
            stage_seconds["images"] = time.perf_counter() - stage_started
        if appearance is not None:
            save_image(root / ALIGNED_DIR / appearance / camera / f"{frame.timestamp}.jpg", image,
                       quality=preset.jpeg_quality)
            continue
        writer.write_image(frame.name(camera), image, quality=preset.jpeg_quality)
        if condition == REFERENCE_CONDITION:
            grid_colours[(index, camera)] = image[grid[:, 0], grid[:, 1]]
    stage_seconds.setdefault("images", time.perf_counter() - stage_started)
    reference = town.traversals[REFERENCE_CONDITION]
    _write_aligned_set(root, writer, reference, aligned)
    stage_seconds["aligned set"] = time.perf_counter() - stage_started - stage_seconds["images"]

    stage_started = time.perf_counter()
    points = database_points(town.scene(REFERENCE_CONDITION), preset, grid_colours)
    stage_seconds["3D points"] = time.perf_counter() - stage_started
    points = add_tracks(town.scene(REFERENCE_CONDITION), preset, points, progress)
    stage_seconds["tracks"] = time.perf_counter() - stage_started - stage_seconds["3D points"]
    _write_models(writer, town, reference, points)
    train = split_frames(town, seed)
    n_train, n_test = _write_queries(writer, town, train)
    n_db = len(reference.frames) * len(CAMERAS)
    n_queries = sum(len(town.traversals[c].frames) for c in QUERY_CONDITIONS) * len(CAMERAS)
    write_json_atomic(root / MANIFEST, {
        "generator": "mduit-loc synth", "format_version": FORMAT_VERSION, "seed": seed,
        "preset": asdict(preset), "database_images": n_db, "query_images": n_queries,
        "train_frames": n_train, "test_frames": n_test, "locations": preset.n_locations,
        "route_length_m": round(town.world.route.length, 3),
        "aligned_poses": len(aligned), "aligned_conditions": list(ALL_CONDITIONS),
    })
    (root / RENDERING_MARKER).unlink()
    return SynthResult(root, n_db, n_queries, n_train, n_test, time.perf_counter() - started, len(aligned),
                       stage_seconds)


def aligned_poses(town: Town) -> list[tuple[int, str]]:
    """(frame index, camera) of the aligned set's database poses: ``preset.aligned_poses`` of them (all
    when there are fewer), evenly spread along the route (so over every location), the cameras in turn."""
    if town.preset.aligned_poses < 0:
        raise MduitError(f"synthetic preset {town.preset.name!r}: aligned_poses must be >= 0, "
                         f"got {town.preset.aligned_poses}")
    frames = town.traversals[REFERENCE_CONDITION].frames
    count = min(town.preset.aligned_poses, len(frames) * len(CAMERAS))
    if count == len(frames) * len(CAMERAS):
        return [(frame.index, camera) for frame in frames for camera in CAMERAS]
    # at most 3 consecutive picks share a frame (count < 3 frames), and they take different cameras
    return [(frames[(2 * j + 1) * len(frames) // (2 * count)].index, CAMERAS[j % len(CAMERAS)])
            for j in range(count)]


def _write_aligned_set(root: Path, writer: RobotCarSeasonsWriter, reference: Traversal,
                       aligned: list[tuple[int, str]]) -> None:
    """The reference images of the aligned poses (copies of the database images) and the list."""
    names = []
    for index, camera in aligned:
        frame = reference.frames[index]
        target = root / ALIGNED_DIR / REFERENCE_CONDITION / camera / f"{frame.timestamp}.jpg"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(writer.image_path(frame.name(camera)), target)
        names += [f"{condition}/{camera}/{frame.timestamp}.jpg" for condition in ALL_CONDITIONS]
    write_aligned_list(root, names)


def _write_models(writer: RobotCarSeasonsWriter, town: Town, reference: Traversal, points: DatabasePoints) -> None:
    entries = [(frame.name(camera), frame.camera_pose(camera), intrinsics_for(camera, town.preset.image_size))
               for frame in reference.frames for camera in CAMERAS]
    writer.write_nvm(entries, points.xyz, points.rgb, points.nvm_observations(town.preset.image_size))
    for location in range(1, town.preset.n_locations + 1):
        images = [k for k, (frame, _) in enumerate(_db_index(reference)) if frame.location == location]
        keypoints, point_ids, xyz, rgb = points.location_model(images)
        writer.write_location_model(location, [entries[k] for k in images], keypoints, point_ids, xyz, rgb)


def _db_index(reference: Traversal) -> list[tuple[Frame, str]]:
    """Database images in NVM order: frame-major, then camera."""
    return [(frame, camera) for frame in reference.frames for camera in CAMERAS]


def _write_queries(writer: RobotCarSeasonsWriter, town: Town, train: dict[str, set[int]]) -> tuple[int, int]:
    lists: dict[int, list[str]] = {loc: [] for loc in range(1, town.preset.n_locations + 1)}
    train_entries, test_names, test_truth = [], [], []
    for condition in QUERY_CONDITIONS:
        for frame in town.traversals[condition].frames:
            lists[frame.location] += [frame.name(camera) for camera in CAMERAS]
            if frame.index in train[condition]:
                train_entries.append((frame.name("rear"), frame.camera_pose("rear")))
            else:
                test_names.append(frame.name("rear"))
                test_truth += [(frame.name(camera), frame.camera_pose(camera)) for camera in CAMERAS]
    writer.write_query_lists(lists)
    writer.write_train(train_entries)
    writer.write_test(test_names)
    writer.write_test_ground_truth(test_truth)
    return len(train_entries), len(test_names)

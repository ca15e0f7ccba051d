"""Nordland summer / winter: a real cross-season place-recognition check (``benchmarks/bench_nordland.py``).

Protocol (stated with every result):
- Frames: the file names present in both ``summer/`` and ``winter/`` (same name = same place),
  ordered by frame number. The first half of the route trains, the second half tests, so no test
  place was seen in training.
- Training data and supervision, the same for every trained method: the training frames of both
  seasons, and which of them show the same place. MDUIT reads them as a folder per domain
  (``summer/``, ``winter/``) whose file names are shared: the same name is the same place (its
  positive is the same frame in the other season, any other frame may be a negative). NetVLAD needs
  poses, so the same images are also written as a COLMAP map with poses on a straight line, one
  frame step = ``SPACING_M`` metres apart: with its thresholds (positives within 7 m, negatives
  beyond 25 m) the positive of a frame is again the same frame in the other season.
- Test: winter queries against the summer database of the test half; a query is correct when its
  top-1 database frame is within +-``TOLERANCE_FRAMES`` frame steps of its own frame (one step = the
  spacing of the file numbers, 10 original frames here).
"""
from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from mduit_loc.datasets.colmap_text import ColmapImage, write_colmap_text
from mduit_loc.datasets.images import load_image
from mduit_loc.datasets.types import Intrinsics
from mduit_loc.errors import DataNotFoundError, FormatError, MduitError
from mduit_loc.poses import yaw_pose
from mduit_loc.retrieval.api import (
    AppearanceOptions,
    ExtractOptions,
    IndexOptions,
    QueryItem,
    QueryOptions,
    QueryTranslationOptions,
    SearchOptions,
    build_index,
    localize,
)
from mduit_loc.runtime import default_device
from mduit_loc.translation.grid import GridOptions
from mduit_loc.translation.translate import translate_images

SEASONS = ("summer", "winter")
TOLERANCE_FRAMES = 2
SPACING_M = 10.0
_FRAME = re.compile(r"(\d+)\.(png|jpg|jpeg)$", re.IGNORECASE)


@dataclass(frozen=True)
class NordlandSplit:
    train: list[str]               # file names, ordered by frame number
    test: list[str]
    frame_step: int                # difference of consecutive frame numbers (10 here)


def missing_reason(root: Path) -> str | None:
    """Why the Nordland data cannot be used, or None when it can."""
    root = Path(root)
    if not root.is_dir():
        return f"{root} not found (the Nordland summer/winter data; see its README)"
    absent = [season for season in SEASONS if not (root / season).is_dir()]
    if absent:
        return f"{root} has no {' or '.join(absent)} folder"
    return None


def frame_number(name: str) -> int:
    """``images-00010.png`` -> 10."""
    match = _FRAME.search(name)
    if match is None:
        raise FormatError(name, None, "a frame file name ending in its number, e.g. images-00010.png", got=name)
    return int(match.group(1))


def list_frames(root: Path) -> list[str]:
    """File names present in both seasons, ordered by frame number."""
    names = [{p.name for p in (Path(root) / season).iterdir() if _FRAME.search(p.name)} for season in SEASONS]
    common = sorted(names[0] & names[1], key=frame_number)
    if len(common) < 10:
        raise DataNotFoundError(root, f"Nordland frames present in both seasons (found {len(common)})")
    return common


def typical_step(frames: Sequence[str]) -> int:
    numbers = [frame_number(n) for n in frames]
    return Counter(b - a for a, b in zip(numbers, numbers[1:])).most_common(1)[0][0]


def split_frames(frames: Sequence[str], train_fraction: float = 0.5) -> NordlandSplit:
    """The first ``train_fraction`` of the route trains, the rest tests (disjoint places)."""
    if not 0.0 < train_fraction < 1.0:
        raise MduitError(f"train fraction must be in (0, 1), got {train_fraction}")
    cut = int(round(len(frames) * train_fraction))
    return NordlandSplit(list(frames[:cut]), list(frames[cut:]), typical_step(frames))


def correct_within(query_frames: Sequence[int], retrieved_frames: Sequence[int], frame_step: int,
                   tolerance: int = TOLERANCE_FRAMES) -> np.ndarray:
    """Boolean per query: retrieved frame within +-``tolerance`` frame steps (inclusive) of the query's."""
    query = np.asarray(query_frames, dtype=np.int64)
    retrieved = np.asarray(retrieved_frames, dtype=np.int64)
    if query.shape != retrieved.shape:
        raise MduitError(f"{len(query)} queries but {len(retrieved)} retrieved frames")
    return np.abs(query - retrieved) <= tolerance * frame_step


def recall_at(ranked: dict[str, list[str]], queries: Sequence[str], k: int, frame_step: int,
              tolerance: int = TOLERANCE_FRAMES) -> float:
    """Share of ``queries`` with a correct frame among their top ``k`` (a query without results fails)."""
    if not queries:
        raise MduitError("no queries to score")
    hits = 0
    for name in queries:
        retrieved = [frame_number(n) for n in ranked.get(name, [])[:k]]
        if retrieved and correct_within([frame_number(name)] * len(retrieved), retrieved, frame_step,
                                        tolerance).any():
            hits += 1
    return hits / len(queries)


# --- layouts for the trainers and the index ------------------------------------------------------
def _link(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        os.symlink(Path(source).resolve(), target)


def write_domain_folders(root: Path, frames: Sequence[str], out: Path) -> Path:
    """``out/summer/<frame>``, ``out/winter/<frame>`` (symlinks): MDUIT's folder-per-domain layout."""
    for season in SEASONS:
        for name in frames:
            _link(Path(root) / season / name, Path(out) / season / name)
    return Path(out)


def write_posed_map(root: Path, frames: Sequence[str], seasons: Sequence[str], out: Path, frame_step: int) -> Path:
    """A COLMAP map of ``seasons`` x ``frames`` (``out/sparse`` + ``out/images``), poses on a straight line."""
    height, width = load_image(Path(root) / seasons[0] / frames[0]).shape[:2]
    camera = Intrinsics(float(width), float(width), width / 2.0, height / 2.0, width, height)
    images = []
    for season in seasons:
        for name in frames:
            _link(Path(root) / season / name, Path(out) / "images" / season / name)
            position = (frame_number(name) / frame_step * SPACING_M, 0.0, 0.0)
            images.append(ColmapImage(f"{season}/{name}", yaw_pose(0.0, position), 1))
    if not (Path(out) / "sparse" / "images.txt").is_file():
        write_colmap_text(Path(out) / "sparse", {1: camera}, images)
    return Path(out)


# --- retrieval and the benchmark -----------------------------------------------------------------
@dataclass(frozen=True)
class NordlandRow:
    method: str
    top1_exact: float              # top-1 on the query's own frame
    top1: float                    # top-1 within +-TOLERANCE_FRAMES (the protocol's number)
    top5: float                    # any of the top 5 within +-TOLERANCE_FRAMES
    note: str = ""


def retrieve_ranked(test_map: Path, model: str | Path, query_root: Path, split: NordlandSplit, index_dir: Path,
                    translate_db: bool = False, appearance_data: Path | None = None, exemplars: int = 3,
                    num_workers: int | None = None, progress: bool = True,
                    device: torch.device | None = None, translate_queries_with: Path | None = None,
                    reuse_index: bool = False, fuse_translations: float | None = None) -> dict[str, list[str]]:
    """Winter test frames -> summer test frames ranked by the model (``retrieval.api``), names as
    ``<season>/<frame>``; with ``translate_db`` the summer map is also indexed in winter appearances;
    ``fuse_translations``: those copies fused into each image's vector (``IndexOptions``);
    with ``translate_queries_with`` (an MDUIT run) each winter query is first translated into summer.
    ``reuse_index``: query an index already built in ``index_dir`` by the same call without queries
    translated."""
    device = device or default_device()
    extract = ExtractOptions(num_workers=num_workers, progress=progress)
    appearances = AppearanceOptions(per_condition=exemplars, conditions=["winter"],
                                    appearance_data=str(appearance_data) if appearance_data else None)
    if not (reuse_index and (Path(index_dir) / "manifest.json").is_file()):
        build_index(test_map, str(model), index_dir,
                    IndexOptions(translate_db=translate_db, fuse_translations=fuse_translations,
                                 appearances=appearances, extract=extract, device=device))
    queries = [QueryItem(f"winter/{name}", Path(query_root) / "winter" / name) for name in split.test]
    translation = (QueryTranslationOptions(condition="summer", translator=str(Path(translate_queries_with).resolve()))
                   if translate_queries_with is not None else None)
    options = QueryOptions(search=SearchOptions(k=5, per_camera=False, per_location=False), extract=extract,
                           device=device, translate_queries=translation)
    results = localize(index_dir, queries, options)
    return results.pairs


def score_ranked(method: str, ranked: dict[str, list[str]], split: NordlandSplit, note: str = "") -> NordlandRow:
    names = [f"winter/{name}" for name in split.test]
    return NordlandRow(method, recall_at(ranked, names, 1, split.frame_step, 0),
                       recall_at(ranked, names, 1, split.frame_step), recall_at(ranked, names, 5, split.frame_step),
                       note)


def rows_markdown(rows: Sequence[NordlandRow], split: NordlandSplit) -> str:
    chance = (2 * TOLERANCE_FRAMES + 1) / len(split.test)
    lines = [f"| Method | top-1 exact frame (%) | top-1 within ±{TOLERANCE_FRAMES} (%) | "
             f"top-5 within ±{TOLERANCE_FRAMES} (%) | Notes |", "|---|---:|---:|---:|---|"]
    lines += [f"| {r.method} | {100 * r.top1_exact:.1f} | {100 * r.top1:.1f} | {100 * r.top5:.1f} | {r.note} |"
              for r in rows]
    lines += ["", f"_Winter queries ({len(split.test)}) against the summer database ({len(split.test)}) of the test "
                  f"half of the route (frames {frame_number(split.test[0])}-{frame_number(split.test[-1])}); "
                  f"trained on frames {frame_number(split.train[0])}-{frame_number(split.train[-1])}. "
                  f"Chance for top-1 within ±{TOLERANCE_FRAMES}: about {100 * chance:.1f} %._"]
    return "\n".join(lines)


def translation_examples(mduit_run: Path, root: Path, split: NordlandSplit, out: Path, count: int = 5,
                         device: torch.device | None = None) -> Path:
    """``count`` winter test frames, evenly spaced along the test half, translated into summer (the
    domain-mean appearance) with the true summer frame of each beneath: ``out/grid.png``."""
    if not split.test:
        raise MduitError("the Nordland split has no test frames to translate")
    picks = [split.test[int(i)] for i in np.linspace(0, len(split.test) - 1, min(count, len(split.test)))]
    winter = [Path(root) / "winter" / name for name in picks]
    truth = [[Path(root) / "summer" / name] for name in picks]
    grid = GridOptions(truth_note="true summer: the same frame of the summer traversal (real; G never saw it)")
    return translate_images(mduit_run, winter, ["domain:summer"], out, device=device or default_device(),
                            truth=truth, grid=grid).grid

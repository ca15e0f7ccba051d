"""``translation_quality``: measure an MDUIT run on a benchmark's aligned set and write the outputs.

    from mduit_loc.evaluation.translation_quality_outputs import translation_quality
    written = translation_quality("runs/mduit", "data/synth", "quality/", QualityOptions(max_poses=100))

Files in ``OUT`` (one output set: whole or absent, ``output_set``; ``OUT`` is locked meanwhile):

- ``quality.csv``: one row per method x source x target: ``method, source, target, direction,
  images`` and the mean of every measure: ``psnr`` (dB, vs the true rendering), ``ssim``,
  ``grad_ssim`` and ``content_cos`` (vs the source), ``filter_acc`` and ``colour_acc`` (share of
  images the classifiers put in the target condition);
- ``reconstruction.csv``: self-reconstruction PSNR / SSIM per condition (``held_out``);
- ``summary.md``: the pooled table (day->night, night->day, all; every method), the verdict
  against the baselines, self-reconstruction and the classifiers' accuracy on real images;
- ``summary.json``: the same numbers, the settings (evaluation size, resizing, appearance mode,
  poses), the per-pair means and each pair's PSNR per pose (``psnr_by_pose``, in the aligned set's
  order), from which the verdicts' 95 % intervals over poses are computed.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mduit_loc.datasets import open_dataset
from mduit_loc.datasets.aligned import read_aligned_set
from mduit_loc.errors import FormatError
from mduit_loc.evaluation.tables import Table
from mduit_loc.evaluation.translation_quality import MEASURES, PairScores, Pooled, margin_interval, pairs_in
from mduit_loc.evaluation.translation_quality_run import (
    GROUPS,
    METHOD_LABELS,
    QualityOptions,
    QualityResult,
    Reconstruction,
    measure_translation_quality,
)
from mduit_loc.io_utils import atomic_open, read_json_file, write_json_atomic, write_text_atomic
from mduit_loc.output_lock import output_lock
from mduit_loc.output_set import staged_outputs
from mduit_loc.runtime import resolve_device
from mduit_loc.translation.model_io import load_mduit

QUALITY_CSV, RECONSTRUCTION_CSV, SUMMARY_MD, SUMMARY_JSON = ("quality.csv", "reconstruction.csv", "summary.md",
                                                             "summary.json")
MEMBERS = (QUALITY_CSV, RECONSTRUCTION_CSV, SUMMARY_MD, SUMMARY_JSON)
# Output column names: the *_hit measures averaged are accuracies.
COLUMNS = {"psnr": "psnr", "ssim": "ssim", "grad_ssim": "grad_ssim", "content_cos": "content_cos",
           "filter_hit": "filter_acc", "colour_hit": "colour_acc"}
HEADERS = ["Direction", "Method", "Pairs", "Images", "PSNR dB", "SSIM", "grad SSIM vs src", "E_c cos vs src",
           "W class. acc", "colour class. acc"]
BASELINES = ("colour-transfer", "identity")
TARGET_MARGIN_DB = 2.0   # issue 10: MDUIT >= 2 dB PSNR above both baselines, SSIM above both


def _number(value: float, digits: int = 3) -> str:
    return "inf" if value == math.inf else ("-" if math.isnan(value) else f"{value:.{digits}f}")


def _json_number(value: float) -> float | str | None:
    """JSON has no inf / NaN: ``"inf"`` and null."""
    return "inf" if value == math.inf else (None if math.isnan(value) else value)


def pooled_table(result: QualityResult) -> Table:
    rows = [[row.group, METHOD_LABELS[row.method], str(row.pairs), str(row.images),
             *(_number(row.means[m], 2 if m == "psnr" else 3) for m in MEASURES)] for row in result.pooled()]
    size = "x".join(str(v) for v in result.settings["size"])
    notes = [f"Evaluated at {size} px (the model's size unless --size): every image read with "
             f"{result.settings['resize']}. Target appearance: {describe_appearance(result.settings['appearance'])}."
             f" Means over {result.settings['poses']} aligned poses per pair; PSNR and SSIM vs the true rendering, "
             "grad SSIM and E_c cosine vs the source; accuracies: the translation put in the target condition."]
    return Table("Translation quality on the aligned set (pooled)", HEADERS, rows, notes)


def describe_appearance(mode: str) -> str:
    return ("the target condition's domain-mean filter W" if mode == "domain"
            else "E_a of the target condition at another, random pose")


def pose_psnr_matrix(result: QualityResult, method: str, group: str) -> np.ndarray | None:
    """(pairs, poses) PSNR of ``method``'s pairs in direction ``group``, pairs sorted by name; None when the
    per-pose values are missing (a summary written before they were kept) or the pairs differ in poses."""
    chosen = sorted(pairs_in(result.scores, method, group), key=lambda s: (s.source, s.target))
    if not chosen or len({s.count for s in chosen}) != 1 or any(len(s.psnr_by_pose) != s.count for s in chosen):
        return None
    return np.array([s.psnr_by_pose for s in chosen])


def _margin_interval(result: QualityResult, group: str, baseline: str) -> list[float] | None:
    mduit, other = pose_psnr_matrix(result, "mduit", group), pose_psnr_matrix(result, baseline, group)
    if mduit is None or other is None or mduit.shape != other.shape or not np.isfinite(mduit - other).all():
        return None
    return list(margin_interval(mduit, other))


def verdicts(result: QualityResult) -> dict[str, dict[str, Any]]:
    """Per direction: MDUIT's PSNR margin over the better baseline (with its 95 % bootstrap interval over the
    poses when the per-pose values are known) and whether its SSIM beats both."""
    pooled = {(row.group, row.method): row for row in result.pooled()}
    found = {}
    for group in GROUPS[:2]:
        if (group, "mduit") not in pooled:
            continue
        mduit = pooled[(group, "mduit")].means
        better = max(BASELINES, key=lambda b: pooled[(group, b)].means["psnr"])
        best_ssim = max(pooled[(group, b)].means["ssim"] for b in BASELINES)
        margin = mduit["psnr"] - pooled[(group, better)].means["psnr"]
        found[group] = {"psnr_margin_db": margin, "psnr_margin_ci95_db": _margin_interval(result, group, better),
                        "better_baseline": better, "ssim_margin": mduit["ssim"] - best_ssim,
                        "target_met": bool(margin >= TARGET_MARGIN_DB and mduit["ssim"] > best_ssim)}
    return found


def verdict_lines(result: QualityResult) -> list[str]:
    lines = []
    for group, found in verdicts(result).items():
        interval = found["psnr_margin_ci95_db"]
        spread = (f" (95 % interval over the poses scored, bootstrap: {interval[0]:+.2f} to {interval[1]:+.2f})"
                  if interval is not None else "")
        lines.append(f"{group}: MDUIT {found['psnr_margin_db']:+.2f} dB PSNR{spread} and {found['ssim_margin']:+.3f} "
                     f"SSIM over the better baseline (colour transfer or identity): target (>= {TARGET_MARGIN_DB:g} "
                     "dB, SSIM above both) " + ("met" if found["target_met"] else "NOT met"))
    return lines


def reconstruction_table(result: QualityResult) -> Table:
    rows = [[r.condition, str(r.images), _number(r.psnr, 2), _number(r.ssim), "yes" if r.held_out else "no (training)"]
            for r in result.reconstruction]
    return Table("Self-reconstruction G(E_c(I) ⊗ E_a(I)) vs I on the aligned images",
                 ["Condition", "Images", "PSNR dB", "SSIM", "Held out"], rows)


def classifier_table(result: QualityResult) -> Table:
    rows = [[c, _number(acc["filter"]), _number(acc["colour"])] for c, acc in result.real_accuracy.items()]
    return Table("Appearance classifiers on the true aligned renderings (their ceiling)",
                 ["Condition", "W class. acc", "colour class. acc"], rows,
                 ["W: nearest domain-mean appearance filter (cosine); colour: nearest centroid of per-image Lab "
                  "mean/std, fitted on the real dataset images of each condition."])


def summary_markdown(result: QualityResult, title: str) -> str:
    parts = [f"# {title}", "", pooled_table(result).to_markdown(), ""]
    parts += [f"- {line}" for line in verdict_lines(result)] + [""]
    parts += [reconstruction_table(result).to_markdown(), "", classifier_table(result).to_markdown(), ""]
    return "\n".join(parts)


def summary_data(result: QualityResult) -> dict[str, Any]:
    def means(values: dict[str, float]) -> dict[str, Any]:
        return {COLUMNS[m]: _json_number(values[m]) for m in MEASURES}

    def pooled(row: Pooled) -> dict[str, Any]:
        return {"direction": row.group, "method": row.method, "pairs": row.pairs, "images": row.images,
                **means(row.means)}

    return {"settings": result.settings, "pooled": [pooled(row) for row in result.pooled()],
            "verdicts": verdicts(result), "target_margin_db": TARGET_MARGIN_DB,
            "pairs": [{"method": s.method, "source": s.source, "target": s.target, "direction": s.direction,
                       "images": s.count, **means(s.means()),
                       "psnr_by_pose": [_json_number(round(v, 4)) for v in s.psnr_by_pose]} for s in result.scores],
            "reconstruction": [{"condition": r.condition, "images": r.images, "psnr": _json_number(r.psnr),
                                "ssim": r.ssim, "held_out": r.held_out} for r in result.reconstruction],
            "classifiers_on_real_images": result.real_accuracy}


def write_quality_csv(path: Path, result: QualityResult) -> None:
    with atomic_open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["method", "source", "target", "direction", "images", *COLUMNS.values()])
        for s in result.scores:
            values = s.means()
            writer.writerow([s.method, s.source, s.target, s.direction, s.count,
                             *(_number(values[m], 6) for m in MEASURES)])


def write_reconstruction_csv(path: Path, result: QualityResult) -> None:
    with atomic_open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["condition", "images", "psnr", "ssim", "held_out"])
        for r in result.reconstruction:
            writer.writerow([r.condition, r.images, _number(r.psnr, 6), _number(r.ssim, 6), int(r.held_out)])


def write_quality_outputs(out: Path, result: QualityResult, title: str) -> dict[str, Path]:
    """The four files into ``out``, replaced together; the caller holds ``out``'s lock."""
    with staged_outputs(out, MEMBERS) as staged:
        write_quality_csv(staged.path(QUALITY_CSV), result)
        write_reconstruction_csv(staged.path(RECONSTRUCTION_CSV), result)
        write_text_atomic(staged.path(SUMMARY_MD), summary_markdown(result, title))
        write_json_atomic(staged.path(SUMMARY_JSON), summary_data(result))
    return {name: out / name for name in MEMBERS}


@dataclass(frozen=True)
class QualityOutput:
    result: QualityResult
    files: dict[str, Path]      # member name -> path


def translation_quality(model_run: str | Path, data: str | Path, out: str | Path,
                        options: QualityOptions | None = None, device: torch.device | str = "auto") -> QualityOutput:
    """Measure the MDUIT run ``model_run`` on the aligned set of the benchmark ``data``; write ``out``."""
    resolved = resolve_device(device)
    out = Path(out)
    with output_lock(out, "translation-quality"):
        aligned = read_aligned_set(data)   # before the model and the dataset: a missing set fails fast
        model = load_mduit(model_run, resolved)
        result = measure_translation_quality(model, aligned, open_dataset(data), options or QualityOptions(), resolved)
        result.settings.update({"model": str(model_run), "data": str(data)})
        files = write_quality_outputs(out, result, f"Translation quality of {model_run} on {data}")
    return QualityOutput(result, files)


def _read_number(value: Any) -> float:
    return math.inf if value == "inf" else (math.nan if value is None else float(value))


def read_quality_summary(path: str | Path) -> QualityResult:
    """A ``summary.json`` back as a ``QualityResult`` (tables of an earlier run, e.g. a demo re-run)."""
    data = read_json_file(path, "translation quality summary")
    try:
        assert isinstance(data, dict)
        scores = []
        for row in data["pairs"]:
            pair = PairScores(row["method"], row["source"], row["target"], count=int(row["images"]))
            pair.sums = {m: _read_number(row[COLUMNS[m]]) * pair.count for m in MEASURES}
            pair.psnr_by_pose = [_read_number(v) for v in row.get("psnr_by_pose", [])]   # absent before 2026-12-07
            if pair.psnr_by_pose and len(pair.psnr_by_pose) != pair.count:
                raise ValueError(f"pair {pair.source} -> {pair.target}: {len(pair.psnr_by_pose)} per-pose PSNR "
                                 f"values for {pair.count} images")
            scores.append(pair)
        reconstruction = [Reconstruction(r["condition"], int(r["images"]), _read_number(r["psnr"]),
                                         _read_number(r["ssim"]), bool(r["held_out"])) for r in data["reconstruction"]]
        return QualityResult(scores, reconstruction, dict(data["settings"]), dict(data["classifiers_on_real_images"]))
    except (AssertionError, KeyError, TypeError, ValueError) as err:
        raise FormatError(Path(path), None, "a summary.json written by mduit-loc translation-quality",
                          got=f"{type(err).__name__}: {err}") from None

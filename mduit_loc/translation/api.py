"""Python entry points for other modules (the pipelines): train a run folder, load it, translate with it.

    from mduit_loc.translation.api import train, load_mduit, translate_images
    summary = train("tiny", "data/synth", "runs/mduit", max_steps=300)          # or time_budget_min=5
    model = load_mduit(summary.run_dir, "cpu")                                 # describe / translate
    translate_images(summary.run_dir, ["night.png"], ["day.png"], "out/")      # images + grid.png

``train`` is what ``mduit-loc train`` runs (same settings, same run folder: ``model.pt``,
``run.json``, ``appearances.pt``, ``losses.csv/png``, ``checkpoints/``); it prints the command's
banner and summary with ``announce=True``. ``translate_images`` is ``mduit-loc translate``.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

import torch

from mduit_loc.errors import MduitError
from mduit_loc.output_lock import output_lock
from mduit_loc.runtime import resolve_device
from mduit_loc.translation.config import TranslationConfig, apply_overrides, preset
from mduit_loc.translation.distributed import DistContext, init_distributed
from mduit_loc.translation.model_io import load_mduit
from mduit_loc.translation.run_options import TrainOptions, TrainSummary
from mduit_loc.translation.trainer import Trainer
from mduit_loc.translation.translate import TranslationOutput, translate_images

__all__ = ["train", "load_mduit", "translate_images", "TrainSummary", "TranslationConfig", "TranslationOutput"]


def train(config: TranslationConfig | str, data: str | Path, out: str | Path, *,
          overrides: dict[str, Any] | None = None, max_steps: int | None = None,
          time_budget_min: float | None = None, use_i2i: bool | None = None, use_nce: bool | None = None,
          device: torch.device | str = "auto", resume: bool = False, vgg_weights: str | Path | None = None,
          domains: list[str] | None = None, image_root: str | Path | None = None,
          include_test_queries: bool = True, num_workers: int | None = None, threads: int | None = None,
          progress: bool = True, stop_after: int | None = None, announce: bool = False) -> TrainSummary:
    """Train MDUIT on the dataset at ``data`` (anything ``open_dataset`` reads) into the run folder ``out``.

    ``config``: a ``TranslationConfig`` or a preset name (``"tiny"``, ``"paper"``). ``overrides``:
    more settings by field name (``{"image_size": (32, 32), "batch_size": 4}``; strings are parsed by
    the field's type, as ``--set``); the keyword shortcuts ``max_steps``, ``time_budget_min``
    (wall-clock cap in minutes; the lr schedule is fitted to the steps that fit), ``use_i2i=False``
    (the ``--no-i2i`` ablation) and ``use_nce=False`` (``--no-nce``) are applied on top when given.
    The run stops at whichever of max_steps/epochs and the time budget comes first; with
    ``overrides={"epochs": None}`` only the time budget (or max_steps) ends it. ``resume`` continues
    ``out`` from its last checkpoint (the settings named here must match the checkpoint's).
    ``threads`` sets torch's intra-op threads for the process. On a busy CPU, spinning OpenMP
    threads are ruinous (tiny step on the shared 2-core machine: 10 s with 2 threads, 0.9 s with 2
    threads and ``OMP_WAIT_POLICY=PASSIVE`` set before torch is imported, as ``mduit-loc`` does,
    0.75 s with ``threads=1``). Under ``torchrun`` the processes train data-parallel. ``out`` is locked
    for the run (``output_lock``, held by rank 0): a second training into it stops at once; the run's
    files (model.pt, appearances.pt, run.json) appear together at the end. Raises ``MduitError`` (and
    subclasses) for bad input.
    """
    base = preset(config) if isinstance(config, str) else config
    settings = dict(overrides or {})
    shortcuts = {"max_steps": max_steps, "time_budget_min": time_budget_min, "use_i2i": use_i2i,
                 "use_nce": use_nce}
    settings.update({key: value for key, value in shortcuts.items() if value is not None})
    final = apply_overrides(base, settings) if settings else base
    resolved = resolve_device(device)
    context = init_distributed(resolved)
    try:
        with training_lock(Path(out), context):
            options = TrainOptions(data=Path(data), out=Path(out),
                                   image_root=Path(image_root) if image_root else None, domains=domains,
                                   vgg_weights=Path(vgg_weights) if vgg_weights else None, device=resolved,
                                   resume=resume, stop_after=stop_after, num_workers=num_workers, progress=progress,
                                   include_test_queries=include_test_queries, threads=threads,
                                   explicit_settings=settings)
            trainer = Trainer(final, options, context)
            if announce and context.is_main:
                print(describe_start(trainer, resume))
            summary = trainer.run()
            if announce and context.is_main:
                print(describe_summary(summary))
            return summary
    finally:
        context.close()


@contextlib.contextmanager
def training_lock(out: Path, context: DistContext) -> Iterator[None]:
    """The run folder's lock (``output_lock``), taken by rank 0 only; every rank learns whether it got it
    (so the others stop too instead of waiting for it in the first collective)."""
    error: MduitError | None = None
    with contextlib.ExitStack() as stack:
        if context.is_main:
            try:
                stack.enter_context(output_lock(out, "train", clean=("checkpoints",)))
            except MduitError as err:
                error = err
        locked = context.broadcast(torch.tensor([0 if error is not None else 1]))
        if error is not None:
            raise error
        if not bool(locked.item()):
            raise MduitError(f"rank 0 could not take the lock of {out} (see its message)")
        yield


def describe_start(trainer: Trainer, resume: bool) -> str:
    """The banner of a training run: data, length, batch, device."""
    counts = trainer.training_set.domain_counts()
    return (f"MDUIT {trainer.config.preset}: {len(trainer.training_set)} images in {len(counts)} domains "
            f"({', '.join(f'{d} {n}' for d, n in counts.items())}); {describe_length(trainer)}, "
            f"batch {trainer.config.batch_size} x {trainer.context.world_size} process(es) on {trainer.device}"
            + (f", resuming at step {trainer.step}" if resume else ""))


def describe_length(trainer: Trainer) -> str:
    """'N steps', or how a time budget will decide the count (a huge upper bound helps nobody)."""
    budget = trainer.budget
    if budget is None or budget.fixed_total is not None:
        return f"{trainer.total_steps} steps"
    return f"steps fitted to a {trainer.config.time_budget_min:g} min budget after a short probe"


def describe_summary(summary: TrainSummary) -> str:
    """What a finished (or stopped) run did and where its files are."""
    per_step = summary.seconds / max(1, summary.steps)
    state = "stopped (resume with --resume)" if summary.stopped_early else "finished"
    if summary.stopped_by_budget:
        state = "finished (time budget spent)"
    lines = [f"training {state}: {summary.steps}/{summary.total_steps} steps, {summary.epochs:.2f} epochs, "
             f"{summary.seconds:.1f} s ({per_step:.3f} s/step), {summary.world_size} process(es)"]
    if summary.final_losses:
        lines.append("final losses: " + ", ".join(f"{k} {v:.4g}" for k, v in sorted(summary.final_losses.items())))
    run = summary.run_dir
    if not summary.stopped_early:
        lines.append(f"model: {run / 'model.pt'}  (describe/translate with --model {run})")
        lines.append(f"run: {run / 'run.json'}; per-domain appearance filters: {run / 'appearances.pt'}")
        lines.append(f"loss curves: {run / 'losses.csv'}, {run / 'losses.png'}")
    lines.append(f"checkpoints: {run / 'checkpoints'}")
    return "\n".join(lines)

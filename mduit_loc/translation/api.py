"""Python entry points for other modules (the demo, Table 1): train a run folder, load it back.

    from mduit_loc.translation.api import train, load_mduit
    summary = train("tiny", "data/synth", "runs/mduit", max_steps=300)          # or time_budget_min=5
    model = load_mduit(summary.run_dir, "cpu")                                 # describe / translate

``train`` is what ``mduit-loc train`` runs, minus the printing: same settings, same run folder
(``model.pt``, ``run.json``, ``appearances.pt``, ``losses.csv/png``, ``checkpoints/``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from mduit_loc.translation.config import TranslationConfig, apply_overrides, preset
from mduit_loc.translation.model_io import load_mduit
from mduit_loc.translation.trainer import TrainOptions, TrainSummary, Trainer

__all__ = ["train", "load_mduit", "TrainSummary", "TranslationConfig"]


def train(config: TranslationConfig | str, data: str | Path, out: str | Path, *,
          overrides: dict[str, Any] | None = None, max_steps: int | None = None,
          time_budget_min: float | None = None, use_i2i: bool | None = None, use_nce: bool | None = None,
          device: str = "auto", resume: bool = False, vgg_weights: str | Path | None = None,
          domains: list[str] | None = None, image_root: str | Path | None = None,
          include_test_queries: bool = True, num_workers: int | None = None, threads: int | None = None,
          progress: bool = True, stop_after: int | None = None) -> TrainSummary:
    """Train MDUIT on the dataset at ``data`` (anything ``open_dataset`` reads) into the run folder ``out``.

    ``config``: a ``TranslationConfig`` or a preset name (``"tiny"``, ``"paper"``). ``overrides``:
    more settings by field name (``{"image_size": (32, 32), "batch_size": 4}``); the keyword
    shortcuts ``max_steps``, ``time_budget_min`` (wall-clock cap in minutes; the lr schedule is fitted
    to the steps that fit), ``use_i2i=False`` (the ``--no-i2i`` ablation) and ``use_nce=False``
    (``--no-nce``) are applied on top when given. The run stops at whichever of max_steps/epochs
    and the time budget comes first. ``resume`` continues ``out`` from its last checkpoint (the
    settings named here must match the checkpoint's). ``threads`` sets torch's intra-op threads for
    the process. On a busy CPU, spinning OpenMP threads are ruinous (tiny step on the shared 2-core
    machine: 10 s with 2 threads, 0.9 s with 2 threads and ``OMP_WAIT_POLICY=PASSIVE`` set before
    torch is imported, as ``mduit-loc`` does, 0.75 s with ``threads=1``). Under ``torchrun``
    the processes train data-parallel. Raises ``MduitError`` (and subclasses) for bad input.
    """
    from mduit_loc.translation.distributed import init_distributed

    base = preset(config) if isinstance(config, str) else config
    settings = dict(overrides or {})
    shortcuts = {"max_steps": max_steps, "time_budget_min": time_budget_min, "use_i2i": use_i2i,
                 "use_nce": use_nce}
    settings.update({key: value for key, value in shortcuts.items() if value is not None})
    final = apply_overrides(base, settings) if settings else base
    context = init_distributed(device)
    try:
        options = TrainOptions(data=Path(data), out=Path(out), image_root=Path(image_root) if image_root else None,
                               domains=domains, vgg_weights=Path(vgg_weights) if vgg_weights else None,
                               device=device, resume=resume, stop_after=stop_after, num_workers=num_workers,
                               progress=progress, include_test_queries=include_test_queries, threads=threads,
                               explicit_settings=settings)
        return Trainer(final, options, context).run()
    finally:
        context.close()

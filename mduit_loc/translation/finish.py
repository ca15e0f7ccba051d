"""End of training: write ``model.pt``, ``appearances.pt`` and ``run.json`` (see ``model_io``).

The three are one output set (``output_set``): staged, then moved into the run folder together, so a
run killed while finishing never leaves the run.json of one training beside the model.pt of another.
The trainer hands over a ``FinishedTraining`` record (no import of the trainer here).
"""
from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from mduit_loc.output_set import staged_outputs
from mduit_loc.translation.config import TranslationConfig
from mduit_loc.translation.data import ImageStore, TrainingSet
from mduit_loc.translation.distributed import DistContext
from mduit_loc.translation.mduit import MDUIT
from mduit_loc.translation.model_io import (
    RUN_MEMBERS,
    save_appearances,
    save_model,
    summarise_domain_filters,
    write_run_json,
)
from mduit_loc.translation.networks import count_parameters
from mduit_loc.translation.run_options import TrainOptions
from mduit_loc.translation.steps import Discriminators


@dataclass(frozen=True, kw_only=True)
class FinishedTraining:
    """What the end of a run needs: the trained networks, their data, and how the run went."""

    run_dir: Path
    config: TranslationConfig
    options: TrainOptions
    context: DistContext
    model: MDUIT
    discriminators: Discriminators
    training_set: TrainingSet
    store: ImageStore
    device: torch.device
    mixed_precision: bool
    step: int
    total_steps: int
    steps_per_epoch: int
    elapsed: float
    stopped_by_budget: bool


def parameters_in_sync(run: FinishedTraining) -> bool:
    """True when every rank holds the same weights (always true for one process)."""
    fingerprint = torch.stack([p.detach().double().sum() for p in run.model.parameters()]).cpu()
    return all(torch.equal(fingerprint, other) for other in run.context.all_gather(fingerprint))


def domain_appearance_filters(run: FinishedTraining) -> tuple[dict, dict, dict]:
    """(mean filter, exemplar names, count) per domain from up to N evenly spaced images of each."""
    model, training_set = run.model, run.training_set
    per_domain = run.config.appearance_samples_per_domain
    filters, names, counts = {}, {}, {}
    with torch.no_grad():
        for domain_id, domain in enumerate(training_set.domain_names):
            members = torch.nonzero(training_set.domain_ids == domain_id).flatten()
            chosen = members[torch.linspace(0, len(members) - 1, min(per_domain, len(members))).round().long()]
            chunks = [model.appearance_filters(images.to(run.device)).float().cpu()
                      for images in run.store.iter_images(chosen, run.config.pairing_batch_size)]
            filters[domain] = torch.cat(chunks)
            names[domain] = [training_set.names[i] for i in chosen.tolist()]
            counts[domain] = len(chosen)
    means, exemplars = summarise_domain_filters(filters, names)
    return means, exemplars, counts


def finish_run(run: FinishedTraining, final_losses: dict[str, float]) -> None:
    in_sync = parameters_in_sync(run)
    if run.context.is_main:
        with staged_outputs(run.run_dir, RUN_MEMBERS) as staged:
            _write_run(run, staged.staging, final_losses, in_sync)
    run.context.barrier()


def _write_run(run: FinishedTraining, folder: Path, final_losses: dict[str, float], in_sync: bool) -> None:
    context, config, options = run.context, run.config, run.options
    model = run.model.eval()
    checksum = save_model(model, folder)
    if config.use_i2i:
        means, exemplars, counts = domain_appearance_filters(run)
        save_appearances(folder, means, exemplars, counts)
    parameter_counts = model.parameter_counts()
    parameter_counts["image_discriminator"] = count_parameters(run.discriminators.image)
    parameter_counts["appearance_discriminator"] = count_parameters(run.discriminators.appearance)
    training_set = run.training_set
    write_run_json(folder, config, checksum, {
        "dataset": str(options.data.resolve()),
        "image_root": str(options.image_root.resolve()) if options.image_root else None,
        "domains": training_set.domain_names,
        "domain_counts": training_set.domain_counts(),
        "num_training_images": len(training_set),
        "poses_known": int(training_set.places.known.sum()) if training_set.places is not None else 0,
        "place_labels": int((training_set.places.labels >= 0).sum()) if training_set.places is not None else 0,
        "vgg_weights": str(options.vgg_weights) if options.vgg_weights else None,
        "vgg_pretrained": bool(model.appearance_encoder.trunk.pretrained or options.vgg_weights),
        "parameter_counts": parameter_counts,
        "training": {
            "steps": run.step, "total_steps": run.total_steps,
            "steps_per_epoch": run.steps_per_epoch, "epochs": run.step / run.steps_per_epoch,
            "seconds": round(run.elapsed, 2), "world_size": context.world_size,
            "device": str(run.device), "mixed_precision": run.mixed_precision,
            "final_losses": {k: round(v, 6) for k, v in final_losses.items()},
            "time_budget_min": config.time_budget_min, "stopped_by_budget": run.stopped_by_budget,
            "include_test_queries": options.include_test_queries,
            "ranks_in_sync": in_sync, "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        },
    })

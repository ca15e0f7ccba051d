"""End of training: write ``model.pt``, ``appearances.pt`` and ``run.json`` (see ``model_io``)."""
from __future__ import annotations

import platform
import time
from typing import TYPE_CHECKING

import torch

from mduit_loc.translation.model_io import (save_appearances, save_model, summarise_domain_filters,
                                            write_run_json)
from mduit_loc.translation.networks import count_parameters

if TYPE_CHECKING:  # pragma: no cover
    from mduit_loc.translation.trainer import Trainer


def parameters_in_sync(trainer: "Trainer") -> bool:
    """True when every rank holds the same weights (always true for one process)."""
    fingerprint = torch.stack([p.detach().double().sum() for p in trainer.model.parameters()]).cpu()
    return all(torch.equal(fingerprint, other) for other in trainer.context.all_gather(fingerprint))


def domain_appearance_filters(trainer: "Trainer") -> tuple[dict, dict, dict]:
    """(mean filter, exemplar names, count) per domain from up to N evenly spaced images of each."""
    model, training_set = trainer.model, trainer.training_set
    per_domain = trainer.config.appearance_samples_per_domain
    filters, names, counts = {}, {}, {}
    with torch.no_grad():
        for domain_id, domain in enumerate(training_set.domain_names):
            members = torch.nonzero(training_set.domain_ids == domain_id).flatten()
            chosen = members[torch.linspace(0, len(members) - 1, min(per_domain, len(members))).round().long()]
            chunks = [model.appearance_filters(images.to(trainer.device)).float().cpu()
                      for images in trainer.store.iter_images(chosen, trainer.config.pairing_batch_size)]
            filters[domain] = torch.cat(chunks)
            names[domain] = [training_set.names[i] for i in chosen.tolist()]
            counts[domain] = len(chosen)
    means, exemplars = summarise_domain_filters(filters, names)
    return means, exemplars, counts


def finish_run(trainer: "Trainer", final_losses: dict[str, float]) -> None:
    in_sync = parameters_in_sync(trainer)
    context, config, options = trainer.context, trainer.config, trainer.options
    if context.is_main:
        model = trainer.model.eval()
        checksum = save_model(model, trainer.run_dir)
        if config.use_i2i:
            means, exemplars, counts = domain_appearance_filters(trainer)
            save_appearances(trainer.run_dir, means, exemplars, counts)
        counts = model.parameter_counts()
        counts["image_discriminator"] = count_parameters(trainer.discriminators.image)
        counts["appearance_discriminator"] = count_parameters(trainer.discriminators.appearance)
        training_set = trainer.training_set
        write_run_json(trainer.run_dir, config, checksum, {
            "dataset": str(options.data.resolve()),
            "image_root": str(options.image_root.resolve()) if options.image_root else None,
            "domains": training_set.domain_names,
            "domain_counts": training_set.domain_counts(),
            "num_training_images": len(training_set),
            "poses_known": int(training_set.poses.known.sum()) if training_set.poses is not None else 0,
            "vgg_weights": str(options.vgg_weights) if options.vgg_weights else None,
            "vgg_pretrained": bool(model.appearance_encoder.trunk.pretrained or options.vgg_weights),
            "parameter_counts": counts,
            "training": {
                "steps": trainer.step, "total_steps": trainer.total_steps,
                "steps_per_epoch": trainer.steps_per_epoch, "epochs": trainer.step / trainer.steps_per_epoch,
                "seconds": round(trainer.elapsed, 2), "world_size": context.world_size,
                "device": str(trainer.device), "mixed_precision": trainer.use_amp,
                "final_losses": {k: round(v, 6) for k, v in final_losses.items()},
                "time_budget_min": config.time_budget_min, "stopped_by_budget": trainer.stopped_by_budget,
                "include_test_queries": options.include_test_queries,
                "ranks_in_sync": in_sync, "torch": torch.__version__, "python": platform.python_version(),
                "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
            },
        })
    context.barrier()

"""MDUIT training loop (paper §2.3 and §3.1).

Per epoch: describe every training image, pair sources with targets (``pairing``), then step
through the plan. Per step: one generator-side forward (E_c, E_a, G, H), the generator objective
with the discriminators fixed, an Adam step for E_c/E_a/G/H; then the discriminators' objective on
the detached translation and their own Adam step. Both learning rates stay constant for the first
``constant_lr_fraction`` of the steps and decay linearly to zero afterwards (paper: 35 + 15 epochs).
Data-parallel under torchrun (DDP), mixed precision on CUDA, atomic checkpoints, bit-for-bit resume.
The run lasts ``max_steps`` (or ``epochs``) and, with ``time_budget_min``, at most that many minutes
(``budget``: the schedule is fitted to the steps that fit in the budget).
"""
from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from mduit_loc.errors import ConfigMismatchError, MduitError
from mduit_loc.runtime import autocast, default_num_workers, seed_everything
from mduit_loc.torch_io import thread_mismatch
from mduit_loc.translation import checkpoint as ckpt
from mduit_loc.translation.budget import StepBudget
from mduit_loc.translation.config import TranslationConfig
from mduit_loc.translation.curves import LossLog, loss_columns
from mduit_loc.translation.data import ImageStore, load_training_set, rank_rows, steps_per_epoch
from mduit_loc.translation.distributed import DistContext, rank_device
from mduit_loc.translation.finish import FinishedTraining, domain_appearance_filters, finish_run
from mduit_loc.translation.mduit import MDUIT, build_mduit
from mduit_loc.translation.networks import init_weights
from mduit_loc.translation.pairing import FIRST_NEGATIVE, REAL_POSITIVE, SOURCE, TARGET, build_epoch_plan
from mduit_loc.translation.run_options import TrainOptions, TrainSummary
from mduit_loc.translation.speed import apply_speed_options
from mduit_loc.translation.steps import (
    Discriminators,
    StepLabels,
    TrainForward,
    contrastive_term_name,
    discriminator_objective,
    generator_objective,
)
from mduit_loc.translation.weight_average import WeightAverage


def lr_factor(step: int, total_steps: int, constant_fraction: float) -> float:
    """1 for the first ``constant_fraction`` of the steps, then linear to 0 at ``total_steps``."""
    constant = int(round(constant_fraction * total_steps))
    if step < constant:
        return 1.0
    return max(0.0, (total_steps - step) / max(1, total_steps - constant))


def _step_limit(config: TranslationConfig, steps_per_epoch: int) -> int:
    """The run's length in steps before any time budget shortens it; without an epoch or step limit
    (``epochs=None`` with a time budget) the budget alone decides, so the limit is unbounded."""
    if config.max_steps:
        return config.max_steps
    if config.epochs is not None:
        return config.epochs * steps_per_epoch
    return sys.maxsize


def _set_requires_grad(module: torch.nn.Module, flag: bool) -> None:
    for parameter in module.parameters():
        parameter.requires_grad_(flag)


class Trainer:
    def __init__(self, config: TranslationConfig, options: TrainOptions, context: DistContext | None = None):
        self.options = options
        self.context = context or DistContext()
        if options.threads:
            torch.set_num_threads(options.threads)
        self.device = rank_device(self.context, options.device)
        self.run_dir = Path(options.out)
        self.resume_state = self._resume_state() if options.resume else None
        if self.resume_state is not None:
            config = self._checked_resume_config(config, self.resume_state)
        elif ckpt.last_checkpoint_path(self.run_dir).is_file():
            raise MduitError(f"{self.run_dir} already holds a training run; pass --resume to continue it "
                             "or choose another --out")
        if config.freeze_vgg is None:  # resolved once and stored, so a resumed run freezes the same way
            config = replace(config, freeze_vgg=bool(options.vgg_weights))
        self.config = config
        self.training_set = load_training_set(options.data, options.image_root, options.domains,
                                              options.include_test_queries, config, options.exclude_images)
        workers = default_num_workers() if options.num_workers is None else options.num_workers
        self.store = ImageStore(self.training_set.paths, config.image_size, config.cache_limit_mb, workers)
        if self.device.type == "cuda":
            self.store.to(self.device)   # the decoded cache (when there is one) lives on the GPU
        self.steps_per_epoch = steps_per_epoch(len(self.training_set), config.batch_size, self.context.world_size)
        self.total_steps = _step_limit(config, self.steps_per_epoch)
        self.budget = (StepBudget(60.0 * config.time_budget_min, self.total_steps)
                       if config.time_budget_min else None)
        self.pairing_s, self.stopped_by_budget = 0.0, False
        self._build_models()
        self.plan: torch.Tensor | None = None    # the epoch's pairing plan
        self.step, self.plan_epoch, self.elapsed, self.last_checkpoint_s = 0, -1, 0.0, 0.0
        if self.resume_state is not None:
            self._restore(self.resume_state)
        else:
            torch.manual_seed(config.seed * 1009 + 7919 * self.context.rank)  # step-level randomness per rank

    # --- setup ---------------------------------------------------------------------------------
    def _resume_state(self) -> dict | None:
        """The last checkpoint; None (a fresh start, said so) when a run was stopped before its first one."""
        path = ckpt.last_checkpoint_path(self.run_dir)
        if not path.is_file():
            if (self.run_dir / "run.json").is_file():
                raise MduitError(f"--resume: {self.run_dir} holds a finished run and no checkpoint to continue")
            if self.context.is_main:
                print(f"--resume: no checkpoint in {path.parent} yet (stopped before the first one); "
                      "starting from step 0", file=sys.stderr)
            return None
        return ckpt.load_checkpoint(path)

    def _checked_resume_config(self, requested: TranslationConfig, state: dict) -> TranslationConfig:
        saved = TranslationConfig.from_dict(state["config"], where="checkpoint")
        wanted, have = requested.to_dict(), saved.to_dict()
        differ = sorted(k for k in self.options.explicit_settings if k in have and wanted[k] != have[k])
        if differ:
            raise ConfigMismatchError(f"--resume: settings {differ} differ from the checkpoint's "
                                      f"({', '.join(f'{k}={have[k]!r}' for k in differ)}); drop them to continue")
        return saved

    def _build_models(self) -> None:
        config = self.config
        seed_everything(config.seed)
        self.model = build_mduit(config, str(self.options.vgg_weights) if self.options.vgg_weights else None,
                                 warn_untrained_vgg=self.context.is_main)
        if config.freeze_vgg:
            _set_requires_grad(self.model.appearance_encoder.trunk, False)
        if not config.use_i2i:  # the ablation trains E_c and H only
            _set_requires_grad(self.model.appearance_encoder, False)
            _set_requires_grad(self.model.generator, False)
        self.discriminators = Discriminators(config)
        init_weights(self.discriminators, config.init_std)
        self.model.to(self.device)
        self.discriminators.to(self.device)
        # the average is copied before the speed options: it stays eager (it only runs at the end)
        self.average = WeightAverage(self.model, config.ema_decay) if config.ema_decay > 0 else None
        apply_speed_options(config, self.model, self.discriminators)   # channels-last, torch.compile
        # the modules stepped: themselves, or their DistributedDataParallel wrappers
        self.train_forward: nn.Module = TrainForward(self.model)
        self.discriminator_step: nn.Module = self.discriminators
        if self.context.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.train_forward = DistributedDataParallel(self.train_forward, device_ids=ids)
            if config.use_i2i:
                self.discriminator_step = DistributedDataParallel(self.discriminators, device_ids=ids)
        betas = (config.beta1, config.beta2)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        descriptor_networks = (self.model.content_encoder, self.model.head)
        descriptor_parameters = {id(p) for network in descriptor_networks for p in network.parameters()}
        # E_c and H may learn at their own rate, with Adam's usual momentum (0.9) rather than the GAN's 0.5
        descriptor_betas = betas if config.lr_descriptor is None else (0.9, config.beta2)
        groups = [{"params": [p for p in trainable if id(p) in descriptor_parameters],
                   "lr": config.lr_descriptor or config.lr, "betas": descriptor_betas},
                  {"params": [p for p in trainable if id(p) not in descriptor_parameters], "lr": config.lr}]
        self.optimizer_g = torch.optim.Adam([g for g in groups if g["params"]], lr=config.lr, betas=betas)
        self.optimizer_d = torch.optim.Adam(self.discriminators.parameters(), lr=config.lr, betas=betas)
        schedule = lambda step: lr_factor(step, self.total_steps, config.constant_lr_fraction)  # noqa: E731
        self.scheduler_g = torch.optim.lr_scheduler.LambdaLR(self.optimizer_g, schedule)
        self.scheduler_d = torch.optim.lr_scheduler.LambdaLR(self.optimizer_d, schedule)
        self.use_amp = config.mixed_precision and self.device.type == "cuda"
        fp16 = self.use_amp and not torch.cuda.is_bf16_supported()
        self.scaler = torch.amp.GradScaler("cuda", enabled=fp16)

    def _restore(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.discriminators.load_state_dict(state["discriminators"])
        self.optimizer_g.load_state_dict(state["optimizer_g"])
        self.optimizer_d.load_state_dict(state["optimizer_d"])
        self.scheduler_g.load_state_dict(state["scheduler_g"])
        self.scheduler_d.load_state_dict(state["scheduler_d"])
        self.scaler.load_state_dict(state["scaler"])
        if self.average is not None:
            self.average.load_state_dict(state["average"])
        if self.budget is not None:  # the budget fixed the length: keep the checkpoint's
            self.total_steps = int(state["total_steps"])
            self.budget = StepBudget(**state["budget"])
            self.pairing_s, self.stopped_by_budget = float(state["pairing_s"]), bool(state["stopped_by_budget"])
        elif int(state["total_steps"]) != self.total_steps:
            raise ConfigMismatchError(f"--resume: the checkpoint was written for {state['total_steps']} steps, "
                                      f"this run would take {self.total_steps} (dataset or batch changed?)")
        self.step, self.elapsed = int(state["step"]), float(state["elapsed_s"])
        if (mismatch := thread_mismatch(state)) and self.context.is_main:
            print(f"--resume: {mismatch}", file=sys.stderr)
        self.last_checkpoint_s = self.elapsed
        self.plan, self.plan_epoch = state["plan"], int(state["plan_epoch"])
        rng = state["rng"]
        if len(rng) == self.context.world_size:
            ckpt.set_rng_state(rng[self.context.rank])
        else:
            torch.manual_seed(self.config.seed * 1009 + 7919 * self.context.rank + self.step)

    # --- epochs ---------------------------------------------------------------------------------
    def _describe_all(self) -> torch.Tensor:
        """z of every training image (each rank describes a shard; shards are gathered)."""
        count, world = len(self.training_set), self.context.world_size
        shard = -(-count // world)
        indices = torch.arange(self.context.rank * shard, (self.context.rank + 1) * shard).clamp(max=count - 1)
        parts = []
        with torch.no_grad(), autocast(self.device, self.use_amp):
            for images in self.store.iter_images(indices, self.config.pairing_batch_size):
                parts.append(self.model.describe(images.to(self.device)).float())
        gathered = self.context.all_gather(torch.cat(parts))
        return torch.cat(gathered)[:count].cpu()

    def _plan_epoch(self, epoch: int) -> torch.Tensor:
        config = self.config
        started = time.perf_counter()
        plan = build_epoch_plan(self._describe_all(), self.training_set.domain_ids, self.training_set.places,
                                config.n_negatives, config.seed, epoch, config.negative_mining,
                                real_positives=config.pose_positives, target_choice=config.target_choice)
        plan = self.context.broadcast(plan)  # identical by construction; broadcasting makes it certain
        self.pairing_s = time.perf_counter() - started
        return plan

    def _apply_budget(self) -> None:
        """Fit the run's length after the probe (re-fit while the lr is constant); end it when time is spent.

        Rank 0's clock decides, so every process takes the same decision at the same step.
        """
        budget = self.budget
        if budget is None:
            return
        clock = torch.tensor([self.elapsed, self.pairing_s], dtype=torch.float64)
        elapsed, pairing_s = self.context.broadcast(clock).tolist()
        constant_phase = self.step < self.config.constant_lr_fraction * self.total_steps
        total = budget.observe(self.step, elapsed, pairing_s, self.steps_per_epoch, may_refit=constant_phase)
        if total is not None:
            self.total_steps = total  # the lr schedule's lambda reads it
        if budget.exhausted(elapsed) and self.step < self.total_steps:
            self.total_steps, self.stopped_by_budget = self.step, True

    # --- one step -------------------------------------------------------------------------------
    def step_labels(self, rows: torch.Tensor) -> StepLabels:
        """What the plan rows (B, R) of one step say beyond their pixels (see ``StepLabels``)."""
        sources = rows[:, SOURCE]
        real_positive = rows[:, REAL_POSITIVE] != sources
        places = self.training_set.places
        target_same_place = None
        if places is not None and self.config.weight_paired > 0:
            target_same_place = places.same_place(sources, rows[:, TARGET]).diagonal().to(self.device)
        if not self.config.in_batch_negatives:
            return StepLabels(real_positive.to(self.device), None, target_same_place)
        members = torch.cat([sources, rows[:, REAL_POSITIVE], rows[:, FIRST_NEGATIVE:].flatten()])
        if places is not None and places.any_labelled:
            allowed = places.may_be_negative(sources, members)
        else:
            allowed = sources[:, None] != members[None, :]
        allowed &= rows[:, TARGET][:, None] != members[None, :]
        # the sample's own mined negatives stay negatives, as in eq. 5, whatever the fallback chose
        own = torch.zeros_like(allowed)
        count, n_neg = rows.shape[0], rows.shape[1] - FIRST_NEGATIVE
        first = 2 * count + torch.arange(count)[:, None] * n_neg + torch.arange(n_neg)[None, :]
        own.scatter_(1, first, True)
        return StepLabels(real_positive.to(self.device), (allowed | own).to(self.device), target_same_place)

    def train_step(self, batch: torch.Tensor, labels: StepLabels) -> dict[str, torch.Tensor]:
        config, amp = self.config, self.use_amp
        with autocast(self.device, amp):
            out = self.train_forward(batch)
        _set_requires_grad(self.discriminators, False)
        with autocast(self.device, amp):
            total_g, terms = generator_objective(out, batch, self.discriminators, config, labels)
        self.optimizer_g.zero_grad(set_to_none=True)
        self.scaler.scale(total_g).backward()
        self.scaler.step(self.optimizer_g)
        _set_requires_grad(self.discriminators, True)
        if config.use_i2i:
            with autocast(self.device, amp):
                translated = out["translated"].detach()
                logits = self.discriminator_step(batch[:len(translated)], translated)
                loss_d = discriminator_objective(logits, config)
            self.optimizer_d.zero_grad(set_to_none=True)
            self.scaler.scale(loss_d).backward()
            self.scaler.step(self.optimizer_d)
            terms["loss_d"] = loss_d
        self.scaler.update()
        self.scheduler_g.step()
        if config.use_i2i:
            self.scheduler_d.step()
        return {name: value.detach().float() for name, value in terms.items()}

    # --- the loop -------------------------------------------------------------------------------
    def run(self) -> TrainSummary:
        config, main = self.config, self.context.is_main
        columns = loss_columns(config.use_i2i, contrastive_term_name(config), config.weight_paired > 0,
                               config.weight_domain_filters > 0)
        log = self.loss_log = LossLog(self.run_dir / "losses.csv", columns)
        if main:
            log.start(self.step if self.resume_state is not None else None)
        undecided = self.budget is not None and self.budget.fixed_total is None  # no total until the probe ends
        bar = tqdm(total=None if undecided else self.total_steps, initial=self.step, desc="train MDUIT", unit="step",
                   dynamic_ncols=True, disable=not (main and self.options.progress))
        started = time.perf_counter() - self.elapsed
        last: dict[str, float] = {}
        while self.step < self.total_steps:
            epoch, first = divmod(self.step, self.steps_per_epoch)
            if self.plan is None or self.plan_epoch != epoch:
                self.plan, self.plan_epoch = self._plan_epoch(epoch), epoch
            remaining = min(self.steps_per_epoch - first, self.total_steps - self.step)
            rows = rank_rows(self.plan, first, remaining, config.batch_size, self.context.rank,
                             self.context.world_size)
            batches = self.store.iter_steps(rows, config.batch_size, pin_memory=self.device.type == "cuda",
                                            device=self.device)
            for index, batch in enumerate(batches):
                step_rows = rows[index * config.batch_size:(index + 1) * config.batch_size]
                terms = self.train_step(batch.to(self.device, non_blocking=True), self.step_labels(step_rows))
                self.step += 1
                if self.average is not None:
                    self.average.update(self.model, self.step)
                self.elapsed = time.perf_counter() - started
                if self.budget is not None:
                    self._apply_budget()
                    bar.total = self.total_steps
                if self.step % config.log_every == 0 or self.step == self.total_steps:
                    last = self._log(log, bar, terms, epoch)
                bar.update(1)
                if self._checkpoint_due() or self.step in (self.total_steps, self.options.stop_after):
                    self._checkpoint()
                if self.step == self.options.stop_after and self.step < self.total_steps:
                    bar.close()
                    return self._summary(last, stopped=True)
                if self.step >= self.total_steps:
                    break
        bar.close()
        finish_run(self._finished(), last)
        return self._summary(last, stopped=False)

    def domain_filters(self) -> tuple[dict, dict, dict]:
        """(mean filter, exemplar names, count) per domain of the current weights, as the end of training
        computes them (for scoring translations of a run stopped early)."""
        return domain_appearance_filters(self._finished())

    @property
    def inference_model(self) -> MDUIT:
        """The weights the run writes: the moving average (``ema_decay``) or the training weights."""
        return self.average.model if self.average is not None else self.model

    def _finished(self) -> FinishedTraining:
        return FinishedTraining(run_dir=self.run_dir, config=self.config, options=self.options, context=self.context,
                                model=self.inference_model, discriminators=self.discriminators,
                                training_set=self.training_set, store=self.store, device=self.device,
                                mixed_precision=self.use_amp, step=self.step, total_steps=self.total_steps,
                                steps_per_epoch=self.steps_per_epoch, elapsed=self.elapsed,
                                stopped_by_budget=self.stopped_by_budget)

    def _log(self, log: LossLog, bar, terms: dict[str, torch.Tensor], epoch: int) -> dict[str, float]:
        names = sorted(terms)
        values = self.context.mean(torch.stack([terms[n].cpu() for n in names])).tolist()
        losses = dict(zip(names, values))
        if self.context.is_main:
            log.append({"step": self.step, "epoch": epoch, "lr": float(self.scheduler_g.get_last_lr()[0]),
                        "seconds": self.elapsed, **losses})
            shown = ("rec_self", "rec_cycle", contrastive_term_name(self.config), "nce_acc", "loss_d")
            bar.set_postfix({k: f"{losses[k]:.3f}" for k in shown if k in losses}, refresh=False)
        return losses

    def _checkpoint_due(self) -> bool:
        """Every ``checkpoint_every`` steps, and every ``checkpoint_every_s`` seconds (rank 0's clock) so that
        a run stopped early (slow steps, a busy machine) can still be resumed."""
        if self.step % self.config.checkpoint_every == 0:
            return True
        late = torch.tensor([self.elapsed - self.last_checkpoint_s >= self.config.checkpoint_every_s])
        return bool(self.context.broadcast(late).item())

    def _checkpoint(self) -> None:
        self.last_checkpoint_s = self.elapsed
        gathered = self.context.all_gather_object(ckpt.rng_state())
        if self.context.is_main:
            state = {"config": self.config.to_dict(), "total_steps": self.total_steps, "elapsed_s": self.elapsed,
                     "plan": self.plan, "plan_epoch": self.plan_epoch, "rng": gathered,
                     "model": self.model.state_dict(), "discriminators": self.discriminators.state_dict(),
                     "optimizer_g": self.optimizer_g.state_dict(), "optimizer_d": self.optimizer_d.state_dict(),
                     "scheduler_g": self.scheduler_g.state_dict(), "scheduler_d": self.scheduler_d.state_dict(),
                     "scaler": self.scaler.state_dict(), "world_size": self.context.world_size,
                     "pairing_s": self.pairing_s, "stopped_by_budget": self.stopped_by_budget,
                     "budget": vars(self.budget).copy() if self.budget is not None else {},
                     "average": self.average.state_dict() if self.average is not None else None,
                     "torch_threads": torch.get_num_threads()}
            ckpt.save_checkpoint(self.run_dir, state, self.step, self.options.keep_checkpoints)
            self.loss_log.plot(self.run_dir / "losses.png")
        self.context.barrier()

    def _summary(self, losses: dict[str, float], stopped: bool) -> TrainSummary:
        return TrainSummary(self.run_dir, self.step, self.total_steps, self.step / self.steps_per_epoch,
                            self.elapsed, losses, stopped, self.context.world_size, self.stopped_by_budget)

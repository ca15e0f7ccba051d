"""Weakly supervised NetVLAD training by pose (``mduit-loc train-netvlad``).

Each epoch: cache descriptors of the epoch's anchors, their potential positives and a random
negative pool with the current model; build tuples (anchor, best positive, hardest negatives)
(see ``mining``); then take Adam steps on the triplet loss
``mean_j max(0, m + |q - p|^2 - |q - n_j|^2)`` (m = 0.1, the paper's loss with the sum over
negatives averaged) or a contrastive loss. The cluster centres start from k-means of local
features; an optional PCA whitening is fitted on training descriptors at the end.

Outputs in RUN: ``model.pt`` + ``run.json`` (``load_netvlad`` reads them), ``loss.csv``,
``checkpoints/last.pt`` (resume with ``resume=True``).
"""
from __future__ import annotations

import json
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from mduit_loc.datasets.types import TrainingImage
from mduit_loc.errors import MduitError
from mduit_loc.nn.vgg import VGG16Trunk
from mduit_loc.output_lock import output_lock
from mduit_loc.retrieval.netvlad.mining import (
    PoseGraph,
    SupervisionThresholds,
    eligible_anchors,
    images_to_describe,
    mine_triplets,
)
from mduit_loc.retrieval.netvlad.model import NetVLADDescriptor, build_netvlad, save_netvlad_run
from mduit_loc.retrieval.netvlad.train_config import VGG16_FIRST_TRAINED_MODULE, NetVLADTrainConfig
from mduit_loc.retrieval.netvlad.train_data import describe_images, init_clusters, pca_whitening, triplet_loader
from mduit_loc.retrieval.netvlad.train_io import (
    LossLog,
    check_resumable,
    last_checkpoint_path,
    load_checkpoint,
    save_checkpoint,
)
from mduit_loc.runtime import autocast, default_num_workers, seed_everything
from mduit_loc.torch_io import thread_mismatch


# --- losses -----------------------------------------------------------------------------------
def triplet_loss(descriptors: torch.Tensor, margin: float) -> tuple[torch.Tensor, dict[str, float]]:
    """(B, 2 + n, D) rows [anchor, positive, negatives] -> NetVLAD's margin loss on squared distances."""
    anchor, positive, negatives = descriptors[:, 0], descriptors[:, 1], descriptors[:, 2:]
    positive_sq = (anchor - positive).pow(2).sum(dim=1)                       # (B,)
    negative_sq = (anchor.unsqueeze(1) - negatives).pow(2).sum(dim=2)         # (B, n)
    violations = F.relu(margin + positive_sq.unsqueeze(1) - negative_sq)
    stats = {"active_fraction": float((violations > 0).float().mean()),
             "positive_distance": float(positive_sq.detach().mean()),
             "negative_distance": float(negative_sq.detach().mean())}
    return violations.mean(), stats


def contrastive_loss(descriptors: torch.Tensor, margin: float) -> tuple[torch.Tensor, dict[str, float]]:
    """Pull the positive (squared distance), push negatives beyond ``margin`` (squared hinge)."""
    anchor, positive, negatives = descriptors[:, 0], descriptors[:, 1], descriptors[:, 2:]
    positive_sq = (anchor - positive).pow(2).sum(dim=1)
    negative_dist = (anchor.unsqueeze(1) - negatives).pow(2).sum(dim=2).clamp(min=1e-12).sqrt()
    pushes = F.relu(margin - negative_dist).pow(2)
    stats = {"active_fraction": float((pushes > 0).float().mean()),
             "positive_distance": float(positive_sq.detach().mean()),
             "negative_distance": float(negative_dist.detach().pow(2).mean())}
    return 0.5 * (positive_sq.mean() + pushes.mean()), stats


def compute_loss(config: NetVLADTrainConfig, descriptors: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    if config.loss == "triplet":
        return triplet_loss(descriptors, config.margin)
    return contrastive_loss(descriptors, config.contrastive_margin)


@dataclass
class TrainingResult:
    run_dir: Path
    model: NetVLADDescriptor
    checksum: str
    steps: int
    epochs_completed: int
    images_seen: int
    seconds: float
    mining_seconds: float
    final_loss: float | None
    stopped_by: str
    num_images: int
    num_anchors: int


class NetVLADTrainer:
    """One training run in ``run_dir``; ``run()`` trains and writes the run directory."""

    def __init__(self, config: NetVLADTrainConfig, run_dir: str | Path, images: list[TrainingImage],
                 device: torch.device | str = "cpu", vgg_weights: str | Path | None = None,
                 resume: bool = False, progress: bool | None = None, data_description: str | None = None):
        self.config = config
        self.run_dir = Path(run_dir)
        self.images = [image for image in images if image.pose is not None]
        self.device = torch.device(device)
        self.vgg_weights = Path(vgg_weights) if vgg_weights else None
        self.resume = resume
        self.progress = progress
        self.data_description = data_description
        self.workers = config.num_workers if config.num_workers is not None else default_num_workers()
        self.use_amp = bool(config.mixed_precision and self.device.type == "cuda" and torch.cuda.is_bf16_supported())
        self.paths = [image.path for image in self.images]
        thresholds = SupervisionThresholds(positive_distance_m=config.positive_distance_m,
                                           positive_angle_deg=config.positive_angle_deg,
                                           negative_distance_m=config.negative_distance_m)
        self.graph = PoseGraph([image.pose for image in self.images if image.pose is not None],
                               [image.domain for image in self.images], thresholds)
        self.positives = self.graph.potential_positives(config.cross_domain_positives)
        self.anchors = eligible_anchors(self.positives, self.graph.negative_counts(), config.n_negatives)
        if len(self.anchors) == 0:
            raise MduitError(
                f"none of the {len(self.images)} posed training images has both a positive (another image within "
                f"{config.positive_distance_m} m and {config.positive_angle_deg} deg) and {config.n_negatives} "
                f"negatives (beyond {config.negative_distance_m} m): the dataset needs revisits of places")
        # Progress, restored from a checkpoint when resuming.
        self.step = 0
        self.epoch = 0
        self.position = 0          # batches of the current epoch's plan already done
        self.plan: np.ndarray | None = None
        self.elapsed = 0.0
        self.mining_seconds = 0.0
        self.images_seen = 0
        self.freeze_lower = self._freezes_lower_layers()

    # --- set-up ---------------------------------------------------------------------------------
    def _build_model(self, load_weights: bool = True) -> NetVLADDescriptor:
        """``load_weights=False`` when resuming: the checkpoint brings every weight."""
        model = build_netvlad(self.config.architecture())
        if isinstance(model.backbone, VGG16Trunk) and load_weights:  # the vgg16 backbone
            if self.vgg_weights is not None:
                model.backbone.load_torchvision_weights(self.vgg_weights)
            else:
                warnings.warn("NetVLAD vgg16: no --vgg-weights given; VGG-16 is trained from random weights "
                              "(all layers), which needs far more data and time", stacklevel=2)
        return model.to(self.device)

    def init_clusters(self, model: NetVLADDescriptor) -> float:
        """k-means initialisation of the NetVLAD layer from the model's local features."""
        config = self.config
        return init_clusters(model, self.paths, config.size, config.kmeans_images, config.kmeans_descriptors,
                             config.kmeans_iterations, config.describe_batch_size, self.workers, self.device,
                             config.seed)

    def initial_model(self) -> NetVLADDescriptor:
        """The model a fresh run starts from (same seed, so the same weights as ``run()``'s)."""
        seed_everything(self.config.seed)
        model = self._build_model()
        self.init_clusters(model)
        return model

    def _freezes_lower_layers(self) -> bool:
        """Pretrained VGG-16: the paper's best setting trains conv5 and NetVLAD only."""
        return self.config.backbone == "vgg16" and self.vgg_weights is not None and not self.config.fine_tune_all

    @staticmethod
    def _trainable_parameters(model: NetVLADDescriptor, freeze_lower: bool) -> list[torch.nn.Parameter]:
        if freeze_lower:
            for module in list(model.backbone.features)[:VGG16_FIRST_TRAINED_MODULE]:
                module.requires_grad_(False)
        return [p for p in model.parameters() if p.requires_grad]

    def _restore(self, model: NetVLADDescriptor, optimizer: torch.optim.Optimizer, state: dict) -> None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        self.step, self.epoch, self.position = int(state["step"]), int(state["epoch"]), int(state["position"])
        self.plan = state["plan"].numpy() if state["plan"].numel() else None
        self.elapsed, self.mining_seconds = float(state["elapsed"]), float(state["mining_seconds"])
        self.images_seen = int(state["images_seen"])
        torch.set_rng_state(state["rng"])
        if mismatch := thread_mismatch(state):
            print(f"--resume: {mismatch}", file=sys.stderr)

    def _checkpoint(self, model: NetVLADDescriptor, optimizer: torch.optim.Optimizer, elapsed: float) -> None:
        plan = torch.from_numpy(self.plan) if self.plan is not None else torch.zeros(0, dtype=torch.int64)
        save_checkpoint(self.run_dir, {
            "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "optimizer": optimizer.state_dict(), "step": self.step, "epoch": self.epoch,
            "position": self.position, "plan": plan, "elapsed": elapsed, "freeze_lower": self.freeze_lower,
            "mining_seconds": self.mining_seconds, "images_seen": self.images_seen,
            "config": json.dumps(self.config.to_dict(), sort_keys=True), "rng": torch.get_rng_state(),
            "torch_threads": torch.get_num_threads()})

    # --- mining ---------------------------------------------------------------------------------
    def mine_epoch(self, model: NetVLADDescriptor, epoch: int) -> np.ndarray:
        """The shuffled triplet plan of ``epoch`` (deterministic given the model and the seed)."""
        started = time.perf_counter()
        config = self.config
        rng = np.random.default_rng([config.seed, epoch])
        anchors = rng.permutation(self.anchors)[:config.anchors_per_epoch or None]
        pool = np.sort(rng.choice(len(self.images), size=min(config.negative_pool, len(self.images)), replace=False))
        described = images_to_describe(anchors, self.positives, pool)
        descriptors = describe_images(model, [self.paths[i] for i in described], config.size,
                                      config.describe_batch_size, self.workers, self.device, self.use_amp)
        plan = mine_triplets(self.graph, anchors, self.positives, pool, descriptors, described,
                             config.n_negatives, rng)
        self.mining_seconds += time.perf_counter() - started
        return plan

    # --- loop -----------------------------------------------------------------------------------
    def _budget_left(self, elapsed: float) -> str | None:
        if self.config.max_steps is not None and self.step >= self.config.max_steps:
            return "max_steps"
        if self.config.max_seconds is not None and elapsed >= self.config.max_seconds:
            return "max_seconds"
        return None

    def _train_step(self, model, optimizer, batch: torch.Tensor) -> tuple[float, dict[str, float]]:
        images = batch.to(self.device, non_blocking=True)
        tuples, rows = images.shape[:2]
        with autocast(self.device, self.use_amp):
            descriptors = model(images.flatten(0, 1))
        loss, stats = compute_loss(self.config, descriptors.float().view(tuples, rows, -1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        self.images_seen += tuples * rows
        return float(loss.detach()), stats

    def run(self) -> TrainingResult:
        config = self.config
        checkpoint = last_checkpoint_path(self.run_dir)
        if checkpoint.is_file() and not self.resume:
            raise MduitError(f"{self.run_dir} already holds a training checkpoint; pass --resume to continue "
                             "it or choose another --out")
        state = load_checkpoint(self.run_dir) if self.resume and checkpoint.is_file() else None
        if state is not None:
            check_resumable(state["config"], config.to_dict(), NetVLADTrainConfig.MODEL_FIELDS, checkpoint)
            self.freeze_lower = bool(state["freeze_lower"])
        seed_everything(config.seed)
        model = self._build_model(load_weights=state is None)
        optimizer = torch.optim.Adam(self._trainable_parameters(model, self.freeze_lower), lr=config.learning_rate,
                                     weight_decay=config.weight_decay)
        started = time.perf_counter()
        if state is not None:
            self._restore(model, optimizer, state)
            started -= self.elapsed
        else:
            self.init_clusters(model)
        log = LossLog(self.run_dir / "loss.csv", resume_step=self.step if self.resume else None)
        stopped_by, last_loss = "epochs", None
        try:
            stopped_by, last_loss = self._loop(model, optimizer, log, started)
        finally:
            log.close()
        self.elapsed = time.perf_counter() - started
        self._checkpoint(model, optimizer, self.elapsed)
        return self._finish(model, stopped_by, last_loss)

    def _loop(self, model, optimizer, log: LossLog, started: float) -> tuple[str, float | None]:
        config = self.config
        last_loss = None
        model.train()
        while config.epochs is None or self.epoch < config.epochs:
            reason = self._budget_left(time.perf_counter() - started)
            if reason:
                return reason, last_loss
            if self.plan is None:
                self.plan, self.position = self.mine_epoch(model, self.epoch), 0
                model.train()
            done = self.position * config.batch_size
            loader = triplet_loader(self.paths, self.plan[done:], config.size, config.batch_size,
                                    self.workers, self.device.type == "cuda")
            of = f"/{config.epochs}" if config.epochs is not None else ""
            bar = tqdm(loader, desc=f"netvlad epoch {self.epoch + 1}{of}", leave=False,
                       disable=None if self.progress is None else not self.progress)
            for batch in bar:
                last_loss, stats = self._train_step(model, optimizer, batch)
                self.step += 1
                self.position += 1
                elapsed = time.perf_counter() - started
                log.write({"step": self.step, "epoch": self.epoch, "loss": f"{last_loss:.6f}",
                           **{k: f"{v:.6f}" for k, v in stats.items()}, "lr": config.learning_rate,
                           "images_seen": self.images_seen, "seconds": f"{elapsed:.2f}"})
                bar.set_postfix(loss=f"{last_loss:.4f}")
                if self.step % config.checkpoint_every == 0:
                    self._checkpoint(model, optimizer, elapsed)
                reason = self._budget_left(elapsed)
                if reason:
                    return reason, last_loss
            self.epoch += 1
            self.plan, self.position = None, 0
            self._checkpoint(model, optimizer, time.perf_counter() - started)
        return "epochs", last_loss

    # --- outputs --------------------------------------------------------------------------------
    def _finish(self, model: NetVLADDescriptor, stopped_by: str, last_loss: float | None) -> TrainingResult:
        config = self.config
        model.eval()
        if config.whiten_dim is not None:
            rng = np.random.default_rng([config.seed, 1_000_003])
            chosen = rng.choice(len(self.paths), size=min(config.pca_images, len(self.paths)), replace=False)
            descriptors = describe_images(model, [self.paths[i] for i in np.sort(chosen)], config.size,
                                          config.describe_batch_size, self.workers, self.device, self.use_amp)
            weight, bias = pca_whitening(descriptors, config.whiten_dim)
            model.set_whitening(weight.to(self.device), bias.to(self.device))
        training = {"steps": self.step, "epochs_completed": self.epoch, "batch_size": config.batch_size,
                    "images_per_step": config.images_per_step, "images_seen": self.images_seen,
                    "seconds": round(self.elapsed, 2), "mining_seconds": round(self.mining_seconds, 2),
                    "stopped_by": stopped_by, "final_loss": last_loss, "device": str(self.device),
                    "mixed_precision": self.use_amp, "torch": torch.__version__,
                    "torch_threads": torch.get_num_threads()}
        extra = {"dataset": self.data_description, "vgg_weights": str(self.vgg_weights) if self.vgg_weights else None,
                 "num_training_images": len(self.images), "num_anchors": int(len(self.anchors)),
                 "parameter_count": model.parameter_count(), "training": training}
        checksum = save_netvlad_run(model, self.run_dir, config.to_dict(), extra)
        return TrainingResult(self.run_dir, model, checksum, self.step, self.epoch, self.images_seen,
                              self.elapsed, self.mining_seconds, last_loss, stopped_by, len(self.images),
                              int(len(self.anchors)))


def train_netvlad(config: NetVLADTrainConfig, run_dir: str | Path, images: list[TrainingImage],
                  device: torch.device | str = "cpu", vgg_weights: str | Path | None = None,
                  resume: bool = False, progress: bool | None = None,
                  data_description: str | None = None) -> TrainingResult:
    """Train NetVLAD on posed ``images`` and write ``run_dir`` (see the module docstring); ``run_dir`` is
    locked for the run (``output_lock``: one writer)."""
    with output_lock(run_dir, "train-netvlad", clean=("checkpoints",)):
        trainer = NetVLADTrainer(config, run_dir, images, device, vgg_weights, resume, progress, data_description)
        return trainer.run()


def describe_result(result: TrainingResult, config: NetVLADTrainConfig) -> str:
    """What a training run did and wrote (``mduit-loc train-netvlad``'s summary)."""
    model = result.model
    loss = f"{result.final_loss:.4f}" if result.final_loss is not None else "n/a"
    return "\n".join([
        f"NetVLAD ({model.name}, K = {config.clusters}) trained on {result.num_images} posed images "
        f"({result.num_anchors} usable anchors)",
        f"  steps {result.steps} ({result.epochs_completed} epochs, stopped by {result.stopped_by}), "
        f"{result.images_seen} images seen, {result.seconds:.1f} s ({result.mining_seconds:.1f} s mining), "
        f"final loss {loss}",
        f"  descriptor {model.dim}-D at {model.image_size[0]}x{model.image_size[1]}, "
        f"{model.parameter_count():,} parameters, sha256 {result.checksum[:12]}",
        f"  wrote {result.run_dir / 'model.pt'}, run.json, loss.csv"])


@torch.no_grad()
def plan_loss(model: NetVLADDescriptor, config: NetVLADTrainConfig, paths: list[Path], plan: np.ndarray,
              device: torch.device | str = "cpu") -> float:
    """Mean loss of ``model`` over fixed tuples (to compare models on the same triplets)."""
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for batch in triplet_loader(paths, plan, config.size, config.batch_size, 0, False):
        images = batch.to(device)
        descriptors = model(images.flatten(0, 1)).view(images.shape[0], images.shape[1], -1)
        loss, _ = compute_loss(config, descriptors)
        total += float(loss) * images.shape[0]
        count += images.shape[0]
    model.train(was_training)
    return total / max(count, 1)

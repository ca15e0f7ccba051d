"""The MDUIT run directory: writing it at the end of training and loading it for inference.

``RUN/model.pt``        state dict of the inference model (E_c, E_a incl. its VGG trunk, G, H).
``RUN/appearances.pt``  {"domains": [names], "filters": (D, c', c/groups, k, k) mean filter per domain,
                         "counts": (D,) images averaged, "exemplars": [[names closest to each mean]]}.
``RUN/run.json``        {"kind": "mduit", "config": {...}, "checksum": sha256 of model.pt, "dataset",
                         "domains", "training": {...}, ...}.
All ``.pt`` files load with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from mduit_loc.errors import ConfigMismatchError, DataNotFoundError, FormatError
from mduit_loc.io_utils import atomic_path, write_json_atomic
from mduit_loc.torch_io import load_torch_file, sha256_file
from mduit_loc.translation.config import TranslationConfig
from mduit_loc.translation.mduit import MDUIT, build_mduit

RUN_KIND = "mduit"
MODEL_FILE = "model.pt"
APPEARANCES_FILE = "appearances.pt"
EXEMPLARS_PER_DOMAIN = 3

__all__ = ["MDUIT", "load_mduit", "save_model", "save_appearances", "write_run_json", "sha256_file",
           "summarise_domain_filters"]


def save_model(model: MDUIT, run_dir: str | Path) -> str:
    """Write ``model.pt`` atomically; returns its sha256."""
    path = Path(run_dir) / MODEL_FILE
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return sha256_file(path)


def summarise_domain_filters(filters: dict[str, torch.Tensor], names: dict[str, list[str]]
                             ) -> tuple[dict[str, torch.Tensor], dict[str, list[str]]]:
    """Per domain: the mean of the images' filters (n, ...) and the names of those closest to it (cosine)."""
    means, exemplars = {}, {}
    for domain, stack in filters.items():
        flat = stack.float().flatten(1)
        mean = flat.mean(dim=0)
        means[domain] = mean.view(1, *stack.shape[1:])
        closeness = torch.nn.functional.cosine_similarity(flat, mean[None], dim=1)
        order = closeness.argsort(descending=True)[:EXEMPLARS_PER_DOMAIN].tolist()
        exemplars[domain] = [names[domain][i] for i in order]
    return means, exemplars


def save_appearances(run_dir: str | Path, means: dict[str, torch.Tensor], exemplars: dict[str, list[str]],
                     counts: dict[str, int]) -> None:
    domains = sorted(means)
    state = {"domains": domains, "filters": torch.cat([means[d].float().cpu() for d in domains]),
             "counts": torch.tensor([counts[d] for d in domains]), "exemplars": [exemplars[d] for d in domains]}
    with atomic_path(Path(run_dir) / APPEARANCES_FILE) as tmp:
        torch.save(state, tmp)


def write_run_json(run_dir: str | Path, config: TranslationConfig, checksum: str, extra: dict) -> None:
    data = {"kind": RUN_KIND, "format_version": 1, "config": config.to_dict(), "checksum": checksum,
            "model_file": MODEL_FILE, "appearances_file": APPEARANCES_FILE}
    data.update(extra)
    write_json_atomic(Path(run_dir) / "run.json", data)


def read_run_json(run_dir: Path) -> dict:
    path = run_dir / "run.json"
    if not path.is_file():
        raise DataNotFoundError(path, "MDUIT run description", "an MDUIT run folder from 'mduit-loc train' holds "
                                "run.json and model.pt")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise FormatError(path, None, "a JSON object", got=str(err)) from err
    if not isinstance(meta, dict) or meta.get("kind") != RUN_KIND:
        found = meta.get("kind") if isinstance(meta, dict) else meta
        raise FormatError(path, None, f'"kind": "{RUN_KIND}"', got=repr(found))
    if not isinstance(meta.get("config"), dict):
        raise FormatError(path, None, 'a "config" object with the translation settings')
    return meta


def _load_state(path: Path, what: str) -> dict:
    return load_torch_file(path, what, "train a model first: mduit-loc train", f"{what} saved by torch.save")


def load_mduit(run_dir: str | Path, device: str | torch.device = "cpu", verify_checksum: bool = True) -> MDUIT:
    """Load ``RUN`` (or ``RUN/model.pt``) into an ``MDUIT`` in eval mode on ``device``."""
    run_dir = Path(run_dir)
    if run_dir.is_file():
        run_dir = run_dir.parent
    meta = read_run_json(run_dir)
    config = TranslationConfig.from_dict(meta["config"], where=str(run_dir / "run.json"))
    model_path = run_dir / meta.get("model_file", MODEL_FILE)
    checksum = sha256_file(model_path) if model_path.is_file() else ""
    if verify_checksum and checksum and checksum != meta.get("checksum"):
        raise ConfigMismatchError(f"{model_path}: sha256 {checksum[:12]}... differs from the checksum in run.json "
                                  f"({str(meta.get('checksum'))[:12]}...); the model file was changed or replaced")
    state = _load_state(model_path, "MDUIT model weights (model.pt)")
    with torch.random.fork_rng(devices=[]):  # building initialises weights: leave the caller's RNG alone
        model = build_mduit(config, warn_untrained_vgg=False)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise FormatError(model_path, None, "weights matching the config in run.json", got=str(err)[:200]) from err
    model.checksum = checksum
    appearances = run_dir / meta.get("appearances_file", APPEARANCES_FILE)
    if appearances.is_file():
        bank = _load_state(appearances, "per-domain appearance filters")
        model.set_domain_filters(dict(zip(bank["domains"], bank["filters"])),
                                 dict(zip(bank["domains"], bank.get("exemplars", [[]] * len(bank["domains"])))))
    return model.to(device).eval()

"""The MDUIT run directory: writing it at the end of training and loading it for inference.

``RUN/model.pt``        state dict of the inference model (E_c, E_a incl. its VGG trunk, G, H).
``RUN/appearances.pt``  {"domains": [names], "filters": (D, c', c/groups, k, k) mean filter per domain,
                         "counts": (D,) images averaged, "exemplars": [[names closest to each mean]]}.
``RUN/run.json``        {"kind": "mduit", "config": {...}, "checksum": SHA-256 of the weights (tensor names,
                         dtypes, shapes and bytes: ``torch_io.state_dict_sha256``), "checksum_method",
                         "dataset", "domains", "training": {...}, ...}. Runs without "checksum_method"
                         recorded the SHA-256 of the model.pt bytes; they load as before.
All ``.pt`` files load with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

from pathlib import Path

import torch

from mduit_loc.errors import DataNotFoundError, FormatError
from mduit_loc.io_utils import atomic_path, read_json_file, write_json_atomic
from mduit_loc.output_lock import settle
from mduit_loc.torch_io import STATE_CHECKSUM, load_torch_file, sha256_file, state_dict_sha256, verify_model_checksum
from mduit_loc.translation.config import TranslationConfig
from mduit_loc.translation.mduit import MDUIT, build_mduit

RUN_KIND = "mduit"
MODEL_FILE = "model.pt"
APPEARANCES_FILE = "appearances.pt"
EXEMPLARS_PER_DOMAIN = 3
RUN_MEMBERS = (MODEL_FILE, APPEARANCES_FILE, "run.json")   # written as one output set at the end of training

__all__ = ["MDUIT", "load_mduit", "save_model", "save_appearances", "write_run_json", "sha256_file",
           "summarise_domain_filters"]


def save_model(model: MDUIT, run_dir: str | Path) -> str:
    """Write ``model.pt`` atomically; returns the checksum of its weights (``state_dict_sha256``)."""
    path = Path(run_dir) / MODEL_FILE
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return state_dict_sha256(state)


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
            "checksum_method": STATE_CHECKSUM, "model_file": MODEL_FILE, "appearances_file": APPEARANCES_FILE}
    data.update(extra)
    write_json_atomic(Path(run_dir) / "run.json", data)


def read_run_json(run_dir: Path) -> dict:
    path = run_dir / "run.json"
    if not path.is_file():
        raise DataNotFoundError(path, "MDUIT run description", "an MDUIT run folder from 'mduit-loc train' holds "
                                "run.json and model.pt")
    meta = read_json_file(path, "MDUIT run description")
    if not isinstance(meta, dict) or meta.get("kind") != RUN_KIND:
        found = meta.get("kind") if isinstance(meta, dict) else meta
        raise FormatError(path, None, f'"kind": "{RUN_KIND}"', got=repr(found))
    if not isinstance(meta.get("config"), dict):
        raise FormatError(path, None, 'a "config" object with the translation settings')
    return meta


def _member(meta: dict, key: str, default: str, run_dir: Path) -> str:
    """A file name recorded in run.json: a plain name inside the run folder (never a path elsewhere)."""
    name = meta.get(key, default)
    if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
        raise FormatError(run_dir / "run.json", None, f'"{key}": a file name inside the run folder', got=repr(name))
    return name


def _load_state(path: Path, what: str) -> dict:
    return load_torch_file(path, what, "train a model first: mduit-loc train", f"{what} saved by torch.save")


def load_mduit(run_dir: str | Path, device: str | torch.device = "cpu", verify_checksum: bool = True) -> MDUIT:
    """Load ``RUN`` (or ``RUN/model.pt``) into an ``MDUIT`` in eval mode on ``device``."""
    run_dir = Path(run_dir)
    if run_dir.is_file():
        run_dir = run_dir.parent
    settle(run_dir)   # a commit of the run's files that was interrupted is finished first
    meta = read_run_json(run_dir)
    config = TranslationConfig.from_dict(meta["config"], where=str(run_dir / "run.json"))
    model_path = run_dir / _member(meta, "model_file", MODEL_FILE, run_dir)
    state = _load_state(model_path, "MDUIT model weights (model.pt)")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise FormatError(model_path, None, "a state dict (a dict of tensors)", got=type(state).__name__)
    if verify_checksum:
        checksum = verify_model_checksum(meta, state, model_path, run_dir / "run.json")
    else:
        checksum = str(meta.get("checksum") or state_dict_sha256(state))
    with torch.random.fork_rng(devices=[]):  # building initialises weights: leave the caller's RNG alone
        model = build_mduit(config, warn_untrained_vgg=False)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise FormatError(model_path, None, "weights matching the config in run.json", got=str(err)[:200]) from err
    model.checksum = checksum
    appearances = run_dir / _member(meta, "appearances_file", APPEARANCES_FILE, run_dir)
    if appearances.is_file():
        bank = _load_state(appearances, "per-domain appearance filters")
        model.set_domain_filters(dict(zip(bank["domains"], bank["filters"])),
                                 dict(zip(bank["domains"], bank.get("exemplars", [[]] * len(bank["domains"])))))
    return model.to(device).eval()

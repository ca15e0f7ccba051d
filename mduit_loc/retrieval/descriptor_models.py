"""Global descriptor registry: one interface for MDUIT ``z``, the NetVLAD baseline and raw pixels.

``load_descriptor(spec, device)`` accepts
- an MDUIT run directory (``run.json`` with ``"kind": "mduit"``), or its ``model.pt``: the
  descriptor is ``z = H(E_c(I))``; ``RUN#content:HxW`` instead average-pools the content features
  ``E_c(I)`` onto an H x W grid and flattens them (keeps the spatial layout that global pooling
  discards; on Nordland's low-resolution frames that layout is what tells places apart);
- a NetVLAD run directory (``"kind": "netvlad"``) or an official ``*.mat`` checkpoint;
- ``raw-pixels`` or ``raw-pixels:HxW`` (a down-sampled, contrast-normalised thumbnail; a
  model-free baseline and the descriptor used to test the retrieval machinery).

Every descriptor takes float RGB in [0, 1] of shape (B, 3, H, W) at ``image_size`` and returns
float32 (B, D) L2-normalised vectors; ``checksum`` identifies the exact weights so an index
can refuse queries described by another model.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from mduit_loc.errors import DataNotFoundError, FormatError, MduitError
from mduit_loc.io_utils import read_json_file
from mduit_loc.nn.chunking import apply_in_chunks
from mduit_loc.retrieval.netvlad.model import load_netvlad
from mduit_loc.runtime import autocast
from mduit_loc.translation.model_io import load_mduit

RAW_PIXELS = "raw-pixels"
VIEW_SEPARATOR = "#"          # RUN#content:HxW picks another view of an MDUIT run
CONTENT_VIEW = "content"
_RAW_PIXELS_GRID = (16, 16)
_RAW_PIXELS_UPSAMPLE = 4  # images are decoded at 4x the grid and area-averaged down


class GlobalDescriptor:
    """Base class: ``name``, ``dim``, ``image_size`` (H, W), ``checksum``, ``spec``, ``__call__``."""

    name: str
    dim: int
    image_size: tuple[int, int]
    checksum: str
    spec: str
    device: torch.device

    def describe(self, images: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> float32 (B, D), L2-normalised, on ``self.device``."""
        with torch.inference_mode(), autocast(self.device):
            vectors = self.describe(images.to(self.device, non_blocking=True))
        return F.normalize(vectors.float(), dim=1)

    @property
    def translator(self):
        """The MDUIT module when this descriptor can also translate images (``None`` otherwise)."""
        return None

    def describe_identity(self) -> dict:
        return {"name": self.name, "dim": int(self.dim), "checksum": self.checksum,
                "image_size": list(self.image_size), "spec": self.spec}


class RawPixelsDescriptor(GlobalDescriptor):
    """Area-averaged RGB thumbnail, zero-mean per image, L2-normalised (no learning at all)."""

    def __init__(self, grid: tuple[int, int] = _RAW_PIXELS_GRID, device: torch.device | str = "cpu"):
        self.grid = (int(grid[0]), int(grid[1]))
        self.name = RAW_PIXELS
        self.dim = 3 * self.grid[0] * self.grid[1]
        self.image_size = (self.grid[0] * _RAW_PIXELS_UPSAMPLE, self.grid[1] * _RAW_PIXELS_UPSAMPLE)
        self.spec = f"{RAW_PIXELS}:{self.grid[0]}x{self.grid[1]}"
        self.checksum = hashlib.sha256(f"{self.spec}:v1".encode()).hexdigest()
        self.device = torch.device(device)

    def describe(self, images: torch.Tensor) -> torch.Tensor:
        thumbnails = F.adaptive_avg_pool2d(images.float(), self.grid).flatten(1)
        # Removing the mean brightness makes the thumbnail a little less sensitive to exposure.
        return thumbnails - thumbnails.mean(dim=1, keepdim=True)


class ModuleDescriptor(GlobalDescriptor):
    """Adapter for a loaded network whose method ``method`` returns (B, D) descriptors."""

    def __init__(self, module, name: str, spec: str, method: str, device: torch.device):
        self.module = module.eval() if hasattr(module, "eval") else module
        self.name = name
        self.spec = spec
        self.device = torch.device(device)
        self._method = getattr(module, method)
        self.dim = int(getattr(module, "descriptor_dim", None) or module.dim)
        height, width = (int(v) for v in module.image_size)
        self.image_size = (height, width)
        self.checksum = str(module.checksum)
        self._chunk_sizes: dict[tuple, int] = {}   # the largest tensor per image (``nn.chunking``)

    def describe(self, images: torch.Tensor) -> torch.Tensor:
        # a large batch runs in pieces that stay within 32-bit index math
        return apply_in_chunks(self._method, images, cache=self._chunk_sizes)

    @property
    def translator(self):
        module = self.module
        has_translation = hasattr(module, "translate") and hasattr(module, "appearance_filters")
        # The --no-i2i ablation has an untrained translator: it must not translate the database.
        usable = has_translation and bool(getattr(module, "can_translate", True))
        return module if self.name == "mduit" and usable else None


class ContentGridDescriptor(ModuleDescriptor):
    """MDUIT's content features ``E_c(I)`` average-pooled onto a ``grid`` and flattened."""

    def __init__(self, module, spec: str, grid: tuple[int, int], device: torch.device):
        super().__init__(module, "mduit", spec, "content", device)
        self.grid = grid
        self.dim = int(module.config.content_channels) * grid[0] * grid[1]
        view = f"{CONTENT_VIEW}:{grid[0]}x{grid[1]}"
        # Another vector space than z: an index of z must refuse these queries, and vice versa.
        self.checksum = hashlib.sha256(f"{module.checksum}{VIEW_SEPARATOR}{view}".encode()).hexdigest()

    def describe(self, images: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(super().describe(images), self.grid).flatten(1)


# --- registry -------------------------------------------------------------------------------
DescriptorFactory = Callable[[str, torch.device], GlobalDescriptor]
_FACTORIES: dict[str, DescriptorFactory] = {}


def register_descriptor(prefix: str, factory: DescriptorFactory) -> None:
    """Make ``load_descriptor`` accept specs ``prefix`` / ``prefix:...`` (plug-ins and test doubles)."""
    _FACTORIES[prefix] = factory


def _parse_grid(spec: str, default: tuple[int, int] = _RAW_PIXELS_GRID,
                expected: str = "'raw-pixels' or 'raw-pixels:HxW' (e.g. raw-pixels:16x16)") -> tuple[int, int]:
    _, _, size = spec.partition(":")
    if not size:
        return default
    try:
        height, width = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise MduitError(f"descriptor {spec!r}: expected {expected}") from None
    if height < 1 or width < 1:
        raise MduitError(f"descriptor {spec!r}: the grid must be at least 1x1")
    return height, width


register_descriptor(RAW_PIXELS, lambda spec, device: RawPixelsDescriptor(_parse_grid(spec), device))


def read_run_kind(run_dir: Path) -> str:
    path = run_dir / "run.json"
    meta = read_json_file(path, "model run description")
    kind = meta.get("kind") if isinstance(meta, dict) else None
    if kind not in ("mduit", "netvlad"):
        raise FormatError(path, None, "\"kind\": \"mduit\" or \"netvlad\"", got=repr(kind))
    return kind


def _load_mduit(run_dir: Path, device: torch.device, view: str | None = None) -> GlobalDescriptor:
    if view is not None and view.split(":", 1)[0] != CONTENT_VIEW:
        raise MduitError(f"{run_dir}{VIEW_SEPARATOR}{view}: unknown MDUIT view {view!r}; expected "
                         f"'{CONTENT_VIEW}:HxW' (e.g. {run_dir}{VIEW_SEPARATOR}{CONTENT_VIEW}:4x8)")
    model = load_mduit(run_dir, device)
    if view is None:
        return ModuleDescriptor(model, "mduit", str(run_dir), "describe", device)
    grid = _parse_grid(view, (4, 4), f"'{CONTENT_VIEW}:HxW' (e.g. {CONTENT_VIEW}:4x8)")
    return ContentGridDescriptor(model, f"{run_dir}{VIEW_SEPARATOR}{CONTENT_VIEW}:{grid[0]}x{grid[1]}", grid, device)


def _load_netvlad(path: Path, device: torch.device) -> GlobalDescriptor:
    model = load_netvlad(path, device)
    return ModuleDescriptor(model, str(getattr(model, "name", "netvlad")), str(path), "forward", device)


def load_descriptor(spec: str | Path, device: torch.device | str = "cpu") -> GlobalDescriptor:
    """Resolve ``spec`` (run dir, ``.mat``, ``raw-pixels[:HxW]``, registered prefix) to a descriptor."""
    device = torch.device(device)
    text = str(spec)
    prefix = text.split(":", 1)[0]
    if prefix in _FACTORIES and not Path(text).exists():
        return _FACTORIES[prefix](text, device)
    view = None
    if VIEW_SEPARATOR in text and not Path(text).exists():
        text, view = text.rsplit(VIEW_SEPARATOR, 1)
    # Absolute: the spec is stored in the index manifest and must work from any working directory.
    path = Path(text).expanduser().resolve() if Path(text).exists() else Path(text)
    if path.is_file() and path.name == "model.pt":
        path = path.parent
    if path.is_file() and view is not None:
        raise MduitError(f"{path}{VIEW_SEPARATOR}{view}: views ({VIEW_SEPARATOR}...) exist for MDUIT run "
                         "directories only")
    if path.is_file() and path.suffix.lower() == ".mat":
        return _load_netvlad(path, device)
    if path.is_dir():
        if not (path / "run.json").is_file():
            raise DataNotFoundError(path / "run.json", "model run description",
                                    "a model directory holds run.json and model.pt (from 'mduit-loc train' "
                                    "or 'mduit-loc train-netvlad')")
        kind = read_run_kind(path)
        if kind == "mduit":
            return _load_mduit(path, device, view)
        if view is not None:
            raise MduitError(f"{path}{VIEW_SEPARATOR}{view}: views ({VIEW_SEPARATOR}...) exist for MDUIT runs only")
        return _load_netvlad(path, device)
    known = ", ".join(sorted(_FACTORIES))
    raise DataNotFoundError(path, "descriptor model",
                            f"give an MDUIT or NetVLAD run directory, a NetVLAD .mat file, or one of: {known}")


def load_translator(spec: str | Path, device: torch.device | str = "cpu"):
    """The MDUIT network of a run directory (for translating the database)."""
    descriptor = load_descriptor(spec, device)
    if descriptor.translator is None:
        raise MduitError(f"{spec}: translating the database needs an MDUIT run (with translate and "
                         f"appearance_filters), but this is a {descriptor.name!r} descriptor")
    return descriptor.translator

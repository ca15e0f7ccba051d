"""``NetVLADDescriptor`` (input normalisation + backbone + NetVLAD + optional whitening) and its files.

Two sources (contract 3 in the project brief), both through ``load_netvlad(path, device)``:
- a run directory from ``mduit-loc train-netvlad``: ``RUN/run.json`` = {"kind": "netvlad",
  "config": {...}, "architecture": {...}, "checksum": SHA-256 of the weights
  (``torch_io.state_dict_sha256``; older runs: of the model.pt bytes), "checksum_method", ...} and
  ``RUN/model.pt`` (a plain state dict, loadable with ``weights_only=True``);
- an official ``*_struct.mat`` (VGG-16 + NetVLAD K = 64 + PCA whitening to 4096-D).

Every model takes float RGB in [0, 1] (B, 3, H, W) and returns (B, dim) L2-normalised float32.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias, cast

import torch
from torch import nn

from mduit_loc import torch_io
from mduit_loc.errors import DataNotFoundError, FormatError, MduitError
from mduit_loc.io_utils import atomic_path, read_json_file, write_json_atomic
from mduit_loc.nn.vgg import VGG16_LAYER_NAMES, VGG16Trunk, vgg16_out_channels
from mduit_loc.output_lock import settle
from mduit_loc.output_set import staged_outputs
from mduit_loc.retrieval.netvlad.backbones import (
    BACKBONES,
    LIGHT_CHANNELS,
    InputNormalization,
    LightBackbone,
    imagenet_normalization,
    make_backbone,
    matconvnet_normalization,
    vgg16_conv5_3,
)
from mduit_loc.retrieval.netvlad.layer import NetVLAD, matconvnet_l2_normalize
from mduit_loc.retrieval.netvlad.matconvnet import MatNetVLAD, TrunkLayer, read_matconvnet_netvlad
from mduit_loc.torch_io import STATE_CHECKSUM, sha256_file, state_dict_sha256

# The conv trunks a descriptor runs on: trained here (light, VGG-16) or read from a .mat file.
Backbone: TypeAlias = "LightBackbone | VGG16Trunk | MatConvNetTrunk"
RUN_KIND = "netvlad"
MODEL_FILE = "model.pt"
RUN_FILE = "run.json"
# The official nets were trained on 640x480 Pittsburgh/Tokyo crops; RobotCar images are square
# 1024x1024, so half resolution keeps the training pixel scale without distorting the aspect.
MAT_IMAGE_SIZE = (512, 512)


@dataclass(kw_only=True)
class NetVLADArchitecture:
    """What ``build_netvlad`` needs to rebuild a trained model (stored in run.json)."""

    backbone: str = "light"                         # vgg16 | light
    num_clusters: int = 32                          # K (paper: 64)
    light_channels: tuple[int, ...] = LIGHT_CHANNELS
    assignment_bias: bool = False                   # the paper's "vlad" layer has none
    whiten_dim: int | None = None                   # PCA-whitened output size, None: D x K
    image_size: tuple[int, int] = (128, 128)        # (H, W) extraction size

    def __post_init__(self):
        self.light_channels = tuple(int(c) for c in self.light_channels)
        self.image_size = cast("tuple[int, int]", tuple(int(v) for v in self.image_size))  # lists from JSON
        if self.backbone not in BACKBONES:
            raise MduitError(f"unknown NetVLAD backbone {self.backbone!r}; one of {', '.join(BACKBONES)}")
        if self.num_clusters < 1 or (self.whiten_dim is not None and self.whiten_dim < 1):
            raise MduitError("NetVLAD: num_clusters and whiten_dim must be >= 1")

    @property
    def name(self) -> str:
        return f"netvlad-{self.backbone}"

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict, path: Path | None = None) -> "NetVLADArchitecture":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise FormatError(path or "run.json", None, f"architecture fields among {sorted(known)}",
                              got=", ".join(unknown))
        return cls(**data)


class NetVLADDescriptor(nn.Module):
    """[0, 1] RGB -> normalisation -> backbone -> NetVLAD -> (whitening -> L2) -> (B, dim)."""

    def __init__(self, normalization: InputNormalization, backbone: Backbone, netvlad: NetVLAD,
                 whitening: nn.Linear | None, name: str, image_size: tuple[int, int]):
        super().__init__()
        self.normalization = normalization
        self.backbone = backbone
        self.netvlad = netvlad
        self.whitening = whitening
        self.name = name
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.checksum = ""
        self.architecture: NetVLADArchitecture | None = None

    @property
    def dim(self) -> int:
        return self.whitening.out_features if self.whitening is not None else self.netvlad.output_dim

    def local_features(self, images: torch.Tensor) -> torch.Tensor:
        """Backbone output (B, D, h, w) for images in [0, 1]."""
        return self.backbone(self.normalization(images))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        vlad = self.netvlad(self.local_features(images))
        if self.whitening is None:
            return vlad
        with torch.autocast(vlad.device.type, enabled=False):
            return matconvnet_l2_normalize(self.whitening(vlad.float()), dim=1)

    def set_whitening(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        """Install a (OUT, D*K) whitening map (PCA fitted after training, or the official one)."""
        out_dim, in_dim = weight.shape
        if in_dim != self.netvlad.output_dim:
            raise ValueError(f"whitening expects {self.netvlad.output_dim} inputs, got {in_dim}")
        linear = nn.Linear(in_dim, out_dim).to(weight.device)
        with torch.no_grad():
            linear.weight.copy_(weight)
            linear.bias.copy_(bias)
        self.whitening = linear
        if self.architecture is not None:
            self.architecture.whiten_dim = out_dim

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())


def build_netvlad(architecture: NetVLADArchitecture) -> NetVLADDescriptor:
    """An untrained model of the given architecture (ImageNet input normalisation)."""
    backbone = make_backbone(architecture.backbone, architecture.light_channels)
    netvlad = NetVLAD(backbone.out_channels, architecture.num_clusters, architecture.assignment_bias)
    whitening = (nn.Linear(netvlad.output_dim, architecture.whiten_dim)
                 if architecture.whiten_dim is not None else None)
    model = NetVLADDescriptor(imagenet_normalization(), backbone, netvlad, whitening,
                              architecture.name, architecture.image_size)
    model.architecture = architecture
    return model


# --- official MATLAB checkpoint ---------------------------------------------------------------
class MatConvNetTrunk(nn.Module):
    """A conv/relu/pool stack rebuilt from a .mat (used when it is not exactly VGG-16 conv5_3)."""

    def __init__(self, layers: list[TrunkLayer]):
        super().__init__()
        modules: list[nn.Module] = []
        for layer in layers:
            if layer.kind == "conv":
                out_channels, in_channels = layer.conv_arrays()[0].shape[:2]
                modules.append(nn.Conv2d(in_channels, out_channels, layer.kernel, layer.stride, layer.padding))
                self.out_channels = int(out_channels)
            elif layer.kind == "relu":
                modules.append(nn.ReLU(inplace=True))
            else:
                modules.append(nn.MaxPool2d(layer.kernel, layer.stride, layer.padding))
        self.features = nn.Sequential(*modules)
        with torch.no_grad():
            for module, layer in zip(self.features, layers):
                if isinstance(module, nn.Conv2d) and module.bias is not None:  # the conv layers
                    weight, bias = layer.conv_arrays()
                    module.weight.copy_(torch.from_numpy(weight))
                    module.bias.copy_(torch.from_numpy(bias))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.features(images)


def _is_vgg16_conv5_3(layers: list[TrunkLayer]) -> bool:
    """True when the layers are torchvision's VGG-16 ``features`` 0..28 (conv1_1 ... conv5_3)."""
    names = VGG16_LAYER_NAMES[:VGG16_LAYER_NAMES.index("conv5_3") + 1]
    if len(layers) != len(names):
        return False
    in_channels = 3
    for layer, name in zip(layers, names):
        if layer.kind != {"conv": "conv", "relu": "relu", "pool": "pool"}[name[:4]]:
            return False
        if layer.kind == "conv":
            out_channels = vgg16_out_channels(name)
            if (layer.conv_arrays()[0].shape != (out_channels, in_channels, 3, 3) or layer.stride != (1, 1)
                    or layer.padding != (1, 1)):
                return False
            in_channels = out_channels
        if layer.kind == "pool" and (layer.kernel, layer.stride, layer.padding) != ((2, 2), (2, 2), (0, 0)):
            return False
    return True


def _trunk_from_mat(layers: list[TrunkLayer]) -> VGG16Trunk | MatConvNetTrunk:
    """VGG16Trunk (torchvision keys) when the file holds VGG-16 up to conv5_3, else a generic stack."""
    generic = MatConvNetTrunk(layers)
    if not _is_vgg16_conv5_3(layers):
        return generic
    vgg = vgg16_conv5_3()
    vgg.features.load_state_dict(generic.features.state_dict())  # same module indices, same keys
    vgg.pretrained = True
    return vgg


def netvlad_from_matconvnet(parsed: MatNetVLAD, image_size: tuple[int, int] = MAT_IMAGE_SIZE) -> NetVLADDescriptor:
    backbone = _trunk_from_mat(parsed.trunk)
    netvlad = NetVLAD(parsed.feature_dim, parsed.num_clusters, parsed.assignment_bias is not None,
                      normalize_input=parsed.normalize_input)
    with torch.no_grad():
        netvlad.assignment.weight.copy_(torch.from_numpy(parsed.assignment_weight)[:, :, None, None])
        if parsed.assignment_bias is not None and netvlad.assignment.bias is not None:
            netvlad.assignment.bias.copy_(torch.from_numpy(parsed.assignment_bias))
        netvlad.centroids.copy_(torch.from_numpy(parsed.centroids))
    backbone_name = "vgg16" if backbone.__class__.__name__ == "VGG16Trunk" else "matconvnet"
    model = NetVLADDescriptor(matconvnet_normalization(parsed.average_rgb.tolist()), backbone, netvlad,
                              None, f"netvlad-{backbone_name}", image_size)
    if parsed.whitening_weight is not None:
        model.set_whitening(torch.from_numpy(parsed.whitening_weight), torch.from_numpy(parsed.whitening_bias))
    return model


# --- files ------------------------------------------------------------------------------------
def save_netvlad_run(model: NetVLADDescriptor, run_dir: str | Path, config: dict, extra: dict | None = None) -> str:
    """Write ``model.pt`` and ``run.json`` as one output set (``output_set``); returns the checksum of
    the weights (``state_dict_sha256``)."""
    if model.architecture is None:
        raise MduitError("only models built from a NetVLADArchitecture can be saved as a run directory")
    state = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    checksum = state_dict_sha256(state)
    meta = {"kind": RUN_KIND, "name": model.name, "dim": model.dim, "image_size": list(model.image_size),
            "architecture": model.architecture.to_dict(), "config": config, "checksum": checksum,
            "checksum_method": STATE_CHECKSUM}
    with staged_outputs(run_dir, (MODEL_FILE, RUN_FILE)) as staged:
        with atomic_path(staged.path(MODEL_FILE)) as tmp:
            torch.save(state, tmp)
        write_json_atomic(staged.path(RUN_FILE), {**(extra or {}), **meta})
    model.checksum = checksum
    return checksum


def read_run_json(run_dir: Path) -> dict:
    path = run_dir / RUN_FILE
    if not path.is_file():
        raise DataNotFoundError(path, "NetVLAD run description", "train one with 'mduit-loc train-netvlad'")
    meta = read_json_file(path, "NetVLAD run description")
    if not isinstance(meta, dict) or meta.get("kind") != RUN_KIND:
        got = meta.get("kind") if isinstance(meta, dict) else type(meta).__name__
        raise FormatError(path, None, f'"kind": "{RUN_KIND}"', got=repr(got))
    if not isinstance(meta.get("architecture"), dict):
        raise FormatError(path, None, "an 'architecture' object", got=repr(meta.get("architecture")))
    return meta


def load_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    return torch_io.load_state_dict_file(path, "NetVLAD weights", "the run directory is incomplete; train again")


def load_netvlad_run(run_dir: Path) -> NetVLADDescriptor:
    settle(run_dir)   # a commit of the run's files that was interrupted is finished first
    meta = read_run_json(run_dir)
    architecture = NetVLADArchitecture.from_dict(meta["architecture"], run_dir / RUN_FILE)
    model = build_netvlad(architecture)
    path = run_dir / MODEL_FILE
    state = load_state_dict_file(path)
    checksum = torch_io.verify_model_checksum(meta, state, path, run_dir / RUN_FILE)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:  # missing/unexpected keys or shapes
        raise FormatError(path, None, f"weights of a {architecture.name} with K = {architecture.num_clusters}",
                          got=str(err).splitlines()[0]) from err
    model.checksum = checksum
    return model


def load_netvlad(path: str | Path, device: torch.device | str = "cpu",
                 image_size: tuple[int, int] | None = None) -> NetVLADDescriptor:
    """A ready-to-use NetVLAD (eval mode, on ``device``) from a run directory, its model.pt, or a .mat."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".mat":
        model = netvlad_from_matconvnet(read_matconvnet_netvlad(path), image_size or MAT_IMAGE_SIZE)
        model.checksum = sha256_file(path)
    else:
        run_dir = path.parent if path.is_file() and path.name == MODEL_FILE else path
        if not run_dir.is_dir():
            raise DataNotFoundError(path, "NetVLAD model", "give a train-netvlad run directory or a *_struct.mat file")
        model = load_netvlad_run(run_dir)
        if image_size is not None:
            model.image_size = (int(image_size[0]), int(image_size[1]))
    return model.to(torch.device(device)).eval()

"""VGG-16 convolutional trunk, defined in-project with torchvision's state-dict keys.

torchvision cannot be imported beside the CPU build of torch, so the trunk is rebuilt here.
Module indices inside ``features`` follow ``torchvision.models.vgg16`` exactly, so a
torchvision checkpoint (``vgg16-397923af.pth`` or any ``state_dict`` of that model) loads
into it unchanged; the classifier keys are ignored.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from mduit_loc.errors import DataNotFoundError, FormatError

# torchvision's configuration "D": channel counts, "M" for max-pooling.
_VGG16_CFG: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]

# Layer names in order, matching torchvision's ``features`` indices 0..30.
VGG16_LAYER_NAMES = [
    "conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1",
    "conv2_1", "relu2_1", "conv2_2", "relu2_2", "pool2",
    "conv3_1", "relu3_1", "conv3_2", "relu3_2", "conv3_3", "relu3_3", "pool3",
    "conv4_1", "relu4_1", "conv4_2", "relu4_2", "conv4_3", "relu4_3", "pool4",
    "conv5_1", "relu5_1", "conv5_2", "relu5_2", "conv5_3", "relu5_3", "pool5",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _build_layers() -> list[nn.Module]:
    layers: list[nn.Module] = []
    in_channels = 3
    for item in _VGG16_CFG:
        if isinstance(item, str):  # "M"
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers.append(nn.Conv2d(in_channels, item, kernel_size=3, padding=1))
            layers.append(nn.ReLU(inplace=True))
            in_channels = item
    return layers


def vgg16_out_channels(last_layer: str) -> int:
    """Channels of the activation after ``last_layer`` (e.g. 256 for ``relu3_3``)."""
    index = VGG16_LAYER_NAMES.index(last_layer)
    convs = [c for c in _VGG16_CFG if isinstance(c, int)]
    n_convs = sum(1 for name in VGG16_LAYER_NAMES[: index + 1] if name.startswith("conv"))
    return convs[n_convs - 1]


class VGG16Trunk(nn.Module):
    """VGG-16 ``features`` up to and including ``last_layer``.

    Input: RGB in [0, 1], shape (B, 3, H, W). ``imagenet_normalize`` applies torchvision's
    mean/std so that ImageNet weights see the statistics they were trained on.
    """

    def __init__(self, last_layer: str = "relu3_3", imagenet_normalize: bool = True):
        super().__init__()
        if last_layer not in VGG16_LAYER_NAMES:
            raise ValueError(f"unknown VGG-16 layer {last_layer!r}; one of {VGG16_LAYER_NAMES}")
        depth = VGG16_LAYER_NAMES.index(last_layer) + 1
        self.last_layer = last_layer
        self.out_channels = vgg16_out_channels(last_layer)
        self.features = nn.Sequential(*_build_layers()[:depth])
        self.imagenet_normalize = imagenet_normalize
        self.mean: torch.Tensor
        self.std: torch.Tensor
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.pretrained = False

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.imagenet_normalize:
            images = (images - self.mean) / self.std
        return self.features(images)

    def load_torchvision_weights(self, path: str | Path) -> None:
        """Load a torchvision VGG-16 checkpoint; only the layers this trunk has are used."""
        state = load_vgg16_state_dict(path)
        own = self.features.state_dict()
        wanted = {k: v for k, v in state.items() if k.startswith("features.")}
        wanted = {k[len("features."):]: v for k, v in wanted.items() if k[len("features."):] in own}
        missing = sorted(set(own) - set(wanted))
        if missing:
            raise FormatError(path, None, f"a torchvision VGG-16 state dict with keys features.{missing[0]} ...",
                              got=f"{len(state)} keys, first {next(iter(state), 'none')}")
        for key, value in wanted.items():
            if tuple(value.shape) != tuple(own[key].shape):
                raise FormatError(path, None, f"features.{key} of shape {tuple(own[key].shape)}",
                                  got=str(tuple(value.shape)))
        self.features.load_state_dict(wanted)
        self.pretrained = True


def load_vgg16_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(path, "VGG-16 weights file", "pass a torchvision vgg16 .pth state dict")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt files
        raise FormatError(path, None, "a torch state dict saved with torch.save", got=type(err).__name__) from err
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise FormatError(path, None, "a dict of tensors (a state dict)")
    return state


def make_vgg16_trunk(last_layer: str, weights: str | Path | None, what: str = "VGG-16") -> VGG16Trunk:
    """Build the trunk; load ``weights`` if given, otherwise warn that it starts untrained."""
    trunk = VGG16Trunk(last_layer)
    if weights:
        trunk.load_torchvision_weights(weights)
    else:
        warnings.warn(
            f"{what}: no pretrained VGG-16 weights given (--vgg-weights); the trunk is trained "
            "from its random initialisation, which needs more data and epochs.",
            stacklevel=2,
        )
    return trunk

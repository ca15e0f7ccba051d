"""An exponential moving average of the MDUIT weights (beyond the paper).

GAN toolkits evaluate an averaged copy of the generator rather than its last weights (StyleGAN, StarGAN v2):
the adversarial game leaves the weights oscillating around what they learned, and the average sits in the
middle. ``WeightAverage`` keeps such a copy of the whole inference model (E_c, E_a, G, H): after every
optimiser step each floating-point parameter and buffer moves towards the training weights by ``1 - decay``.
Early steps use a smaller decay, ``min(decay, (1 + step) / (10 + step))``, so that a short run is not
dominated by its random initialisation. The run writes the averaged model at the end (``finish``).
"""
from __future__ import annotations

import copy
from typing import Generic, TypeVar

import torch
from torch import nn

ModuleT = TypeVar("ModuleT", bound=nn.Module)


def warmed_decay(decay: float, step: int) -> float:
    """The decay used after optimiser step ``step`` (1-based): ``decay``, smaller while the run is young."""
    return min(decay, (1.0 + step) / (10.0 + step))


class WeightAverage(Generic[ModuleT]):
    """A frozen copy of ``model`` whose weights follow the training weights' exponential moving average."""

    def __init__(self, model: ModuleT, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"the weight average's decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.model: ModuleT = copy.deepcopy(model).eval()
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Move the average towards ``model``'s current weights (call after the optimiser's step ``step``)."""
        keep = warmed_decay(self.decay, step)
        averaged = self.model.state_dict()
        for name, value in model.state_dict().items():   # detached views of the same dtypes (a deep copy)
            target = averaged[name]
            if target.is_floating_point():
                target.lerp_(value, 1.0 - keep)
            else:   # integer buffers (counters) are copied, not averaged
                target.copy_(value)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(state)

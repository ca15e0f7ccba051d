"""The exponential moving average of the weights: hand-computed updates, warm-up, what is averaged."""
import pytest
import torch
from torch import nn

from mduit_loc.translation.weight_average import WeightAverage, warmed_decay


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(1, 1, bias=False)
        self.register_buffer("count", torch.tensor(0))


def tiny(weight: float) -> Tiny:
    module = Tiny()
    with torch.no_grad():
        module.linear.weight.fill_(weight)
    return module


def test_warm_up_shortens_the_average_of_a_young_run():
    assert warmed_decay(0.999, 1) == pytest.approx(2 / 11)
    assert warmed_decay(0.999, 1000) == pytest.approx(1001 / 1010)
    assert warmed_decay(0.5, 100) == 0.5


def test_each_update_moves_the_average_by_one_minus_the_decay():
    training = tiny(0.0)
    average = WeightAverage(training, decay=0.5)
    with torch.no_grad():
        training.linear.weight.fill_(1.0)
    training.count.fill_(7)
    average.update(training, step=100)      # warm-up decay 101/110 > 0.5: the decay is 0.5
    assert average.model.linear.weight.item() == pytest.approx(0.5)
    assert average.model.count.item() == 7  # integer buffers are copied
    average.update(training, step=101)
    assert average.model.linear.weight.item() == pytest.approx(0.75)
    assert training.linear.weight.item() == 1.0   # the training weights are untouched


def test_the_first_updates_follow_the_training_weights_closely():
    training = tiny(0.0)
    average = WeightAverage(training, decay=0.999)
    with torch.no_grad():
        training.linear.weight.fill_(1.0)
    average.update(training, step=1)
    assert average.model.linear.weight.item() == pytest.approx(1 - 2 / 11)


def test_the_average_is_a_frozen_copy():
    training = tiny(3.0)
    average = WeightAverage(training, decay=0.9)
    assert average.model is not training and not average.model.training
    assert not any(p.requires_grad for p in average.model.parameters())
    restored = WeightAverage(tiny(0.0), decay=0.9)
    restored.load_state_dict(average.state_dict())
    assert restored.model.linear.weight.item() == 3.0


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.1])
def test_a_decay_outside_the_open_interval_is_refused(decay):
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(tiny(0.0), decay=decay)

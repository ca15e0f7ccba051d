import warnings
from pathlib import Path

import pytest
import torch

from mduit_loc.translation.config import TranslationConfig, apply_overrides, preset  # noqa: E402

from .synthetic_domains import write_domain_folders  # noqa: E402

# Smaller than the tiny preset so that a training step takes milliseconds on one core.
TEST_SETTINGS = dict(image_size=(32, 32), encoder_base_channels=4, encoder_res_blocks=1, vgg_layer="relu2_2",
                     appearance_input_size=16, appearance_hidden=16, filter_groups=16, generator_res_blocks=1,
                     disc_base_channels=8, disc_layers=2, head_hidden=32, descriptor_dim=32, n_negatives=4,
                     batch_size=4, epochs=2, checkpoint_every=1000, pairing_batch_size=16,
                     appearance_samples_per_domain=4)


def small_config(**overrides) -> TranslationConfig:
    return apply_overrides(preset("tiny"), {**TEST_SETTINGS, **overrides})


@pytest.fixture
def domain_data(tmp_path) -> Path:
    """3 domains x 8 places at 32 px (24 images)."""
    return write_domain_folders(tmp_path / "data", places=8, size=32)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One intra-op thread: on a shared 2-core machine, two spinning OpenMP threads per process
    made these small steps 10-40x slower (measured), and the networks here are too small to gain."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _quiet_untrained_vgg_warning():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*no pretrained VGG-16 weights.*")
        yield

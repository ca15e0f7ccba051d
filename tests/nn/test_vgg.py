"""VGG-16 trunk: torchvision-compatible state-dict keys (hard-coded here, torchvision is never imported)."""
import warnings

import pytest
import torch

from mduit_loc.errors import DataNotFoundError, FormatError
from mduit_loc.nn.vgg import VGG16_LAYER_NAMES, VGG16Trunk, make_vgg16_trunk, vgg16_out_channels

# torchvision.models.vgg16().features: (index, out channels, in channels) of each Conv2d(3x3).
TORCHVISION_CONVS = [(0, 64, 3), (2, 64, 64), (5, 128, 64), (7, 128, 128), (10, 256, 128), (12, 256, 256),
                     (14, 256, 256), (17, 512, 256), (19, 512, 512), (21, 512, 512), (24, 512, 512),
                     (26, 512, 512), (28, 512, 512)]
# The last module index of each ReLU / pool in torchvision's features.
LAST_INDEX = {"relu1_2": 3, "pool1": 4, "relu2_2": 8, "relu3_3": 15, "pool3": 16, "relu4_3": 22, "relu5_3": 29,
              "pool5": 30}


def expected_shapes(last_layer: str) -> dict[str, tuple]:
    shapes = {}
    for index, out_ch, in_ch in TORCHVISION_CONVS:
        if index <= LAST_INDEX[last_layer]:
            shapes[f"features.{index}.weight"] = (out_ch, in_ch, 3, 3)
            shapes[f"features.{index}.bias"] = (out_ch,)
    return shapes


@pytest.mark.parametrize("last_layer", list(LAST_INDEX))
def test_state_dict_keys_and_shapes_equal_torchvision(last_layer):
    trunk = VGG16Trunk(last_layer)
    state = trunk.state_dict()
    assert {k: tuple(v.shape) for k, v in state.items()} == expected_shapes(last_layer)
    assert len(trunk.features) == LAST_INDEX[last_layer] + 1
    assert VGG16_LAYER_NAMES[LAST_INDEX[last_layer]] == last_layer


def test_out_channels_and_forward_shape():
    assert [vgg16_out_channels(n) for n in ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "pool5")] == [
        64, 128, 256, 512, 512]
    trunk = VGG16Trunk("relu3_3").eval()
    with torch.inference_mode():
        out = trunk(torch.rand(2, 3, 32, 40))
    assert out.shape == (2, trunk.out_channels, 8, 10) and trunk.out_channels == 256
    assert float(out.min()) >= 0  # ends with a ReLU
    with pytest.raises(ValueError, match="unknown VGG-16 layer"):
        VGG16Trunk("conv9_9")


def test_imagenet_normalisation_is_applied_inside():
    plain, normalised = VGG16Trunk("relu1_1", imagenet_normalize=False), VGG16Trunk("relu1_1")
    normalised.load_state_dict(plain.state_dict())
    images = torch.rand(1, 3, 8, 8)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.inference_mode():
        torch.testing.assert_close(normalised(images), plain((images - mean) / std))


def _torchvision_like_file(path, last_layer="relu2_2", extra=True, wrap=False):
    """A state dict saved with torchvision's keys (features.*, classifier.*), random values."""
    generator = torch.Generator().manual_seed(0)
    state = {k: torch.randn(shape, generator=generator) for k, shape in expected_shapes(last_layer).items()}
    if extra:  # keys a trunk cut earlier ignores
        state["features.10.weight"] = torch.randn(256, 128, 3, 3, generator=generator)
        state["classifier.6.bias"] = torch.randn(1000, generator=generator)
    torch.save({"state_dict": state} if wrap else state, path)
    return state


@pytest.mark.parametrize("wrap", [False, True])
def test_loading_a_torchvision_state_dict(tmp_path, wrap):
    state = _torchvision_like_file(tmp_path / "vgg16.pth", wrap=wrap)
    trunk = VGG16Trunk("relu2_2")
    trunk.load_torchvision_weights(tmp_path / "vgg16.pth")
    assert trunk.pretrained
    for key, value in trunk.state_dict().items():
        torch.testing.assert_close(value, state[key])


def test_bad_weight_files_are_clear_errors(tmp_path):
    trunk = VGG16Trunk("relu2_2")
    with pytest.raises(DataNotFoundError, match="VGG-16 weights file not found"):
        trunk.load_torchvision_weights(tmp_path / "none.pth")
    _torchvision_like_file(tmp_path / "short.pth", last_layer="relu1_2", extra=False)
    with pytest.raises(FormatError, match="features.5"):
        trunk.load_torchvision_weights(tmp_path / "short.pth")
    state = _torchvision_like_file(tmp_path / "shape.pth")
    state["features.7.weight"] = torch.zeros(128, 64, 1, 1)
    torch.save(state, tmp_path / "shape.pth")
    with pytest.raises(FormatError, match=r"features.7.weight of shape \(128, 128, 3, 3\)"):
        trunk.load_torchvision_weights(tmp_path / "shape.pth")
    (tmp_path / "garbage.pth").write_bytes(b"not a torch file")
    with pytest.raises(FormatError, match="state dict"):
        trunk.load_torchvision_weights(tmp_path / "garbage.pth")
    assert not trunk.pretrained


class NotATensor:  # a pickled object: refused by torch.load(weights_only=True)
    pass


def test_weights_are_loaded_with_weights_only(tmp_path):
    torch.save({"features.0.weight": NotATensor()}, tmp_path / "pickle.pth")
    with pytest.raises(FormatError, match="UnpicklingError"):
        VGG16Trunk("relu1_2").load_torchvision_weights(tmp_path / "pickle.pth")


def test_make_trunk_warns_without_weights_and_loads_with_them(tmp_path):
    with pytest.warns(UserWarning, match="no pretrained VGG-16 weights"):
        assert not make_vgg16_trunk("relu2_2", None, "MDUIT encoder").pretrained
    _torchvision_like_file(tmp_path / "vgg16.pth")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert make_vgg16_trunk("relu2_2", tmp_path / "vgg16.pth").pretrained

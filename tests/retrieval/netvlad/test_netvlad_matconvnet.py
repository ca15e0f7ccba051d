"""Official NetVLAD ``*_struct.mat`` loading, on small files written in the same struct layout."""
from __future__ import annotations

import hashlib
from types import SimpleNamespace

import numpy as np
import pytest
import scipy.io
import torch

from mduit_loc.errors import DataNotFoundError, FormatError
from mduit_loc.nn.vgg import VGG16Trunk
from mduit_loc.retrieval.netvlad.matconvnet import _read_trunk, read_matconvnet_netvlad
from mduit_loc.retrieval.netvlad.model import _trunk_from_mat, load_netvlad

from .netvlad_helpers import cell, numpy_tiny_net_forward, tiny_net_layers, write_net_mat

AVERAGE_RGB = np.array([123.0, 117.0, 104.0])


@pytest.fixture()
def tiny_mat(tmp_path):
    layers = tiny_net_layers(np.random.default_rng(0))
    return write_net_mat(tmp_path / "Tiny_struct.mat", layers), layers


def test_file_reads_back_in_the_official_struct_layout(tiny_mat):
    path, _ = tiny_mat
    net = scipy.io.loadmat(str(path), struct_as_record=False, squeeze_me=True)["net"]
    assert [layer.name for layer in net.layers][5] == "vlad:core"
    assert net.layers[0].weights[0].shape == (3, 3, 3, 4) and net.layers[5].weights[1].shape == (6, 3)
    assert net.meta.normalization.averageImage.shape == (2, 2, 3)


def test_loaded_weights_are_the_converted_originals(tiny_mat):
    path, layers = tiny_mat
    model = load_netvlad(path, "cpu")
    convs = [m for m in model.backbone.features if isinstance(m, torch.nn.Conv2d)]
    for conv, source in zip(convs, (layers[0], layers[3])):
        filters, bias = source["weights"][0, 0], source["weights"][0, 1].ravel()
        np.testing.assert_array_equal(conv.weight.detach().numpy(), filters.transpose(3, 2, 0, 1))
        np.testing.assert_array_equal(conv.bias.detach().numpy(), bias)
    assignment, centres = layers[5]["weights"][0, 0], layers[5]["weights"][0, 1]
    np.testing.assert_array_equal(model.netvlad.centroids.detach().numpy(), -centres.T)
    np.testing.assert_array_equal(model.netvlad.assignment.weight.detach().numpy()[:, :, 0, 0], assignment.T)
    assert model.netvlad.assignment.bias is None and model.netvlad.normalize_input
    wpca = layers[8]["weights"]
    np.testing.assert_array_equal(model.whitening.weight.detach().numpy(), wpca[0, 0].reshape(18, 5).T)
    np.testing.assert_array_equal(model.whitening.bias.detach().numpy(), wpca[0, 1].ravel())
    np.testing.assert_array_equal(model.normalization.mean.view(3).numpy(), AVERAGE_RGB)
    assert model.normalization.scale == 255.0 and (model.normalization.std == 1).all()
    assert model.dim == 5 and model.checksum == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not model.training and model.name == "netvlad-matconvnet"  # not VGG-16: generic trunk


@pytest.mark.parametrize("whiten", [5, None])
def test_forward_matches_numpy_reference(tmp_path, whiten):
    layers = tiny_net_layers(np.random.default_rng(1), whiten=whiten)
    model = load_netvlad(write_net_mat(tmp_path / "net.mat", layers), "cpu")
    images = np.random.default_rng(2).uniform(0, 1, (2, 3, 12, 10))   # non-square: catches an H/W swap
    with torch.no_grad():
        out = model(torch.from_numpy(images).float()).double().numpy()
    assert out.shape == (2, whiten or 18)
    for b in range(2):
        np.testing.assert_allclose(out[b], numpy_tiny_net_forward(images[b], layers, AVERAGE_RGB), atol=1e-5)


def test_assignment_bias_and_1x1x3_average_image(tmp_path):
    rng = np.random.default_rng(3)
    layers = tiny_net_layers(rng)
    assignment, centres = layers[5]["weights"][0, 0], layers[5]["weights"][0, 1]
    bias = rng.normal(size=(1, 3)).astype(np.float32)
    layers[5]["weights"] = cell([assignment, bias, centres])
    path = write_net_mat(tmp_path / "bias.mat", layers, average_image=np.array([[[10.0, 20.0, 30.0]]]))
    parsed = read_matconvnet_netvlad(path)
    np.testing.assert_array_equal(parsed.assignment_bias, bias.ravel())
    np.testing.assert_array_equal(parsed.centroids, -centres.T)
    np.testing.assert_array_equal(parsed.average_rgb, [10.0, 20.0, 30.0])


def _fake_layer(name, kind, weights=None, **fields):
    array = np.empty(len(weights or []), dtype=object)  # what loadmat's squeezed cell looks like
    for i, w in enumerate(weights or []):
        array[i] = w
    return SimpleNamespace(name=name, type=kind, weights=array, **fields)


def test_vgg16_layout_becomes_the_project_vgg_trunk(tmp_path):
    """The real files hold VGG-16 conv1_1..conv5_3: they must load into VGG16Trunk (torchvision keys)."""
    rng = np.random.default_rng(4)
    cfg = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
    layers, originals, in_channels = [], {}, 3
    for item in cfg:
        if item == "M":
            layers.append(_fake_layer("pool", "pool", method="max", pool=np.array([2, 2]), stride=np.array([2, 2]),
                                      pad=np.zeros(4)))
            continue
        filters = rng.standard_normal((3, 3, in_channels, item), dtype=np.float32)
        originals[len(layers)] = filters
        layers.append(_fake_layer("conv", "conv", [filters, np.zeros(item, np.float32)], pad=np.ones(4),
                                  stride=np.ones(2)))
        layers.append(_fake_layer("relu", "relu", leak=0.0))
        in_channels = item
    layers.pop()  # the final ReLU is not part of the network (features up to conv5_3)
    trunk, _ = _read_trunk(tmp_path / "vgg.mat", layers)
    backbone = _trunk_from_mat(trunk)
    assert isinstance(backbone, VGG16Trunk) and backbone.last_layer == "conv5_3" and backbone.pretrained
    for index, filters in originals.items():
        np.testing.assert_array_equal(backbone.features[index].weight.detach().numpy(), filters.transpose(3, 2, 0, 1))


# --- errors -----------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(DataNotFoundError, match="Pitts30K_struct.mat"):
        load_netvlad(tmp_path / "Pitts30K_struct.mat", "cpu")


def test_not_a_mat_file(tmp_path):
    path = tmp_path / "broken.mat"
    path.write_bytes(b"this is not MATLAB data at all" * 10)
    with pytest.raises(FormatError, match="broken.mat"):
        load_netvlad(path, "cpu")


def test_no_net_variable(tmp_path):
    path = tmp_path / "other.mat"
    scipy.io.savemat(str(path), {"weights": np.zeros(3)})
    with pytest.raises(FormatError, match=r"other\.mat: expected a variable 'net'.*variables: weights"):
        load_netvlad(path, "cpu")


def test_no_netvlad_layer(tmp_path):
    layers = tiny_net_layers(np.random.default_rng(5))
    layers[5]["name"] = "something"
    path = write_net_mat(tmp_path / "novlad.mat", layers)
    with pytest.raises(FormatError, match=r"novlad\.mat: expected a NetVLAD layer named like 'vlad:core'"):
        load_netvlad(path, "cpu")


def test_wrong_centre_and_assignment_shapes(tmp_path):
    layers = tiny_net_layers(np.random.default_rng(6))
    layers[5]["weights"] = cell([np.zeros((6, 3), np.float32), np.zeros((6, 3, 2), np.float32)])
    with pytest.raises(FormatError, match=r"layer 5 \(vlad:core\): cluster centres D x K"):
        load_netvlad(write_net_mat(tmp_path / "centres.mat", layers), "cpu")
    layers[5]["weights"] = cell([np.zeros((5, 3), np.float32), np.zeros((6, 3), np.float32)])
    with pytest.raises(FormatError, match=r"soft-assignment weights 6 x 3"):
        load_netvlad(write_net_mat(tmp_path / "assign.mat", layers), "cpu")


def test_centres_must_match_the_trunk_channels(tmp_path):
    layers = tiny_net_layers(np.random.default_rng(7))
    layers[5]["weights"] = cell([np.zeros((8, 3), np.float32), np.zeros((8, 3), np.float32)])
    with pytest.raises(FormatError, match=r"D = 6 \(the last conv's output channels\).*D = 8"):
        load_netvlad(write_net_mat(tmp_path / "dim.mat", layers), "cpu")


def test_wrong_conv_and_whitening_shapes(tmp_path):
    layers = tiny_net_layers(np.random.default_rng(8))
    layers[3]["weights"] = cell([np.zeros((3, 3, 5, 6), np.float32), np.zeros((1, 6), np.float32)])
    with pytest.raises(FormatError, match=r"conv\.mat: expected layer 3 \(conv2_1\): conv filters kH x kW x 4 x 6"):
        load_netvlad(write_net_mat(tmp_path / "conv.mat", layers), "cpu")
    layers = tiny_net_layers(np.random.default_rng(8))
    layers[8]["weights"] = cell([np.zeros((1, 1, 20, 5), np.float32), np.zeros((5, 1), np.float32)])
    with pytest.raises(FormatError, match=r"layer 8 \(WPCA\): whitening weights 1x1x18x5"):
        load_netvlad(write_net_mat(tmp_path / "wpca.mat", layers), "cpu")


def test_unexpected_layer_type_in_trunk(tmp_path):
    layers = tiny_net_layers(np.random.default_rng(9))
    layers[1] = {"name": "drop", "type": "dropout", "weights": cell([])}
    with pytest.raises(FormatError, match=r"layer 1 \(drop\): a conv, relu or pool layer.*dropout"):
        load_netvlad(write_net_mat(tmp_path / "drop.mat", layers), "cpu")


def test_missing_average_image(tmp_path):
    layers = tiny_net_layers(np.random.default_rng(10))
    path = tmp_path / "nomean.mat"
    scipy.io.savemat(str(path), {"net": {"layers": cell(layers), "meta": {"classes": "none"}}})
    with pytest.raises(FormatError, match="averageImage"):
        load_netvlad(path, "cpu")

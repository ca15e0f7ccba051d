"""NetVLAD layer: shapes, normalisations, numpy reference, k-means initialisation, backbones."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mduit_loc.errors import MduitError
from mduit_loc.retrieval.netvlad.backbones import LightBackbone, make_backbone
from mduit_loc.retrieval.netvlad.clustering import kmeans, sample_local_features
from mduit_loc.retrieval.netvlad.layer import NetVLAD
from mduit_loc.retrieval.netvlad.model import NetVLADArchitecture, build_netvlad

from .netvlad_helpers import numpy_netvlad


def test_output_shape_and_normalisations():
    torch.manual_seed(0)
    layer = NetVLAD(feature_dim=8, num_clusters=5)
    features = torch.randn(3, 8, 4, 6)
    out = layer(features)
    assert out.shape == (3, 40) and layer.output_dim == 40
    assert torch.allclose(out.norm(dim=1), torch.ones(3), atol=1e-5)
    # Intra-normalised then globally L2: every cluster block has norm 1/sqrt(K) (D-major layout).
    blocks = out.view(3, 8, 5).norm(dim=1)
    assert torch.allclose(blocks, torch.full((3, 5), 1 / math.sqrt(5)), atol=1e-5)


def test_input_l2_normalisation_makes_it_scale_invariant_per_location():
    torch.manual_seed(1)
    layer = NetVLAD(6, 3)
    features = torch.randn(2, 6, 3, 3)
    scales = torch.rand(2, 1, 3, 3) * 10 + 0.1
    assert torch.allclose(layer(features), layer(features * scales), atol=1e-5)


@pytest.mark.parametrize("with_bias", [False, True])
def test_matches_numpy_reference(with_bias):
    torch.manual_seed(2)
    layer = NetVLAD(7, 4, assignment_bias=with_bias)
    with torch.no_grad():
        layer.assignment.weight.normal_()
        if with_bias:
            layer.assignment.bias.normal_()
    features = torch.randn(2, 7, 5, 3, dtype=torch.float64)
    out = layer(features.float()).detach().double().numpy()
    weight_dk = layer.assignment.weight.detach().double().numpy()[:, :, 0, 0].T
    bias = layer.assignment.bias.detach().double().numpy() if with_bias else None
    stored = -layer.centroids.detach().double().numpy().T   # the reference adds MatConvNet-style centres
    for b in range(2):
        expected = numpy_netvlad(features[b].numpy(), weight_dk, stored, bias)
        np.testing.assert_allclose(out[b], expected, atol=2e-6)


def test_gradients_flow_to_all_parameters():
    layer = NetVLAD(4, 3)
    layer(torch.randn(2, 4, 3, 3)).sum().backward()
    for parameter in layer.parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all()
        assert parameter.grad.abs().sum() > 0


def test_kmeans_recovers_separated_blobs():
    generator = torch.Generator().manual_seed(3)
    truth = torch.tensor([[5.0, 0.0], [-5.0, 0.0], [0.0, 6.0]])
    points = torch.cat([c + 0.2 * torch.randn(100, 2, generator=generator) for c in truth])
    centres = kmeans(points, 3, iterations=20, seed=0)
    nearest = torch.cdist(truth, centres).min(dim=1).values
    assert (nearest < 0.15).all()


def test_kmeans_needs_enough_points():
    with pytest.raises(MduitError, match="at least 5 local features"):
        kmeans(torch.randn(3, 2), 5)


@pytest.mark.parametrize("with_bias", [False, True])
def test_cluster_init_assigns_like_nearest_centre(with_bias):
    generator = torch.Generator().manual_seed(4)
    directions = torch.nn.functional.normalize(torch.randn(4, 16, generator=generator), dim=1)
    labels = torch.arange(200) % 4
    sample = torch.nn.functional.normalize(directions[labels] + 0.05 * torch.randn(200, 16, generator=generator), dim=1)
    centroids = kmeans(sample, 4, seed=1)
    layer = NetVLAD(16, 4, assignment_bias=with_bias)
    alpha = layer.init_from_clusters(centroids, sample)
    assert alpha > 0 and torch.equal(layer.centroids.data, centroids)
    scores = layer.assignment(sample.view(200, 16, 1, 1)).view(200, 4)
    nearest = torch.cdist(sample, centroids).argmin(dim=1)
    assert torch.equal(scores.argmax(dim=1), nearest)
    # alpha makes the best cluster clearly dominant on average (the original's 100x on the top-2 gap).
    assert torch.softmax(scores, dim=1).max(dim=1).values.mean() > 0.9


def test_sample_local_features_limits_and_normalises():
    maps = [torch.randn(2, 5, 4, 4), torch.randn(2, 5, 4, 4)]
    sample = sample_local_features(iter(maps), per_image=3, limit=10, seed=0)
    assert sample.shape == (10, 5)
    assert torch.allclose(sample.norm(dim=1), torch.ones(10), atol=1e-5)


def test_light_backbone_stride_and_channels():
    backbone = LightBackbone()
    out = backbone(torch.rand(1, 3, 64, 96))
    assert out.shape == (1, backbone.out_channels, 8, 12)
    assert (out < 0).any(), "the last conv has no ReLU (signed features as conv5_3)"


def test_built_models_dims_and_forward():
    light = build_netvlad(NetVLADArchitecture(backbone="light", num_clusters=16, image_size=(64, 64)))
    assert light.name == "netvlad-light" and light.dim == 128 * 16 and light.image_size == (64, 64)
    out = light(torch.rand(2, 3, 64, 64))
    assert out.shape == (2, light.dim) and torch.allclose(out.norm(dim=1), torch.ones(2), atol=1e-5)
    vgg = build_netvlad(NetVLADArchitecture(backbone="vgg16", num_clusters=64, whiten_dim=4096))
    assert vgg.dim == 4096 and vgg.netvlad.output_dim == 32768
    assert vgg.backbone.out_channels == 512 and vgg.backbone.last_layer == "conv5_3"
    with pytest.raises(MduitError, match="unknown NetVLAD backbone"):
        make_backbone("resnet", ())

"""Test helpers: a tiny MatConvNet-style NetVLAD .mat, a numpy reference forward, posed images."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from mduit_loc.datasets.images import save_image
from mduit_loc.datasets.types import TrainingImage
from mduit_loc.poses import yaw_pose

EPS = 1e-12


# --- MATLAB structs ---------------------------------------------------------------------------
def cell(items: list) -> np.ndarray:
    """A 1xN MATLAB cell array (savemat writes object arrays as cells, dicts as structs)."""
    array = np.empty((1, len(items)), dtype=object)
    for index, item in enumerate(items):
        array[0, index] = item
    return array


def conv_layer(name: str, in_channels: int, out_channels: int, size: int, rng, pad: int = 1) -> dict:
    return {"name": name, "type": "conv", "pad": np.array([[pad, pad, pad, pad]], dtype=np.float64),
            "stride": np.array([[1, 1]], dtype=np.float64),
            "weights": cell([rng.normal(0, 0.5, (size, size, in_channels, out_channels)).astype(np.float32),
                             rng.normal(0, 0.1, (1, out_channels)).astype(np.float32)])}


def tiny_net_layers(rng, dim: int = 6, clusters: int = 3, whiten: int | None = 5) -> list[dict]:
    """conv-relu-pool-conv, preL2, vlad:core, intra-norm, postL2, [WPCA, finalL2]: the official order."""
    layers = [
        conv_layer("conv1_1", 3, 4, 3, rng),
        {"name": "relu1_1", "type": "relu", "leak": 0.0, "weights": cell([])},
        {"name": "pool1", "type": "pool", "method": "max", "pool": np.array([[2, 2]], dtype=np.float64),
         "stride": np.array([[2, 2]], dtype=np.float64), "pad": np.array([[0, 0, 0, 0]], dtype=np.float64),
         "weights": cell([])},
        conv_layer("conv2_1", 4, dim, 3, rng),
        {"name": "preL2", "type": "normalize", "param": np.array([[1024, 1e-12, 1, 0.5]]), "weights": cell([])},
        {"name": "vlad:core", "type": "custom", "K": float(clusters),
         "weights": cell([rng.normal(0, 1.0, (dim, clusters)).astype(np.float32),
                          rng.normal(0, 0.3, (dim, clusters)).astype(np.float32)])},
        {"name": "vlad:intranorm", "type": "normalize", "param": np.array([[1024, 1e-12, 1, 0.5]]),
         "weights": cell([])},
        {"name": "postL2", "type": "custom", "weights": cell([])},
    ]
    if whiten:
        layers.append({"name": "WPCA", "type": "conv", "pad": 0.0, "stride": 1.0,
                       "weights": cell([rng.normal(0, 0.3, (1, 1, dim * clusters, whiten)).astype(np.float32),
                                        rng.normal(0, 0.1, (whiten, 1)).astype(np.float32)])})
        layers.append({"name": "finalL2", "type": "custom", "weights": cell([])})
    return layers


def write_net_mat(path: Path, layers: list[dict], average_image: np.ndarray | None = None) -> Path:
    if average_image is None:
        # HxWx3 like the official file; pixel (0, 0) is the one the loaders read.
        average_image = np.full((2, 2, 3), 200.0)
        average_image[0, 0] = (123.0, 117.0, 104.0)
    net = {"layers": cell(layers), "meta": {"normalization": {"averageImage": average_image}}}
    scipy.io.savemat(str(path), {"net": net})
    return path


# --- numpy reference forward (MatConvNet layouts used directly) ---------------------------------
def numpy_conv(image: np.ndarray, filters_hwio: np.ndarray, bias: np.ndarray, pad: int) -> np.ndarray:
    """Cross-correlation of (C, H, W) with MatConvNet filters (kH, kW, IN, OUT), stride 1."""
    padded = np.pad(image, ((0, 0), (pad, pad), (pad, pad)))
    k = filters_hwio.shape[0]
    out_h, out_w = padded.shape[1] - k + 1, padded.shape[2] - k + 1
    out = np.zeros((filters_hwio.shape[3], out_h, out_w))
    for y in range(out_h):
        for x in range(out_w):
            window = padded[:, y:y + k, x:x + k]                      # (IN, kH, kW)
            out[:, y, x] = np.einsum("iyx,yxio->o", window, filters_hwio) + bias
    return out


def numpy_maxpool2(image: np.ndarray) -> np.ndarray:
    c, h, w = image.shape
    return image[:, :h // 2 * 2, :w // 2 * 2].reshape(c, h // 2, 2, w // 2, 2).max(axis=(2, 4))


def numpy_netvlad(features: np.ndarray, assign_dk: np.ndarray, stored_centres_dk: np.ndarray,
                  assign_bias: np.ndarray | None = None) -> np.ndarray:
    """Reference NetVLAD of (D, H, W) features with the .mat's (D, K) weights; the stored centres
    are *added* (MatConvNet's x + C). Loops on purpose: independent of the vectorised layer."""
    dim, clusters = assign_dk.shape
    local = features.reshape(dim, -1).T                               # (N, D)
    local = local / np.sqrt((local ** 2).sum(axis=1, keepdims=True) + EPS)
    logits = local @ assign_dk + (0 if assign_bias is None else assign_bias)
    logits = logits - logits.max(axis=1, keepdims=True)
    soft = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    vlad = np.zeros((dim, clusters))
    for k in range(clusters):
        for n in range(local.shape[0]):
            vlad[:, k] += soft[n, k] * (local[n] + stored_centres_dk[:, k])
    vlad = vlad / np.sqrt((vlad ** 2).sum(axis=0, keepdims=True) + EPS)    # intra-normalisation
    flat = vlad.reshape(-1)                                           # index d * K + k
    return flat / np.sqrt((flat ** 2).sum() + EPS)


def numpy_tiny_net_forward(image01: np.ndarray, layers: list[dict], average_rgb: np.ndarray) -> np.ndarray:
    """Full forward of ``tiny_net_layers`` on one (3, H, W) image in [0, 1]."""
    x = image01 * 255.0 - average_rgb.reshape(3, 1, 1)
    conv1, conv2, vlad = layers[0], layers[3], layers[5]
    x = numpy_maxpool2(np.maximum(numpy_conv(x, conv1["weights"][0, 0], conv1["weights"][0, 1].ravel(), 1), 0))
    x = numpy_conv(x, conv2["weights"][0, 0], conv2["weights"][0, 1].ravel(), 1)
    v = numpy_netvlad(x, vlad["weights"][0, 0], vlad["weights"][0, 1])
    if len(layers) > 8:
        wpca = layers[8]["weights"]
        matrix = wpca[0, 0].reshape(v.size, -1)                      # (D*K, OUT)
        v = matrix.T @ v + wpca[0, 1].ravel()
        v = v / np.sqrt((v ** 2).sum() + EPS)
    return v


# --- posed images -----------------------------------------------------------------------------
def place_texture(place: int, size: int) -> np.ndarray:
    """A smooth random colour pattern per place (float HxWx3 in [0, 1])."""
    rng = np.random.default_rng(1000 + place)
    coarse = rng.uniform(0, 1, (4, 4, 3))
    texture = np.kron(coarse, np.ones((size // 4, size // 4, 1)))
    stripes = 0.5 + 0.5 * np.sin(np.arange(size) * rng.uniform(0.3, 1.5) + rng.uniform(0, 6))
    return 0.6 * texture + 0.4 * stripes[None, :, None] * rng.uniform(0.3, 1, 3)


DOMAINS = {"day": (1.0, (1.0, 1.0, 1.0)), "dusk": (0.75, (1.0, 0.8, 0.6)), "night": (0.45, (0.7, 0.8, 1.0))}


def make_posed_images(folder: Path, places: int = 8, spacing_m: float = 40.0, size: int = 32,
                      domains=("day", "dusk", "night")) -> list[TrainingImage]:
    """``places`` places ``spacing_m`` apart (so other places are definite negatives), one image per
    domain at each, within 2 m and 3 degrees of each other (so they are positives)."""
    rng = np.random.default_rng(7)
    images = []
    for place in range(places):
        texture = place_texture(place, size)
        for domain in domains:
            gain, tint = DOMAINS[domain]
            noise = rng.normal(0, 0.03, texture.shape)
            pixels = np.clip(texture * gain * np.asarray(tint) + noise, 0, 1)
            name = f"{domain}/cam/{place:04d}.png"
            path = folder / name
            save_image(path, (pixels * 255).round().astype(np.uint8))
            center = (place * spacing_m + rng.uniform(-1, 1), rng.uniform(-1, 1), 0.0)
            pose = yaw_pose(rng.uniform(-1.5, 1.5), center)
            images.append(TrainingImage(name, path, domain, pose, "cam"))
    return images

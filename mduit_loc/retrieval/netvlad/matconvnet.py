"""Reader for the official NetVLAD checkpoints converted to plain MATLAB structs (``*_struct.mat``).

``scipy.io.loadmat(path, struct_as_record=False, squeeze_me=True)`` gives ``mat["net"]`` with
``.layers`` (the simplenn 1xN cell, squeezed to a 1-D object array) and
``.meta.normalization.averageImage``. For ``vd16_pitts30k_conv5_3_vlad_preL2_intra_white``
(hloc's ``Pitts30K_struct.mat``, likewise TokyoTM) the layers are, 0-based:
0-28 VGG-16 conv1_1 ... conv5_3 (conv/relu/pool, no final ReLU/pool), 29 ``preL2``
(type ``normalize``), 30 ``vlad:core`` (``custom``), 31 intra-normalisation, 32 ``postL2``,
33 ``WPCA`` (``conv``, 1x1x32768x4096 + bias), 34 ``finalL2``.

What is matched, rather than hard-coded indices 30 and 33:
- the NetVLAD layer is the first layer whose name contains "vlad" (``vlad:core``) and that has
  2 weights (assignment D x K, centres D x K) or 3 (assignment, assignment bias K, centres);
- the trunk is every layer before it; only conv / relu / pool are built, a ``normalize`` layer
  just before the NetVLAD layer turns on its input L2-normalisation;
- the whitening is the first ``conv`` layer after the NetVLAD layer; its input size must be
  D x K. Without one the descriptor is the D x K vector itself.

Conversions (the same as hloc's ``extractors/netvlad.py`` and uzh-rpg/netvlad_tf_open, which
were checked against the MATLAB outputs): scipy keeps MATLAB's index order, so conv weights
arrive as (kH, kW, IN, OUT) and become PyTorch's (OUT, IN, kH, kW) with ``permute(3, 2, 0, 1)``;
no spatial transpose or flip is needed because both MatConvNet and PyTorch index images
(row = y, column = x) and both compute cross-correlation. The centres are stored negated
(MatConvNet adds them: ``x + C``), so ``c_k = -weights[1][:, k]``. ``averageImage`` is read at
pixel (0, 0), as both ports and the MATLAB ``computeRepresentation`` do.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mduit_loc.errors import DataNotFoundError, FormatError

TRUNK_TYPES = ("conv", "relu", "pool")
_CONVERT_HINT = ("a NetVLAD *_struct.mat (MatConvNet simplenn net saved as plain structs, e.g. hloc's "
                 "Pitts30K_struct.mat; convert a class-based net with netvlad_tf_open's net_class2struct.m)")


@dataclass
class TrunkLayer:
    """One layer of the conv trunk, converted to PyTorch conventions."""

    kind: str                     # conv | relu | pool
    name: str
    weight: np.ndarray | None = None   # conv: (OUT, IN, kH, kW) float32
    bias: np.ndarray | None = None     # conv: (OUT,)
    kernel: tuple[int, int] = (1, 1)   # conv or pool window
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)  # symmetric (rows, cols)

    def conv_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(weight, bias) of a conv layer (the reader gives every conv layer both)."""
        if self.weight is None or self.bias is None:
            raise ValueError(f"{self.name}: a {self.kind} layer without conv weights")
        return self.weight, self.bias


@dataclass
class MatNetVLAD:
    """Everything needed to rebuild the network, in PyTorch conventions."""

    path: Path
    trunk: list[TrunkLayer]
    normalize_input: bool
    assignment_weight: np.ndarray            # (K, D)
    assignment_bias: np.ndarray | None       # (K,) or None
    centroids: np.ndarray                    # (K, D), sign already fixed
    average_rgb: np.ndarray                  # (3,) in [0, 255]
    whitening_weight: np.ndarray | None = None   # (OUT, D * K)
    whitening_bias: np.ndarray | None = None     # (OUT,)
    layer_names: list[str] = field(default_factory=list)

    @property
    def feature_dim(self) -> int:
        return int(self.centroids.shape[1])

    @property
    def num_clusters(self) -> int:
        return int(self.centroids.shape[0])


def read_matconvnet_netvlad(path: str | Path) -> MatNetVLAD:
    """Parse and validate a ``*_struct.mat``; every problem names the file and the layer."""
    path = Path(path)
    net = _load_net(path)
    layers = _as_list(getattr(net, "layers", None))
    if not layers:
        raise FormatError(path, None, "net.layers: a non-empty cell array of layer structs", got="no layers")
    names = [str(getattr(layer, "name", f"#{i}")) for i, layer in enumerate(layers)]
    vlad_index = _find_vlad_layer(path, layers, names)
    trunk, normalize_input = _read_trunk(path, layers[:vlad_index])
    parsed = _read_vlad(path, layers[vlad_index], vlad_index)
    in_channels = _trunk_out_channels(trunk)
    if in_channels is not None and in_channels != parsed["centroids"].shape[1]:
        raise FormatError(path, None, f"layer {vlad_index} ({names[vlad_index]}) with D = {in_channels} "
                          "(the last conv's output channels)", got=f"D = {parsed['centroids'].shape[1]}")
    model = MatNetVLAD(path, trunk, normalize_input, average_rgb=_read_average_rgb(path, net),
                       layer_names=names, **parsed)
    _read_whitening(path, layers, vlad_index, model)
    return model


def _load_net(path: Path):
    import scipy.io

    if not path.is_file():
        raise DataNotFoundError(path, "NetVLAD MATLAB checkpoint", "download Pitts30K_struct.mat or TokyoTM_struct.mat")
    try:
        mat = scipy.io.loadmat(str(path), struct_as_record=False, squeeze_me=True)
    except NotImplementedError as err:  # MATLAB v7.3 files are HDF5
        raise FormatError(path, None, "a MATLAB v5/v7 .mat file (save with -v7, not -v7.3)", got=str(err)) from err
    except Exception as err:  # scipy raises ValueError/TypeError/... on damaged files
        raise FormatError(path, None, _CONVERT_HINT, got=f"{type(err).__name__}: {err}") from err
    if "net" not in mat:
        keys = ", ".join(k for k in mat if not k.startswith("__")) or "none"
        raise FormatError(path, None, "a variable 'net' (" + _CONVERT_HINT + ")", got=f"variables: {keys}")
    return mat["net"]


def _as_list(value) -> list:
    """A squeezed MATLAB cell: object array -> list; a single squeezed element -> [element]."""
    if value is None:
        return []
    if isinstance(value, np.ndarray) and value.dtype == object:
        return list(value.flat)
    return [value]


def _find_vlad_layer(path: Path, layers: list, names: list[str]) -> int:
    for index, (layer, name) in enumerate(zip(layers, names)):
        if "vlad" in name.lower() and len(_as_list(getattr(layer, "weights", None))) in (2, 3):
            return index
    listed = ", ".join(f"{i}:{n}" for i, n in enumerate(names))
    raise FormatError(path, None, "a NetVLAD layer named like 'vlad:core' with weights {assignment, centres}",
                      got=f"layers {listed}")


def _pair(value, what: str, path: Path, where: str) -> tuple[int, ...]:
    array = np.atleast_1d(np.asarray(value, dtype=np.float64)).ravel()
    if array.size == 0 or not np.all(array == np.round(array)):
        raise FormatError(path, None, f"{where}: integer {what}", got=repr(value))
    return tuple(int(v) for v in array)


def _symmetric_padding(pad: tuple[int, ...], path: Path, where: str) -> tuple[int, int]:
    if len(pad) == 1:
        return pad[0], pad[0]
    if len(pad) == 4 and pad[0] == pad[1] and pad[2] == pad[3]:
        return pad[0], pad[2]  # MatConvNet order: top bottom left right
    raise FormatError(path, None, f"{where}: symmetric padding [t b l r] with t = b, l = r", got=str(pad))


def _read_trunk(path: Path, layers: list) -> tuple[list[TrunkLayer], bool]:
    trunk: list[TrunkLayer] = []
    normalize_input = False
    in_channels = 3
    for index, layer in enumerate(layers):
        kind = str(getattr(layer, "type", "")).lower()
        name = str(getattr(layer, "name", f"#{index}"))
        where = f"layer {index} ({name})"
        if kind == "normalize" and index == len(layers) - 1:
            normalize_input = True  # "preL2": the NetVLAD layer normalises its input itself
            continue
        if kind not in TRUNK_TYPES:
            raise FormatError(path, None, f"{where}: a conv, relu or pool layer before the NetVLAD layer",
                              got=f"type {kind!r}")
        stride = _pair(getattr(layer, "stride", 1), "stride", path, where)
        stride = (stride[0], stride[-1])
        padding = _symmetric_padding(_pair(getattr(layer, "pad", 0), "pad", path, where), path, where)
        if kind == "conv":
            weight, bias = _conv_weights(path, layer, in_channels, where)
            trunk.append(TrunkLayer("conv", name, weight, bias, tuple(weight.shape[2:]), stride, padding))
            in_channels = weight.shape[0]
        elif kind == "relu":
            leak = float(np.asarray(getattr(layer, "leak", 0)).ravel()[0]) if hasattr(layer, "leak") else 0.0
            if leak != 0.0:
                raise FormatError(path, None, f"{where}: a plain ReLU (leak 0)", got=f"leak {leak}")
            trunk.append(TrunkLayer("relu", name))
        else:
            method = str(getattr(layer, "method", "max")).lower()
            if method != "max":
                raise FormatError(path, None, f"{where}: max pooling", got=method)
            window = _pair(getattr(layer, "pool", 2), "pool size", path, where)
            trunk.append(TrunkLayer("pool", name, kernel=(window[0], window[-1]), stride=stride, padding=padding))
    if not any(layer.kind == "conv" for layer in trunk):
        raise FormatError(path, None, "conv layers before the NetVLAD layer", got="none")
    return trunk, normalize_input


def _filters_and_bias(path: Path, layer, expected: str) -> tuple[np.ndarray, np.ndarray]:
    """A conv layer's ``weights`` cell {filters, biases} as float32 arrays (biases flattened)."""
    weights = _as_list(getattr(layer, "weights", None))
    if len(weights) != 2:
        raise FormatError(path, None, expected, got=f"{len(weights)} arrays")
    return np.asarray(weights[0], dtype=np.float32), np.asarray(weights[1], dtype=np.float32).ravel()


def _conv_weights(path: Path, layer, in_channels: int, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(kH, kW, IN, OUT) + (OUT,) -> (OUT, IN, kH, kW) float32 + (OUT,) float32."""
    filters, bias = _filters_and_bias(path, layer, f"{where}: conv weights {{filters kHxkWxINxOUT, biases OUT}}")
    out_channels = bias.size
    if filters.ndim != 4:  # squeeze_me drops singleton IN/OUT dimensions: restore them
        side = math.isqrt(max(filters.size // max(in_channels * out_channels, 1), 0))
        if side * side * in_channels * out_channels != filters.size:
            raise FormatError(path, None, f"{where}: conv filters kH x kW x {in_channels} x {out_channels}",
                              got=f"shape {filters.shape}")
        filters = filters.reshape(side, side, in_channels, out_channels)
    if filters.shape[2] != in_channels or filters.shape[3] != out_channels:
        raise FormatError(path, None, f"{where}: conv filters kH x kW x {in_channels} x {out_channels}",
                          got=f"shape {filters.shape}")
    return np.ascontiguousarray(filters.transpose(3, 2, 0, 1)), bias


def _trunk_out_channels(trunk: list[TrunkLayer]) -> int | None:
    weights = [layer.weight for layer in trunk if layer.kind == "conv" and layer.weight is not None]
    return int(weights[-1].shape[0]) if weights else None


def _read_vlad(path: Path, layer, index: int) -> dict:
    where = f"layer {index} ({getattr(layer, 'name', '?')})"
    weights = [np.asarray(w, dtype=np.float32) for w in _as_list(layer.weights)]
    assignment, centres = weights[0], weights[-1]
    bias = weights[1].ravel() if len(weights) == 3 else None
    if centres.ndim != 2 and centres.size and centres.squeeze().ndim == 2:
        centres = centres.squeeze()
    if centres.ndim != 2:
        raise FormatError(path, None, f"{where}: cluster centres D x K (e.g. 512 x 64)", got=f"shape {centres.shape}")
    dim, clusters = centres.shape
    if assignment.size != dim * clusters:
        raise FormatError(path, None, f"{where}: soft-assignment weights {dim} x {clusters} (D x K, 1x1 conv)",
                          got=f"shape {assignment.shape}")
    assignment = assignment.reshape(dim, clusters)
    if bias is not None and bias.size != clusters:
        raise FormatError(path, None, f"{where}: soft-assignment bias of {clusters} values", got=f"{bias.size}")
    return {"assignment_weight": np.ascontiguousarray(assignment.T), "assignment_bias": bias,
            # MatConvNet's layer computes x + C: the stored centres are the negated c_k.
            "centroids": np.ascontiguousarray(-centres.T)}


def _read_average_rgb(path: Path, net) -> np.ndarray:
    try:
        average = np.asarray(net.meta.normalization.averageImage, dtype=np.float32)
    except AttributeError:
        raise FormatError(path, None, "net.meta.normalization.averageImage (the mean RGB)", got="missing") from None
    if average.ndim == 3 and average.shape[2] == 3:
        return average[0, 0].copy()
    if average.size == 3:
        return average.ravel().copy()
    raise FormatError(path, None, "averageImage of shape 1x1x3, 3 or HxWx3", got=f"shape {average.shape}")


def _read_whitening(path: Path, layers: list, vlad_index: int, model: MatNetVLAD) -> None:
    """Fill ``whitening_weight`` (OUT, D*K) and ``whitening_bias`` from the first conv after NetVLAD."""
    vlad_dim = model.feature_dim * model.num_clusters
    for index in range(vlad_index + 1, len(layers)):
        layer = layers[index]
        if str(getattr(layer, "type", "")).lower() != "conv":
            continue
        where = f"layer {index} ({getattr(layer, 'name', '?')})"
        matrix, bias = _filters_and_bias(path, layer, f"{where}: whitening weights {{1x1x{vlad_dim}xOUT, OUT}}")
        if matrix.size != vlad_dim * bias.size or (matrix.ndim >= 2 and matrix.shape[-2] != vlad_dim):
            raise FormatError(path, None, f"{where}: whitening weights 1x1x{vlad_dim}x{bias.size}",
                              got=f"shape {matrix.shape}")
        model.whitening_weight = np.ascontiguousarray(matrix.reshape(vlad_dim, bias.size).T)
        model.whitening_bias = bias
        return

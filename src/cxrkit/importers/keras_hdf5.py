"""Import weights from Keras HDF5 files (Keras 1/2 ``.h5``/``.hdf5``, Keras 3 legacy ``.h5``).

Keras stores a model as an HDF5 file with the architecture as JSON in the
``model_config`` attribute and the weights in the ``model_weights`` group::

    model_weights/<layer>/<layer>/kernel:0      (full model, ``model.save``)
    <layer>/<layer>/kernel:0                     (``model.save_weights``)
    <layer>/<layer>_W_1:0                        (old Keras-applications files)

This module reads such a file with :mod:`h5py` only (no Keras needed) and
copies the weights into a torch module through an explicit mapping from Keras
layer names to torch module prefixes, converting the layouts:

- ``Conv2D`` kernels are ``(H, W, in, out)`` in Keras and ``(out, in, H, W)`` in torch;
- ``Dense`` kernels are ``(in, out)`` in Keras and ``(out, in)`` in torch;
- ``BatchNormalization`` ``gamma``/``beta``/``moving_mean``/``moving_variance``
  become ``weight``/``bias``/``running_mean``/``running_var``.

Keras flattens feature maps channels-last, so a dense layer after a
``Flatten`` expects its inputs in ``(H, W, C)`` order; the torch network must
flatten in that order too (:class:`cxrkit.architectures.Hall2020Features`
permutes to channels-last before flattening). The importer does not reorder
dense kernels.

Every mismatch is refused with a :class:`cxrkit.errors.WeightsError` naming
the layer and both shapes; nothing is loaded unless everything fits.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from ..architectures import CXRNet, build_hall2020_cnn
from ..errors import WeightsError
from ._keras_graph import check_keras_architecture, keras_layer_graph
from ._keras_read import read_keras_hdf5

__all__ = [
    "read_keras_hdf5",
    "load_keras_weights",
    "load_hall2020_keras",
    "load_keras_vgg16_into",
    "check_keras_architecture",
    "keras_layer_graph",
    "HALL2020_KERAS_MAPPING",
    "HALL2020_KERAS_GRAPH",
    "VGG16_KERAS_MAPPING",
]

#: Keras layer name -> prefix in the module returned by ``build_hall2020_cnn``.
HALL2020_KERAS_MAPPING: dict[str, str] = {
    "conv1": "backbone.conv1",
    "conv2": "backbone.conv2",
    "conv4": "backbone.conv4",
    "dense_1": "head.fc",
}

#: Keras-applications VGG16 layer name -> index in torchvision's ``vgg16().features``.
VGG16_KERAS_MAPPING: dict[str, str] = {
    f"block{b}_conv{c}": str(i)
    for (b, c), i in zip(
        [
            (1, 1),
            (1, 2),
            (2, 1),
            (2, 2),
            (3, 1),
            (3, 2),
            (3, 3),
            (4, 1),
            (4, 2),
            (4, 3),
            (5, 1),
            (5, 2),
            (5, 3),
        ],
        [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28],
    )
}


def _conv2d(
    name: str, filters: int, kernel: int, source: str
) -> tuple[str, str, dict[str, Any], list[str]]:
    """Return a Keras ``Conv2D`` entry of the graph below (square kernel, stride 1, valid padding, bias)."""
    config = {
        "filters": filters,
        "kernel_size": [kernel, kernel],
        "strides": [1, 1],
        "padding": "valid",
        "activation": "linear",
        "use_bias": True,
    }
    return (name, "Conv2D", config, [source])


#: The Hall et al. (2020) small CNN as a Keras graph, one entry per layer:
#: ``(id, class, config subset, input ids)``. Ids of layers with weights are the
#: Keras layer names the weights are mapped by; the other ids are local labels
#: (Keras named those layers automatically, e.g. ``leaky_re_lu_3``).
HALL2020_KERAS_GRAPH: list[tuple[str, str, dict[str, Any], list[str]]] = [
    ("input", "InputLayer", {"shape": [100, 100, 3]}, []),
    _conv2d("conv1", 64, 5, "input"),
    ("leaky_conv1", "LeakyReLU", {"alpha": 0.01}, ["conv1"]),
    (
        "pool_conv1",
        "MaxPooling2D",
        {"pool_size": [3, 3], "strides": [3, 3], "padding": "valid"},
        ["leaky_conv1"],
    ),
    _conv2d("conv2", 64, 2, "pool_conv1"),
    ("leaky_conv2", "LeakyReLU", {"alpha": 0.01}, ["conv2"]),
    (
        "pool_conv2",
        "MaxPooling2D",
        {"pool_size": [3, 3], "strides": [3, 3], "padding": "valid"},
        ["leaky_conv2"],
    ),
    ("dropout_a", "Dropout", {"rate": 0.1}, ["pool_conv2"]),
    ("leaky_input", "LeakyReLU", {"alpha": 0.01}, ["input"]),
    (
        "pool_input",
        "MaxPooling2D",
        {"pool_size": [10, 10], "strides": [10, 10], "padding": "valid"},
        ["leaky_input"],
    ),
    ("dropout_b", "Dropout", {"rate": 0.1}, ["pool_input"]),
    ("concat", "Concatenate", {"axis": -1}, ["dropout_b", "dropout_a"]),
    (
        "conv4",
        "Conv2D",
        {
            "filters": 64,
            "kernel_size": [2, 2],
            "strides": [1, 1],
            "padding": "valid",
            "activation": "relu",
            "use_bias": True,
        },
        ["concat"],
    ),
    (
        "pool_conv4",
        "MaxPooling2D",
        {"pool_size": [3, 3], "strides": [3, 3], "padding": "valid"},
        ["conv4"],
    ),
    ("flatten", "Flatten", {}, ["pool_conv4"]),
    ("dropout_head", "Dropout", {"rate": 0.25}, ["flatten"]),
    ("dense_1", "Dense", {"units": 1, "activation": "linear", "use_bias": True}, ["dropout_head"]),
    ("sigmoid", "Activation", {"activation": "sigmoid"}, ["dense_1"]),
]


# -- loading into torch ---------------------------------------------------------
def _convert(layer: str, kind: str, arr: np.ndarray) -> tuple[str, np.ndarray]:
    """Keras weight -> (torch parameter suffix, array in torch layout)."""
    if kind == "kernel":
        if arr.ndim == 4:  # Conv2D: (H, W, in, out) -> (out, in, H, W)
            return "weight", arr.transpose(3, 2, 0, 1)
        if arr.ndim == 2:  # Dense: (in, out) -> (out, in)
            return "weight", arr.T
        raise WeightsError(
            f"Keras layer {layer!r} has a kernel of shape {arr.shape}; only Conv2D kernels "
            "(4-D, H x W x in x out) and Dense kernels (2-D, in x out) can be imported."
        )
    suffix = {
        "bias": "bias",
        "gamma": "weight",
        "beta": "bias",
        "moving_mean": "running_mean",
        "moving_variance": "running_var",
    }.get(kind)
    if suffix is None:
        raise WeightsError(
            f"Keras layer {layer!r} has a weight named {kind!r} that cxrkit does not know how to "
            "convert (supported: kernel, bias, gamma, beta, moving_mean, moving_variance)."
        )
    return suffix, arr


def _torch_tensors(module: nn.Module) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = dict(module.named_parameters())
    tensors.update(
        {k: v for k, v in module.named_buffers() if not k.endswith("num_batches_tracked")}
    )
    return tensors


def load_keras_weights(
    module: nn.Module,
    path: str | os.PathLike[str],
    mapping: Mapping[str, str],
    *,
    ignore: Iterable[str] = (),
    strict: bool = True,
) -> None:
    """Copy the weights of a Keras HDF5 file into a torch module.

    Parameters
    ----------
    module : torch.nn.Module
        The network to fill (changed in place).
    path : str or path-like
        The Keras file (see :func:`read_keras_hdf5`).
    mapping : mapping of str to str
        Keras layer name -> prefix of the matching torch module in
        ``module.named_modules()`` (e.g. ``{"conv1": "backbone.conv1"}``).
    ignore : iterable of str, default=()
        Keras layers with weights that are deliberately not loaded
        (e.g. ``fc1``, ``fc2``, ``predictions`` when importing a backbone).
    strict : bool, default=True
        Also refuse a file with weighted layers that are neither mapped nor
        ignored, and a module with parameters that no Keras layer fills.

    Raises
    ------
    WeightsError
        A mapped layer is missing from the file, a shape does not fit (the
        message names the Keras layer, its shape, the torch tensor and its
        shape), or, with ``strict``, layers or parameters are left over. Nothing
        is copied unless every tensor fits.
    """
    _, weights = read_keras_hdf5(path)
    target = _torch_tensors(module)
    ignore = set(ignore)
    plan: list[tuple[str, torch.Tensor, np.ndarray]] = []
    missing = [k for k in mapping if k not in weights]
    if missing:
        raise WeightsError(
            f"Keras file '{path}' has no weights for layer(s) {missing}; layers with weights in "
            f"the file: {sorted(weights)}. Check the mapping (Keras layer name -> torch prefix)."
        )
    for layer, prefix in mapping.items():
        for kind, arr in weights[layer].items():
            suffix, converted = _convert(layer, kind, arr)
            tname = f"{prefix}.{suffix}" if prefix else suffix
            if tname not in target:
                raise WeightsError(
                    f"Keras layer {layer!r} weight {kind!r} (shape {tuple(arr.shape)}) maps to "
                    f"'{tname}', which the torch module does not have. Check the mapping "
                    f"{layer!r} -> {prefix!r}."
                )
            want = tuple(target[tname].shape)
            if tuple(converted.shape) != want:
                raise WeightsError(
                    f"Keras layer {layer!r} {kind} has shape {tuple(arr.shape)} (torch layout "
                    f"{tuple(converted.shape)}) but '{tname}' has shape {want}. The file holds a "
                    "different network; use weights saved from the same architecture."
                )
            plan.append((tname, target[tname], converted))
    if strict:
        extra = sorted(set(weights) - set(mapping) - ignore)
        if extra:
            raise WeightsError(
                f"Keras file '{path}' has weights for layer(s) {extra} that the mapping does not "
                "place in the torch module. Add them to the mapping, or pass ignore=[...] to "
                "leave them out on purpose."
            )
        filled = {t for t, _, _ in plan}
        unfilled = sorted(k for k in target if k not in filled)
        if unfilled:
            raise WeightsError(
                f"Keras file '{path}' leaves torch tensor(s) {unfilled} without weights. Add the "
                "Keras layers that hold them to the mapping, or pass strict=False."
            )
    with torch.no_grad():
        for _, tensor, arr in plan:
            tensor.copy_(torch.from_numpy(np.ascontiguousarray(arr)).to(tensor.dtype))


def load_hall2020_keras(path: str | os.PathLike[str]) -> CXRNet:
    """Build a ``hall2020_cnn`` and fill it from one of the authors' Keras files.

    The file's ``model_config`` is first checked against the network cxrkit
    builds (:data:`HALL2020_KERAS_GRAPH`: layer types, filters, kernel sizes,
    pools, activations, wiring); then ``conv1``, ``conv2``, ``conv4`` and
    ``dense_1`` are copied with :data:`HALL2020_KERAS_MAPPING`.

    Parameters
    ----------
    path : str or path-like
        A Keras 2 HDF5 file such as ``weights2-improvement-45-0.82.hdf5``.

    Returns
    -------
    CXRNet
        In eval mode; its logit is the authors' pre-sigmoid output (the score of
        "other pneumonia", their class 1).

    Raises
    ------
    WeightsError
        The file's architecture or weight shapes differ from ``hall2020_cnn``.
    """
    config, _ = read_keras_hdf5(path)
    check_keras_architecture(
        config,
        HALL2020_KERAS_GRAPH,
        name="the Hall et al. (2020) small CNN",
        source=f"Keras file '{path}'",
    )
    net = build_hall2020_cnn()
    load_keras_weights(net, path, HALL2020_KERAS_MAPPING)
    return net.eval()


def load_keras_vgg16_into(features_module: nn.Module, path: str | os.PathLike[str]) -> None:
    """Load Keras-applications VGG16 weights into torchvision's ``vgg16().features``.

    Layers ``block1_conv1`` ... ``block5_conv3`` map to the 13 convolutions
    (:data:`VGG16_KERAS_MAPPING`); the top (``fc1``, ``fc2``, ``predictions``) is
    ignored when present. Keras' VGG16 takes Caffe-style input (BGR, 0-255,
    mean-subtracted); feed the network accordingly or fold that into the first
    convolution.

    Raises
    ------
    WeightsError
        A block is missing or has another shape.
    """
    load_keras_weights(
        features_module, path, VGG16_KERAS_MAPPING, ignore=("fc1", "fc2", "predictions")
    )

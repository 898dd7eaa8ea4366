"""Writing small Keras-style HDF5 files with h5py (no Keras needed)."""

from __future__ import annotations

import json

import h5py
import numpy as np


def _layer(name: str, cls: str, inputs: list[str], **config) -> dict:
    return {
        "name": name,
        "class_name": cls,
        "config": {"name": name, **config},
        "inbound_nodes": [[[i, 0, 0, {}] for i in inputs]] if inputs else [],
    }


def hall2020_keras2_config(
    conv2_kernel: int = 2,
    merge_mode: str = "concat",
    merge_inputs: tuple[str, str] = ("dropout_2", "dropout_1"),
) -> dict:
    """A Keras 2.0 ``model_config`` shaped like the authors' files."""
    conv = {"strides": [1, 1], "padding": "valid", "data_format": "channels_last", "use_bias": True}
    pool = {"padding": "valid", "data_format": "channels_last"}
    layers = [
        _layer("RGB_input", "InputLayer", [], batch_input_shape=[None, 100, 100, 3]),
        _layer(
            "conv1",
            "Conv2D",
            ["RGB_input"],
            filters=64,
            kernel_size=[5, 5],
            activation="linear",
            **conv,
        ),
        _layer("leaky_re_lu_1", "LeakyReLU", ["conv1"], alpha=0.009999999776482582),
        _layer(
            "max_pooling2d_1",
            "MaxPooling2D",
            ["leaky_re_lu_1"],
            pool_size=[3, 3],
            strides=[3, 3],
            **pool,
        ),
        _layer(
            "conv2",
            "Conv2D",
            ["max_pooling2d_1"],
            filters=64,
            kernel_size=[conv2_kernel, conv2_kernel],
            activation="linear",
            **conv,
        ),
        _layer("leaky_re_lu_3", "LeakyReLU", ["RGB_input"], alpha=0.009999999776482582),
        _layer("leaky_re_lu_2", "LeakyReLU", ["conv2"], alpha=0.009999999776482582),
        _layer(
            "max_pooling2d_3",
            "MaxPooling2D",
            ["leaky_re_lu_3"],
            pool_size=[10, 10],
            strides=[10, 10],
            **pool,
        ),
        _layer(
            "max_pooling2d_2",
            "MaxPooling2D",
            ["leaky_re_lu_2"],
            pool_size=[3, 3],
            strides=[3, 3],
            **pool,
        ),
        _layer("dropout_2", "Dropout", ["max_pooling2d_3"], rate=0.1),
        _layer("dropout_1", "Dropout", ["max_pooling2d_2"], rate=0.1),
        _layer("merge_1", "Merge", list(merge_inputs), mode=merge_mode, concat_axis=-1),
        _layer(
            "conv4",
            "Conv2D",
            ["merge_1"],
            filters=64,
            kernel_size=[2, 2],
            activation="relu",
            **conv,
        ),
        _layer(
            "max_pooling2d_4", "MaxPooling2D", ["conv4"], pool_size=[3, 3], strides=[3, 3], **pool
        ),
        _layer("flatten_1", "Flatten", ["max_pooling2d_4"]),
        _layer("dropout_3", "Dropout", ["flatten_1"], rate=0.25),
        _layer("dense_1", "Dense", ["dropout_3"], units=1, activation="linear", use_bias=True),
        _layer("sigmoid1", "Activation", ["dense_1"], activation="sigmoid"),
    ]
    return {
        "class_name": "Model",
        "config": {
            "name": "model_1",
            "layers": layers,
            "input_layers": [["RGB_input", 0, 0]],
            "output_layers": [["sigmoid1", 0, 0]],
        },
    }


def hall2020_random_weights(seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """Random weights in Keras layout (HWIO kernels, dense (576, 1))."""
    rng = np.random.default_rng(seed)

    def r(*shape: int) -> np.ndarray:
        return rng.normal(0, 0.1, shape).astype(np.float32)

    return {
        "conv1": {"kernel": r(5, 5, 3, 64), "bias": r(64)},
        "conv2": {"kernel": r(2, 2, 64, 64), "bias": r(64)},
        "conv4": {"kernel": r(2, 2, 67, 64), "bias": r(64)},
        "dense_1": {"kernel": r(576, 1), "bias": r(1)},
    }


def write_keras_file(
    path,
    weights: dict[str, dict[str, np.ndarray]],
    config: dict | None = None,
    *,
    layout: str = "model",
    layer_names: list[str] | None = None,
) -> None:
    """Write ``weights`` in one of Keras' HDF5 layouts.

    ``layout="model"``: Keras 2 ``model.save`` (``model_weights/<l>/<l>/kernel:0``);
    ``"weights"``: ``model.save_weights`` (``<l>/<l>/kernel:0`` at the root);
    ``"keras1"``: old Keras-applications files (``<l>/<l>_W_1:0``, ``<l>_b_1:0``).
    """
    names = layer_names or (
        [lyr["name"] for lyr in config["config"]["layers"]] if config else list(weights)
    )
    with h5py.File(path, "w") as f:
        if config is not None:
            f.attrs["model_config"] = json.dumps(config).encode()
        root = f.create_group("model_weights") if layout == "model" else f
        root.attrs["layer_names"] = np.array([n.encode() for n in names])
        root.attrs["keras_version"] = b"2.0.0"
        root.attrs["backend"] = b"tensorflow"
        for name in names:
            g = root.create_group(name)
            full = []
            for kind, arr in weights.get(name, {}).items():
                if layout == "keras1":
                    wname = f"{name}_{ {'kernel': 'W', 'bias': 'b'}[kind] }_1:0"
                else:
                    wname = f"{name}/{kind}:0"
                g.create_dataset(wname, data=arr)
                full.append(wname.encode())
            g.attrs["weight_names"] = np.array(full) if full else np.array([], dtype=np.float64)

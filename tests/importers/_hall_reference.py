"""Independent references for the Hall et al. (2020) Keras files.

Nothing here uses cxrkit: the Keras 3 model is rebuilt from the file's own
``model_config`` and loaded by Keras itself; the NumPy forward pass reads the
weights with plain h5py and follows the config layer by layer.
"""

from __future__ import annotations

import json
import os

import h5py
import numpy as np
from PIL import Image


def authors_preprocess(path: str) -> np.ndarray:
    """As the authors' script: PIL, RGB, 100x100 nearest, / 255 -> (100, 100, 3)."""
    with Image.open(path) as img:
        img = img.convert("RGB").resize((100, 100), Image.NEAREST)
        return np.asarray(img, dtype=np.float32) / 255.0


def _config(path: str) -> dict:
    with h5py.File(path, "r") as f:
        raw = f.attrs["model_config"]
    return json.loads(raw.decode() if isinstance(raw, bytes) else raw)


def _inputs(layer: dict) -> list[str]:
    nodes = layer["inbound_nodes"]
    return [entry[0] for entry in nodes[0]] if nodes else []


def build_keras_model(path: str):
    """A Keras 3 functional model built from the file's config, weights loaded by Keras."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras
    from keras import layers

    tensors: dict = {}
    inputs = outputs = None
    cfg = _config(path)["config"]
    for layer in cfg["layers"]:
        c, name, cls = layer["config"], layer["name"], layer["class_name"]
        ins = [tensors[n] for n in _inputs(layer)]
        if cls == "InputLayer":
            tensors[name] = keras.Input(shape=tuple(c["batch_input_shape"][1:]), name=name)
            continue
        if cls == "Conv2D":
            op = layers.Conv2D(
                c["filters"],
                tuple(c["kernel_size"]),
                strides=tuple(c["strides"]),
                padding=c["padding"],
                activation=c["activation"],
                use_bias=c["use_bias"],
                name=name,
            )
        elif cls == "LeakyReLU":
            op = layers.LeakyReLU(negative_slope=c["alpha"], name=name)
        elif cls == "MaxPooling2D":
            op = layers.MaxPooling2D(
                tuple(c["pool_size"]), strides=tuple(c["strides"]), padding=c["padding"], name=name
            )
        elif cls == "Dropout":
            op = layers.Dropout(c["rate"], name=name)
        elif cls == "Merge":
            assert c["mode"] == "concat", c["mode"]
            op = layers.Concatenate(axis=c["concat_axis"], name=name)
        elif cls == "Flatten":
            op = layers.Flatten(name=name)
        elif cls == "Dense":
            op = layers.Dense(
                c["units"], activation=c["activation"], use_bias=c["use_bias"], name=name
            )
        elif cls == "Activation":
            op = layers.Activation(c["activation"], name=name)
        else:
            raise NotImplementedError(cls)
        tensors[name] = op(ins if len(ins) > 1 else ins[0])
    inputs = [tensors[n[0]] for n in cfg["input_layers"]]
    outputs = [tensors[n[0]] for n in cfg["output_layers"]]
    last = cfg["layers"][-1]
    assert last["class_name"] == "Activation", last["class_name"]
    logit = tensors[_inputs(last)[0]]
    model = keras.Model(inputs[0], [outputs[0], logit])
    model.load_weights(path)  # Keras' own legacy-HDF5 loader (model_weights/...)
    return model


def keras_predict(model, x_nhwc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sigmoid outputs and logits, each ``(n,)``, of the Keras model in inference mode."""
    prob, logit = model.predict(x_nhwc, verbose=0, batch_size=64)
    return np.asarray(prob, np.float64).ravel(), np.asarray(logit, np.float64).ravel()


# -- a second, NumPy-only implementation ----------------------------------------
def _conv_valid(x: np.ndarray, k: np.ndarray, b: np.ndarray) -> np.ndarray:
    """x (n, H, W, C), k (kh, kw, C, O) -> (n, H-kh+1, W-kw+1, O); cross-correlation as Keras."""
    kh, kw = k.shape[:2]
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))  # n,H',W',C,kh,kw
    return np.einsum("nhwcij,ijco->nhwo", win, k, optimize=True) + b


def _maxpool(x: np.ndarray, p: int) -> np.ndarray:
    n, h, w, c = x.shape
    h2, w2 = h // p, w // p
    return x[:, : h2 * p, : w2 * p].reshape(n, h2, p, w2, p, c).max(axis=(2, 4))


def numpy_forward(path: str, x_nhwc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The network of the file's config in float64 NumPy: sigmoid outputs and logits ``(n,)``."""
    cfg = _config(path)["config"]
    with h5py.File(path, "r") as f:
        g = f["model_weights"]
        w = {
            name: {
                k.split("/")[-1].split(":")[0]: np.asarray(g[name][k], dtype=np.float64)
                for k in [n.decode() for n in g[name].attrs["weight_names"]]
            }
            for name in g.attrs["layer_names"].astype(str)
            if len(g[name].attrs["weight_names"])
        }
    acts: dict[str, np.ndarray] = {}
    for layer in cfg["layers"]:
        c, name, cls = layer["config"], layer["name"], layer["class_name"]
        ins = [acts[n] for n in _inputs(layer)]
        if cls == "InputLayer":
            out = x_nhwc.astype(np.float64)
        elif cls == "Conv2D":
            assert c["padding"] == "valid" and c["strides"] == [1, 1]
            out = _conv_valid(ins[0], w[name]["kernel"], w[name]["bias"])
            if c["activation"] == "relu":
                out = np.maximum(out, 0)
            else:
                assert c["activation"] == "linear"
        elif cls == "LeakyReLU":
            out = np.where(ins[0] >= 0, ins[0], c["alpha"] * ins[0])
        elif cls == "MaxPooling2D":
            assert c["pool_size"][0] == c["strides"][0] == c["pool_size"][1]
            out = _maxpool(ins[0], c["pool_size"][0])
        elif cls == "Dropout":
            out = ins[0]
        elif cls == "Merge":
            out = np.concatenate(ins, axis=c["concat_axis"])
        elif cls == "Flatten":
            out = ins[0].reshape(len(ins[0]), -1)  # C order on NHWC: channels-last
        elif cls == "Dense":
            out = ins[0] @ w[name]["kernel"] + w[name]["bias"]
        elif cls == "Activation":
            assert c["activation"] == "sigmoid"
            out = 1.0 / (1.0 + np.exp(-ins[0]))
        else:
            raise NotImplementedError(cls)
        acts[name] = out
    last = cfg["layers"][-1]
    return acts[last["name"]].ravel(), acts[_inputs(last)[0]].ravel()

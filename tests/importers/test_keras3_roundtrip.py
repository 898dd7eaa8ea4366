"""A file written by Keras 3 itself (legacy HDF5, Keras 3 config format) imports too."""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "torch"  # before keras is imported anywhere

import numpy as np
import pytest
import torch

from cxrkit.importers import load_hall2020_keras, read_keras_hdf5

from ._hall_reference import build_keras_model, keras_predict
from ._keras_files import hall2020_keras2_config, hall2020_random_weights, write_keras_file


def test_keras3_saved_file_imports_and_matches_keras(tmp_path):
    keras = pytest.importorskip("keras")
    src = tmp_path / "keras2.h5"
    write_keras_file(src, hall2020_random_weights(3), hall2020_keras2_config())
    model = build_keras_model(str(src))  # Keras rebuilds the net and loads the Keras 2 file
    x = np.random.default_rng(4).random((5, 100, 100, 3)).astype(np.float32)
    prob, logit = keras_predict(model, x)
    saved = tmp_path / "keras3.h5"
    keras.Model(model.inputs, model.outputs[0]).save(saved)
    config, weights = read_keras_hdf5(saved)
    assert config["class_name"] == "Functional" and sorted(weights) == [
        "conv1",
        "conv2",
        "conv4",
        "dense_1",
    ]
    net = load_hall2020_keras(saved)
    with torch.no_grad():
        ours = net(torch.from_numpy(x).permute(0, 3, 1, 2)).double().numpy()
    assert np.abs(ours - logit).max() < 1e-5
    assert prob.std() > 1e-3

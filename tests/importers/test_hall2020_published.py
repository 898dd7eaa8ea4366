"""The published Hall et al. (2020) ensemble against references that do not use cxrkit.

Each of the seven Keras files is rebuilt independently (Keras 3 from the file's
own config, loaded by Keras' own HDF5 loader; and a float64 NumPy forward pass)
and compared with cxrkit's import on random inputs and on real chest X-rays from
``../shared/data/cxr-dev`` preprocessed exactly as the authors did (PIL,
nearest 100x100, RGB, / 255). cxrkit's side uses its own image pipeline.
"""

from __future__ import annotations

import os

os.environ["KERAS_BACKEND"] = "torch"  # before keras is imported anywhere

import numpy as np
import pandas as pd
import pytest
import torch

from cxrkit.importers import HALL2020_CLASSES, load_hall2020_keras, load_hall2020_published
from cxrkit.importers.published import _predict_members, hall2020_weight_files

from ._hall_reference import authors_preprocess, build_keras_model, keras_predict, numpy_forward

pytestmark = pytest.mark.realdata
TOL = 1e-5


@pytest.fixture(scope="module")
def hall_files(shared_weights):
    d = shared_weights / "hall2020-usf-small-cnn"
    if not d.is_dir():
        pytest.skip(f"published Hall et al. weights not found in {d}")
    return [f["path"] for f in hall2020_weight_files(d)]


@pytest.fixture(scope="module")
def real_images(shared_data):
    """2 images per label, authors' arrays (n, 100, 100, 3) and the paths."""
    root = shared_data / "cxr-dev"
    meta = pd.read_csv(root / "metadata.csv")
    rows = meta.groupby("label", sort=True).head(2)
    paths = [str(root / p) for p in rows["image"]]
    return paths, np.stack([authors_preprocess(p) for p in paths])


@pytest.fixture(scope="module")
def random_inputs():
    return np.random.default_rng(0).random((4, 100, 100, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def numpy_reference(hall_files, real_images, random_inputs):
    """Per file: (prob, logit) of the NumPy forward pass on random inputs, then real images."""
    x = np.concatenate([random_inputs, real_images[1]])
    return {p: numpy_forward(p, x) for p in hall_files}


def _cxrkit_logits(net, x_nhwc):
    with torch.no_grad():
        return net(torch.from_numpy(x_nhwc).permute(0, 3, 1, 2)).double().numpy()


def test_published_files_against_numpy_forward(
    hall_files, real_images, random_inputs, numpy_reference
):
    paths, authors = real_images
    k = len(random_inputs)
    for path in hall_files:
        net = load_hall2020_keras(path)
        prob, logit = numpy_reference[path]
        assert np.abs(_cxrkit_logits(net, random_inputs) - logit[:k]).max() < TOL, path
        ours = _predict_members([net], paths)[0]  # cxrkit's own decoding and resizing
        assert np.abs(ours - prob[k:]).max() < TOL, path
        assert np.abs(_cxrkit_logits(net, authors) - logit[k:]).max() < TOL, path


def test_published_files_against_keras3(hall_files, real_images, random_inputs):
    pytest.importorskip("keras")
    paths, authors = real_images
    worst = 0.0
    for path in hall_files:
        model = build_keras_model(path)
        net = load_hall2020_keras(path)
        prob, logit = keras_predict(model, random_inputs)
        worst = max(worst, np.abs(_cxrkit_logits(net, random_inputs) - logit).max())
        prob, logit = keras_predict(model, authors)
        worst = max(
            worst,
            np.abs(_predict_members([net], paths)[0] - prob).max(),
            np.abs(_cxrkit_logits(net, authors) - logit).max(),
        )
        # the outputs are not degenerate: real images get different scores
        assert prob.std() > 1e-3
    assert worst < TOL


def test_published_ensemble(hall_files, real_images, random_inputs, numpy_reference):
    paths, authors = real_images
    ens = load_hall2020_published(os.path.dirname(hall_files[0]))
    assert list(ens.classes_) == list(HALL2020_CLASSES) == ["covid", "pneumonia"]
    assert [s["epoch"] for s in ens.snapshots_] == [45, 55, 65, 75, 85, 95, 105]
    assert ens.estimator_.preprocessing_.input_size == 100
    assert ens.estimator_.preprocessing_.interpolation == "nearest"
    proba = ens.predict_proba(paths)
    k = len(random_inputs)
    reference = np.mean([numpy_reference[p][0][k:] for p in hall_files], axis=0)
    assert np.abs(proba[:, 1] - reference).max() < TOL
    assert np.allclose(proba.sum(axis=1), 1.0)
    pred = ens.predict(paths)
    assert list(pred) == ["pneumonia" if r >= 0.5 else "covid" for r in reference]

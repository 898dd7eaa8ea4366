"""Grad-CAM finds a planted signal."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from cxrkit.errors import ConfigurationError, DataError
from cxrkit.estimators import CXRClassifier
from cxrkit.estimators._data import as_image_source
from cxrkit.evaluation.gradcam import default_target_layer, gradcam


def _squares(n: int = 96, size: int = 32, seed: int = 0):
    """Positives carry a bright 8x8 square at a random place; negatives do not."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 100, (n, size, size)).astype(np.uint8)
    y = np.array(["neg", "pos"] * (n // 2))
    loc = rng.integers(2, size - 10, (n, 2))
    for i in np.flatnonzero(y == "pos"):
        r, c = loc[i]
        X[i, r : r + 8, c : c + 8] = 240
    return X, y, loc


@pytest.fixture(scope="module")
def trained():
    X, y, loc = _squares()
    clf = CXRClassifier("tiny_cnn", input_size=32, max_epochs=5, lr=3e-3, random_state=0)
    return clf.fit(X, y), X, y, loc


def test_heatmap_peaks_on_the_planted_square(trained):
    clf, X, y, loc = trained
    pos = np.flatnonzero(y == "pos")[:16]
    xb = next(clf.iter_batches(as_image_source(X[pos])))
    heat = gradcam(clf.module_, xb)
    assert heat.shape == (16, 32, 32)
    assert heat.min() >= 0.0 and heat.max() <= 1.0
    inside = np.zeros_like(heat, dtype=bool)
    hits = 0
    for k, i in enumerate(pos):
        r, c = loc[i]
        inside[k, r : r + 8, c : c + 8] = True
        pr, pc = np.unravel_index(heat[k].argmax(), heat[k].shape)
        hits += (r - 2 <= pr < r + 10) and (c - 2 <= pc < c + 10)
    assert hits >= 14
    assert heat[inside].mean() > 2 * heat[~inside].mean()
    # the module is left as it was found (training mode restored, no hooks left)
    assert not clf.module_._forward_hooks
    assert not default_target_layer(clf.module_)._forward_hooks


def test_negative_class_map_differs_and_frozen_backbones_work(trained):
    clf, X, y, _ = trained
    xb = next(clf.iter_batches(as_image_source(X[:4])))
    clf.module_.freeze("backbone")
    try:
        pos_map = gradcam(clf.module_, xb)
        neg_map = gradcam(clf.module_, xb, class_index=0)
    finally:
        clf.module_.freeze("none")
    assert pos_map.shape == neg_map.shape == (4, 32, 32)
    assert not np.allclose(pos_map, neg_map)


def test_bad_input_and_layers_are_reported(trained):
    clf, *_ = trained
    with pytest.raises(
        DataError,
        match=r"gradcam expects a \(N, C, H, W\) tensor; got "
        r"\(3, 32, 32\)\.",
    ):
        gradcam(clf.module_, torch.zeros(3, 32, 32))
    with pytest.raises(
        ConfigurationError,
        match=r"The Grad-CAM target layer outputs shape "
        r"\(2, 32\); a \(N, C, h, w\) feature map is needed\. Pass a "
        r"convolutional layer as target_layer\.",
    ):
        gradcam(clf.module_, torch.zeros(2, 3, 32, 32), target_layer=clf.module_.pool)
    with pytest.raises(ConfigurationError, match=r"Linear has no Conv2d layer in its backbone"):
        default_target_layer(nn.Linear(2, 2))


@pytest.mark.parametrize("target", ["default", "pool3"])
def test_hall2020_cnn_maps_with_the_sparse_backward_on(target):
    # training runs conv -> pool without calling the layer modules; a hooked layer
    # (Grad-CAM's target) must still run, so the maps equal those of the plain path
    from cxrkit.architectures import create_architecture

    x = torch.rand(3, 3, 100, 100)
    maps = []
    for sparse in (True, False):
        torch.manual_seed(0)
        net = create_architecture("hall2020_cnn", sparse_backward=sparse)
        layer = None if target == "default" else net.backbone.pool3
        maps.append(gradcam(net, x, layer))
    assert maps[0].shape == (3, 100, 100) and maps[0].max() > 0
    np.testing.assert_allclose(maps[0], maps[1], atol=1e-5)


def test_each_output_of_a_multilabel_network_points_at_its_own_finding():
    import pandas as pd

    from ..conftest import make_findings

    X, Y = make_findings(200, size=32, k=3)
    clf = CXRClassifier("tiny_cnn", input_size=32, max_epochs=15, lr=3e-3, random_state=0)
    clf.fit(X[:160], pd.DataFrame(Y[:160], columns=["a", "b", "c"]))
    q = 32 // 5  # make_findings draws finding j as a q x q square at spots[j]
    spots = [(q // 2 + (j % 2) * 3 * q, q // 2 + (j // 2) * 3 * q) for j in range(3)]
    for j in range(3):
        sel = 160 + np.flatnonzero(Y[160:, j] == 1)
        batch = next(clf.iter_batches(as_image_source(X[sel]), len(sel)))
        maps = gradcam(clf.module_, batch, output=j)
        at = [maps[:, r : r + q, c : c + q].mean() for r, c in spots]
        assert int(np.argmax(at)) == j, (j, at)
    with pytest.raises(ConfigurationError, match=r"output must be in \[0, 3\)"):
        gradcam(clf.module_, batch, output=3)

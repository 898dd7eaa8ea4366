"""Grad-CAM of a trained small CNN (hall2020_cnn) shows the evidence for the positive class."""

from __future__ import annotations

import numpy as np
import pytest

from cxrkit.estimators import CXRClassifier
from cxrkit.estimators._data import as_image_source
from cxrkit.evaluation.gradcam import default_target_layer, gradcam

SIZE, SQUARE = 100, 24


def _squares(n: int = 96, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positives carry a bright square at a random place; negatives are noise only."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 100, (n, SIZE, SIZE)).astype(np.uint8)
    y = np.array(["neg", "pos"] * (n // 2))
    loc = rng.integers(5, SIZE - SQUARE - 5, (n, 2))
    for i in np.flatnonzero(y == "pos"):
        r, c = loc[i]
        X[i, r : r + SQUARE, c : c + SQUARE] = 240
    return X, y, loc


@pytest.fixture(scope="module")
def trained() -> tuple[CXRClassifier, np.ndarray, np.ndarray, np.ndarray]:
    X, y, loc = _squares()
    clf = CXRClassifier("hall2020_cnn", input_size=SIZE, max_epochs=4, lr=1e-3, random_state=0)
    return clf.fit(X, y), X, y, loc


def test_target_is_conv4_after_its_relu(
    trained: tuple[CXRClassifier, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    clf, *_ = trained
    net = clf.module_
    assert default_target_layer(net) is net.backbone.conv4
    assert net.gradcam_activation == "relu"


def test_positive_images_get_maps_on_the_square(
    trained: tuple[CXRClassifier, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    clf, X, y, loc = trained
    pos = np.flatnonzero(y == "pos")[:24]
    xb = next(clf.iter_batches(as_image_source(X[pos])))
    heat = gradcam(clf.module_, xb)
    assert heat.shape == (24, SIZE, SIZE)
    assert all(h.max() > 0 for h in heat), "a positive image got an empty map"
    hits = 0
    for k, i in enumerate(pos):
        r, c = loc[i]
        pr, pc = np.unravel_index(heat[k].argmax(), heat[k].shape)
        hits += (r - 4 <= pr < r + SQUARE + 4) and (c - 4 <= pc < c + SQUARE + 4)
    assert hits >= 16


def test_raw_conv4_target_keeps_its_negative_values(
    trained: tuple[CXRClassifier, np.ndarray, np.ndarray, np.ndarray],
) -> None:
    """Passing the layer explicitly on a network that declares nothing uses the raw map."""
    clf, X, *_ = trained
    net = clf.module_
    xb = next(clf.iter_batches(as_image_source(X[:8])))
    declared = gradcam(net, xb)
    act = net.gradcam_activation
    try:
        net.gradcam_activation = None  # type: ignore[assignment]
        raw = gradcam(net, xb, net.get_submodule("backbone.conv4"))
    finally:
        net.gradcam_activation = act
    assert not np.allclose(declared, raw)

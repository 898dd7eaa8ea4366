"""ONNX Runtime predictor (skipped when onnxruntime/onnx are not installed)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from cxrkit.estimators import CXRClassifier  # noqa: E402
from cxrkit.estimators._onnx import OnnxRuntimePredictor  # noqa: E402


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 255, (24, 16, 16), dtype=np.uint8)
    y = np.array([0, 1] * 12)
    X[y == 1, 4:12, 4:12] = 250
    clf = CXRClassifier("tiny_cnn", input_size=16, max_epochs=2, batch_size=8, random_state=0)
    return clf.fit(X, y), X


def test_fp32_matches_torch(fitted):
    clf, X = fitted
    ort_pred = OnnxRuntimePredictor(clf)
    np.testing.assert_allclose(ort_pred.predict_proba(X), clf.predict_proba(X), atol=1e-5)


def test_int8_runs_and_stays_close(fitted):
    clf, X = fitted
    q = OnnxRuntimePredictor(clf, quantize="int8", calibration=X)
    p = q.predict_proba(X)
    assert p.shape == (len(X), 2)
    assert np.abs(p - clf.predict_proba(X)).max() < 0.05

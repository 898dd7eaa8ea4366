"""Inference options: channels-last, autocast switch, grayscale first conv at predict time."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import cxrkit
from cxrkit.errors import ConfigurationError
from cxrkit.estimators import CXRClassifier


def _fit(**kw):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 255, (16, 20, 20), dtype=np.uint8)
    y = np.array([0, 1] * 8)
    switches = {k: kw.pop(k) for k in ("channels_last", "grayscale_conv") if k in kw}
    clf = CXRClassifier("tiny_cnn", input_size=16, max_epochs=1, batch_size=8, random_state=0, **kw)
    with cxrkit.config_context(**switches):
        return clf.fit(X, y), X


@pytest.mark.parametrize(
    "kw",
    [
        {"channels_last": True},
        {"channels_last": "auto"},
        {"grayscale_conv": True},
        {"grayscale_conv": True, "channels_last": True},
    ],
)
def test_fast_options_give_the_same_probabilities(kw):
    ref, X = _fit(channels_last=False, grayscale_conv=False)
    fast, _ = _fit(**kw)
    with cxrkit.config_context(channels_last=False):
        ref_proba = ref.predict_proba(X)
    with cxrkit.config_context(**kw):
        fast_proba = fast.predict_proba(X)
    np.testing.assert_allclose(fast_proba, ref_proba, atol=1e-5)


def test_amp_is_ignored_on_cpu_and_validated():
    clf, X = _fit(amp="bf16", device="cpu")
    assert clf.predict_proba(X).dtype == np.float64
    clf.set_params(amp="int4")
    with pytest.raises(
        ConfigurationError,
        match=r"The 'amp' parameter of CXRClassifier must be "
        r"None or a str among \{'(bf16|fp16)', '(bf16|fp16)'\}. Got 'int4' instead.",
    ):
        clf.fit(X, np.array([0, 1] * 8))


def test_streamed_prediction_from_files_matches_arrays(tmp_path):
    clf, X = _fit(channels_last=True)
    paths = []
    for i, img in enumerate(X):
        p = tmp_path / f"{i}.png"
        Image.fromarray(img, mode="L").save(p)
        paths.append(str(p))
    np.testing.assert_allclose(clf.predict_proba(paths), clf.predict_proba(X), atol=1e-6)

"""A NaN or infinite training loss stops fit with a clear error."""

from __future__ import annotations

import numpy as np
import pytest

from cxrkit import CXRClassifier
from cxrkit.errors import NonFiniteLossError, TrainingInterruptedError
from cxrkit.estimators._cache._store import FeatureCache

from ..conftest import make_separable


def test_nan_cached_features_stop_fit(monkeypatch):
    X, y = make_separable(16, 16)
    real = FeatureCache.features

    def poisoned(*args, **kwargs):  # as if the cache held NaN-filled .npy files
        return {k: np.full_like(v, np.nan) for k, v in real(*args, **kwargs).items()}

    monkeypatch.setattr(FeatureCache, "features", poisoned)
    clf = CXRClassifier(
        "tiny_cnn", freeze="backbone", input_size=16, max_epochs=3, batch_size=8, random_state=0
    )
    with pytest.raises(
        NonFiniteLossError,
        match=r"^The training loss became nan in epoch 1, "
        r"batch 1; training cannot recover from it\. The inputs hold NaN",
    ):
        clf.fit(X, y)
    with pytest.raises(TrainingInterruptedError, match="fit raised NonFiniteLossError"):
        clf.predict_proba(X)


def test_finite_training_is_unaffected():
    X, y = make_separable(16, 16)
    clf = CXRClassifier("tiny_cnn", input_size=16, max_epochs=2, batch_size=8, random_state=0).fit(
        X, y
    )
    assert np.isfinite(clf.predict_proba(X)).all()

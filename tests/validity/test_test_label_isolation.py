"""Selection on test data: test labels are never read before predictions are made.

``SealedLabels`` raises when a sealed label is read. Each fold's test labels are
sealed while that fold trains and predicts; the lead extends this to the
snapshot ensemble and threshold selection by swapping in those estimators.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold, cross_val_predict

from cxrkit import CXRClassifier
from cxrkit.validity import SealedLabels, TestLabelAccessError


def _data(n: int = 32):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 120, (n, 16, 16), dtype=np.uint8)
    y = np.array(["covid", "pneumonia"] * (n // 2))
    X[y == "pneumonia", 4:12, 4:12] = 230
    groups = np.repeat(np.arange(n // 2), 2)
    return X, y, groups


class _FoldSealing:
    """Seals fold k's test labels from the start of fit k until its predictions exist."""

    def __init__(self, labels: SealedLabels, splits):
        self.labels, self.splits, self.fold = labels, splits, -1
        self.predicted: list[int] = []

    def before_fit(self):
        self.fold += 1
        self.labels.seal(self.splits[self.fold][1])

    def after_predict(self):
        self.labels.unseal(self.splits[self.fold][1])
        self.predicted.append(self.fold)


_STATE: dict[str, _FoldSealing] = {}


class SealingClassifier(CXRClassifier):
    """CXRClassifier that seals the current fold's test labels while it works."""

    def fit(self, X, y, groups=None, **kw):
        _STATE["s"].before_fit()
        return super().fit(X, y, groups, **kw)

    def predict_proba(self, X):
        out = super().predict_proba(X)
        _STATE["s"].after_predict()
        return out


def _run(estimator, X, labels, groups, splits):
    _STATE["s"] = _FoldSealing(labels, splits)
    try:
        proba = cross_val_predict(
            estimator, X, labels, groups=groups, cv=splits, method="predict_proba"
        )
    finally:
        sealing = _STATE.pop("s")
    return proba, sealing


def test_cross_val_predict_never_reads_test_fold_labels():
    X, y, groups = _data()
    splits = list(StratifiedGroupKFold(4, shuffle=True, random_state=0).split(X, y, groups))
    labels = SealedLabels(y)
    est = SealingClassifier(
        "tiny_cnn", input_size=16, max_epochs=2, validation=0.25, random_state=0
    )
    proba, sealing = _run(est, X, labels, groups, splits)
    assert sealing.predicted == [0, 1, 2, 3]
    assert not labels.is_sealed
    # every label was read only as training data of other folds (or by sklearn's class encoding)
    assert roc_auc_score(y == "pneumonia", proba[:, 1]) > 0.9  # scoring after predictions is fine


class PeekingClassifier(SealingClassifier):
    """Deliberately chooses its threshold on the full label vector (a leak)."""

    def fit(self, X, y, groups=None, **kw):
        super().fit(X, y, groups, **kw)
        np.asarray(_FULL_LABELS["y"])  # e.g. a threshold tuned on all labels
        return self


_FULL_LABELS: dict[str, SealedLabels] = {}


def test_a_classifier_that_peeks_at_test_labels_is_caught():
    X, y, groups = _data()
    splits = list(StratifiedGroupKFold(4, shuffle=True, random_state=0).split(X, y, groups))
    labels = SealedLabels(y)
    _FULL_LABELS["y"] = labels
    est = PeekingClassifier("tiny_cnn", input_size=16, max_epochs=1, random_state=0)
    with pytest.raises(
        TestLabelAccessError,
        match=r"^8 sealed test label\(s\) were read before "
        r"their predictions were made\.",
    ):
        _run(est, X, labels, groups, splits)


def test_unseen_test_set_labels_are_read_only_after_prediction():
    X, y, groups = _data(40)
    train, test = np.arange(32), np.arange(32, 40)
    labels = SealedLabels(y, sealed=test)
    clf = CXRClassifier("tiny_cnn", input_size=16, max_epochs=2, random_state=0)
    clf.fit(X[train], labels[train], groups[train])
    with pytest.raises(TestLabelAccessError):
        labels[test]
    proba = clf.predict_proba(X[test])
    labels.unseal(test)
    assert labels[test].tolist() == y[test].tolist() and proba.shape == (8, 2)

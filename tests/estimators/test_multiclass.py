"""Multi-class CXRClassifier: one logit per class, softmax cross-entropy."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from cxrkit import CXRClassifier, SnapshotEnsembleClassifier, load_model, save_model
from cxrkit.estimators import clear_feature_cache, feature_cache_stats
from cxrkit.estimators._targets import infer_target

from ..conftest import make_findings

NAMES = np.array(["covid", "normal", "pneumonia"])


def _data(n=150, seed=0):
    X, cls = make_findings(n, multiclass=True, seed=seed)
    return X, NAMES[cls]


def test_three_classes_reach_macro_auc():
    X, y = _data(180)
    clf = CXRClassifier("tiny_cnn", input_size=32, max_epochs=12, lr=3e-3, random_state=0)
    clf.fit(X[:130], y[:130])
    proba = clf.predict_proba(X[130:])
    assert clf.task_ == "multiclass" and clf.n_outputs_ == 1
    np.testing.assert_array_equal(clf.classes_, NAMES)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    auc = roc_auc_score(y[130:], proba, multi_class="ovr", average="macro", labels=NAMES)
    assert auc > 0.9, auc
    assert set(clf.predict(X[130:])) <= set(NAMES)
    assert clf.history_[-1, "train_acc"] > 0.6


def test_balanced_class_weight_follows_scikit_learn():
    y = np.array(["a"] * 6 + ["b"] * 3 + ["c"])
    target, _ = infer_target(y, 10, class_weight="balanced")
    np.testing.assert_allclose(target.weight, 10 / (3 * np.array([6, 3, 1])))


def test_validation_split_and_snapshots_with_cached_features():
    X, y = _data(90)
    clear_feature_cache()
    base = CXRClassifier(
        "tiny_cnn",
        input_size=32,
        max_epochs=4,
        lr=3e-3,
        random_state=0,
        freeze="backbone",
        validation=0.2,
    )
    ens = SnapshotEnsembleClassifier(base, policy="last", n_snapshots=2, interval=1).fit(X, y)
    assert feature_cache_stats()["misses"] == len(X)
    assert "valid_acc" in ens.estimator_.history_[-1]
    assert ens.member_proba(X).shape == (2, 90, 3)
    assert feature_cache_stats()["hits"] >= len(X)
    np.testing.assert_allclose(ens.predict_proba(X).sum(axis=1), 1.0, rtol=1e-6)
    assert set(ens.predict(X)) <= set(NAMES)


@pytest.mark.parametrize("head", ["hall2020", "fc"])
def test_heads_get_one_logit_per_class_and_round_trip(tmp_path, head):
    X, y = _data(45)
    clf = CXRClassifier("tiny_cnn", input_size=32, max_epochs=1, head=head, random_state=0)
    clf.fit(X, y)
    assert clf.module_.n_outputs == 3
    save_model(clf, tmp_path / head)
    loaded = load_model(tmp_path / head)
    assert loaded.task_ == "multiclass"
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), atol=1e-6)
    assert list(loaded.classes_) == list(NAMES)

"""ClinicalClassifier: recalibration and thresholds fitted on a patient-grouped inner split."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from cxrkit.errors import ConfigurationError
from cxrkit.evaluation.clinical import ClinicalClassifier, calibration_intercept_slope


class Overconfident(ClassifierMixin, BaseEstimator):
    """A logistic model whose logits are multiplied by ``scale`` (known miscalibration)."""

    def __init__(self, scale: float = 4.0) -> None:
        self.scale = scale

    def fit(self, X, y):
        self.lr_ = LogisticRegression().fit(X, y)
        self.classes_ = self.lr_.classes_
        return self

    def predict_proba(self, X):
        z = self.scale * self.lr_.decision_function(X)
        p = 1 / (1 + np.exp(-z))
        return np.column_stack([1 - p, p])

    def predict(self, X):
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]


def _data(n: int, seed: int):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    p = 1 / (1 + np.exp(-(X @ np.array([1.0, -0.5, 0.3]))))
    y = (rng.random(n) < p).astype(int)
    return X, y, np.arange(n) // 2  # two images per patient


@pytest.mark.parametrize("method", ["sigmoid", "isotonic", "temperature"])
def test_recalibration_moves_slope_toward_one_on_held_out_data(method):
    X, y, g = _data(3000, 0)
    Xt, yt, _ = _data(3000, 1)
    raw = Overconfident().fit(X, y).predict_proba(Xt)[:, 1]
    _, slope_raw = calibration_intercept_slope(yt, raw)
    clf = ClinicalClassifier(Overconfident(), calibration=method).fit(X, y, groups=g)
    _, slope_cal = calibration_intercept_slope(yt, clf.predict_proba(Xt)[:, 1])
    assert slope_raw < 0.4  # the scaled-up logits are overconfident
    assert abs(slope_cal - 1) < abs(slope_raw - 1) and abs(slope_cal - 1) < 0.25


@pytest.mark.parametrize("rule", ["youden", "f1", "sensitivity:0.9", "specificity:0.8"])
def test_threshold_is_identical_when_test_labels_are_permuted(rule):
    X, y, g = _data(400, 2)
    Xt, yt, _ = _data(200, 3)
    rng = np.random.default_rng(0)
    clf = ClinicalClassifier(LogisticRegression(), calibration="sigmoid", threshold=rule)
    t1 = clf.fit(X, y, groups=g).threshold_
    # The test labels are never an input of fit; permuting them cannot move the threshold.
    t2 = (
        ClinicalClassifier(LogisticRegression(), calibration="sigmoid", threshold=rule)
        .fit(X, y, groups=g)
        .threshold_
    )
    acc1 = np.mean(clf.predict(Xt) == yt)
    acc2 = np.mean(clf.predict(Xt) == rng.permutation(yt))
    assert t1 == t2 and 0 < t1 < 1 and acc1 != acc2


def test_inner_validation_patients_are_not_in_inner_training():
    X, y, g = _data(300, 4)
    g = np.arange(300) // 5
    clf = ClinicalClassifier(LogisticRegression(), threshold="youden", inner_split=0.3).fit(
        X, y, groups=g
    )
    tr, va = clf.inner_train_index_, clf.inner_validation_index_
    assert set(g[tr]).isdisjoint(g[va]) and len(tr) + len(va) == 300
    assert 0.2 < len(set(g[va])) / len(set(g)) < 0.4
    assert len(clf.validation_y_) == len(va)


def test_defaults_fit_on_all_data_and_match_the_plain_estimator():
    X, y, g = _data(200, 5)
    clf = ClinicalClassifier(LogisticRegression()).fit(X, y, groups=g)
    plain = LogisticRegression().fit(X, y)
    assert clf.inner_train_index_ is None and clf.threshold_ == 0.5
    np.testing.assert_allclose(clf.predict_proba(X), plain.predict_proba(X))
    np.testing.assert_array_equal(clf.predict(X), plain.predict(X))


def test_fixed_threshold_is_applied_by_predict():
    X, y, g = _data(200, 6)
    clf = ClinicalClassifier(LogisticRegression(), threshold=0.8).fit(X, y, groups=g)
    p = clf.predict_proba(X)[:, 1]
    np.testing.assert_array_equal(clf.predict(X), (p >= 0.8).astype(int))


def test_bad_rule_is_refused_with_the_valid_forms():
    X, y, g = _data(100, 7)
    with pytest.raises(ConfigurationError, match=r"The operating-point rule 'sens:0\.9' is not"):
        ClinicalClassifier(LogisticRegression(), threshold="sens:0.9").fit(X, y, groups=g)


def test_tiny_cxr_classifier_is_recalibrated():
    from cxrkit.estimators import CXRClassifier
    from tests.conftest import make_separable

    X, y = make_separable(n=48, size=32)
    g = np.arange(48) // 2
    net = CXRClassifier(
        architecture="tiny_cnn", input_size=32, max_epochs=2, batch_size=16, random_state=0
    )
    clf = ClinicalClassifier(net, calibration="sigmoid", threshold="youden").fit(X, y, groups=g)
    proba = clf.predict_proba(X[:6])
    assert proba.shape == (6, 2) and np.allclose(proba.sum(1), 1)
    assert list(clf.classes_) == ["neg", "pos"] and 0 <= clf.threshold_ <= 1
    assert set(g[clf.inner_train_index_]).isdisjoint(g[clf.inner_validation_index_])

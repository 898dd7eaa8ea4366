"""Metrics and scorers against hand-computed values; DeLong against references."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, cross_validate

from cxrkit.errors import ConfigurationError, DataError
from cxrkit.evaluation.metrics import (
    METRIC_NAMES,
    accuracy_score,
    binary_confusion_matrix,
    compute_metrics,
    delong_auc_ci,
    delong_auc_variance,
    make_cxr_scorers,
    npv_at_prevalence,
    per_fold_metrics,
    ppv_at_prevalence,
    sensitivity_score,
    specificity_score,
)

# 10 images: 4 positives ("covid"), 6 negatives; threshold 0.5
Y = np.array(
    ["covid", "covid", "covid", "covid", "normal", "normal", "normal", "normal", "normal", "normal"]
)
S = np.array([0.9, 0.7, 0.6, 0.2, 0.8, 0.4, 0.3, 0.3, 0.1, 0.05])
# predicted positive: 0.9 0.7 0.6 | 0.8  -> TP 3, FN 1, FP 1, TN 5
# AUC: pairs (pos > neg): 0.9>all 6, 0.7>5 (not 0.8), 0.6>5, 0.2>2 (0.1, 0.05) -> 18/24


def test_point_metrics_match_hand_computed_values():
    pred = np.where(S >= 0.5, "covid", "normal")
    assert binary_confusion_matrix(Y, pred, positive_label="covid").tolist() == [[5, 1], [1, 3]]
    assert sensitivity_score(Y, pred, positive_label="covid") == pytest.approx(3 / 4)
    assert specificity_score(Y, pred, positive_label="covid") == pytest.approx(5 / 6)
    assert accuracy_score(Y, pred) == pytest.approx(8 / 10)


def test_compute_metrics_point_values():
    m = compute_metrics(Y, S, positive_label="covid", n_bootstraps=0)
    assert m["confusion_matrix"] == {"tn": 5, "fp": 1, "fn": 1, "tp": 3}
    assert m["auc"]["value"] == pytest.approx(18 / 24)
    assert m["sensitivity"]["value"] == pytest.approx(0.75)
    assert m["specificity"]["value"] == pytest.approx(5 / 6)
    assert m["accuracy"]["value"] == pytest.approx(0.8)
    assert m["ppv"]["value"] == pytest.approx(3 / 4)  # TP / (TP + FP) at sample prevalence
    assert m["npv"]["value"] == pytest.approx(5 / 6)  # TN / (TN + FN)
    assert np.isnan(m["sensitivity"]["ci_low"])
    assert set(METRIC_NAMES) <= set(m)
    for name in METRIC_NAMES:
        assert set(m[name]) >= {"value", "ci_low", "ci_high", "method"}


def test_ties_count_one_half_in_auc():
    m = compute_metrics([1, 0, 1, 0], [0.5, 0.5, 0.9, 0.1], positive_label=1, n_bootstraps=0)
    # pairs: (0.5 vs 0.5) = 1/2, (0.5 vs 0.1) = 1, (0.9 vs 0.5) = 1, (0.9 vs 0.1) = 1
    assert m["auc"]["value"] == pytest.approx(3.5 / 4)


def test_ppv_npv_at_prevalence_by_bayes_rule():
    # sens 0.9, spec 0.8, p 0.1: PPV = 0.09 / (0.09 + 0.18); NPV = 0.72 / (0.72 + 0.01)
    assert ppv_at_prevalence(0.9, 0.8, 0.1) == pytest.approx(1 / 3)
    assert npv_at_prevalence(0.9, 0.8, 0.1) == pytest.approx(0.72 / 0.73)
    m = compute_metrics(Y, S, positive_label="covid", prevalence=0.0257, n_bootstraps=200)
    p, se, sp = 0.0257, 0.75, 5 / 6
    assert m["ppv"]["value"] == pytest.approx(se * p / (se * p + (1 - sp) * (1 - p)))
    assert m["npv"]["value"] == pytest.approx(sp * (1 - p) / (sp * (1 - p) + (1 - se) * p))
    assert "prevalence 0.0257" in m["ppv"]["method"]
    assert m["ppv"]["ci_low"] <= m["ppv"]["value"] <= m["ppv"]["ci_high"]


def test_delong_variance_hand_computed_example():
    # positives 0.9 0.8 0.4, negatives 0.7 0.3:
    # V10 = [1, 1, 0.5], V01 = [2/3, 1]; var = (1/12)/3 + (1/18)/2 = 1/18
    auc, var = delong_auc_variance([1, 1, 1, 0, 0], [0.9, 0.8, 0.4, 0.7, 0.3])
    assert auc == pytest.approx(2.5 / 3)
    assert var == pytest.approx(1 / 18)


def _slow_delong(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    psi = (x[:, None] > y[None, :]) + 0.5 * (x[:, None] == y[None, :])
    v10, v01 = psi.mean(1), psi.mean(0)
    return psi.mean(), v10.var(ddof=1) / len(x) + v01.var(ddof=1) / len(y)


def test_fast_delong_equals_definition_with_ties():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 300)
    s = np.round(rng.normal(y * 0.8, 1.0), 1)  # many ties
    auc, var = delong_auc_variance(y, s)
    ref_auc, ref_var = _slow_delong(s[y == 1], s[y == 0])
    assert auc == pytest.approx(ref_auc)
    assert auc == pytest.approx(roc_auc_score(y, s))
    assert var == pytest.approx(ref_var)


def test_delong_variance_agrees_with_bootstrap_on_a_large_sample():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 3000)
    s = rng.normal(y * 1.0, 1.0)
    _, var = delong_auc_variance(y, s)
    m = compute_metrics(y, s, positive_label=1, n_bootstraps=2000, random_state=1)
    lo, hi = m["auc"]["bootstrap_ci"]
    boot_sd = (hi - lo) / (2 * 1.959964)
    assert np.sqrt(var) == pytest.approx(boot_sd, rel=0.1)
    (
        d_lo,
        d_hi,
    ) = delong_auc_ci(y, s)[1:]
    assert [m["auc"]["ci_low"], m["auc"]["ci_high"]] == pytest.approx([d_lo, d_hi])
    assert "DeLong" in m["auc"]["method"]


def test_bootstrap_is_seeded():
    a = compute_metrics(Y, S, positive_label="covid", n_bootstraps=300, random_state=7)
    b = compute_metrics(Y, S, positive_label="covid", n_bootstraps=300, random_state=7)
    c = compute_metrics(Y, S, positive_label="covid", n_bootstraps=300, random_state=8)
    assert a["accuracy"]["ci_low"] == b["accuracy"]["ci_low"]
    assert a["accuracy"]["ci_high"] == b["accuracy"]["ci_high"]
    assert (a["accuracy"]["ci_low"], a["accuracy"]["ci_high"]) != (
        c["accuracy"]["ci_low"],
        c["accuracy"]["ci_high"],
    ) or a["auc"]["bootstrap_ci"] != c["auc"]["bootstrap_ci"]


def test_cluster_bootstrap_resamples_patients_not_images():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    s = rng.normal(y * 1.0, 1.0)
    reps = 5  # every patient imaged 5 times, identical images
    y5, s5, g5 = np.repeat(y, reps), np.repeat(s, reps), np.repeat(np.arange(200), reps)
    single = compute_metrics(y, s, positive_label=1, n_bootstraps=1000, random_state=0)
    images = compute_metrics(y5, s5, positive_label=1, n_bootstraps=1000, random_state=0)
    patients = compute_metrics(
        y5, s5, positive_label=1, groups=g5, n_bootstraps=1000, random_state=0
    )

    def width(m, k):
        return m[k]["ci_high"] - m[k]["ci_low"]

    for k in ("accuracy", "sensitivity", "auc"):
        # image resampling pretends to have 1000 independent images: too narrow
        assert width(images, k) < 0.6 * width(patients, k)
        assert width(patients, k) == pytest.approx(width(single, k), rel=0.2)
    assert "patients" in patients["auc"]["method"]
    assert patients["settings"]["n_groups"] == 200
    assert patients["auc"]["delong_ci"][0] > patients["auc"]["ci_low"]


def test_per_fold_metrics():
    folds = np.array([0, 1] * 5)
    rows = per_fold_metrics(Y, S, folds, positive_label="covid")
    assert [r["fold"] for r in rows] == [0, 1]
    for r in rows:
        sel = folds == r["fold"]
        ref = compute_metrics(Y[sel], S[sel], positive_label="covid", n_bootstraps=0)
        for k in ("auc", "sensitivity", "specificity", "accuracy"):
            assert r[k] == pytest.approx(ref[k]["value"], nan_ok=True)
        assert r["n_images"] == 5


def test_errors_name_the_problem():
    with pytest.raises(
        DataError,
        match=r"positive_label='covid' does not occur in y_true "
        r"\(labels seen: \['a', 'b'\]\)\. Pass the label of the positive class "
        r"as it appears in y_true\.",
    ):
        compute_metrics(["a", "b"], [0.1, 0.9], positive_label="covid")
    with pytest.raises(
        DataError,
        match=r"y_score contains 1 NaN or infinite value\(s\); every "
        r"image needs a finite score\. Remove those images or fix the model output\.",
    ):
        compute_metrics([0, 1], [np.nan, 0.9], positive_label=1)
    with pytest.raises(
        DataError,
        match=r"y_true has 2 labels but y_score has 3 scores; they "
        r"must match\.",
    ):
        compute_metrics([0, 1], [0.1, 0.2, 0.3], positive_label=1)
    with pytest.raises(
        ConfigurationError,
        match=r"The 'prevalence' parameter must be a float in "
        r"the range \(0, 1\)\. Got 2\.57 instead \(e\.g\. 0\.0257 for 2\.57%\)\.",
    ):
        compute_metrics([0, 1], [0.1, 0.9], positive_label=1, prevalence=2.57)
    with pytest.raises(
        ConfigurationError,
        match=r"The 'n_bootstraps' parameter must be an int "
        r"in the range \[0, inf\)\. Got -1 instead\.",
    ):
        compute_metrics([0, 1], [0.1, 0.9], positive_label=1, n_bootstraps=-1)
    with pytest.raises(
        DataError,
        match=r"groups must hold one patient id per image \(2\); got "
        r"shape \(3,\)\.",
    ):
        compute_metrics([0, 1], [0.1, 0.9], positive_label=1, groups=[1, 2, 3])


# -- scorers -------------------------------------------------------------------------------
class FixedScore(ClassifierMixin, BaseEstimator):
    """predict_proba[:, 1] is X[:, 0], the probability of classes_[1]."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        return self

    def predict_proba(self, X):
        p = np.asarray(X, float)[:, 0]
        return np.column_stack([1 - p, p])

    def predict(self, X):
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]


def test_scorers_match_hand_computed_values_for_either_column():
    # classes_ = ["covid", "normal"]: covid is column 0, so X holds P(normal) = 1 - S
    est = FixedScore().fit(None, Y)
    X = (1 - S)[:, None]
    sc = make_cxr_scorers("covid")
    assert set(sc) == {"accuracy", "sensitivity", "specificity", "roc_auc"}
    assert sc["roc_auc"](est, X, Y) == pytest.approx(18 / 24)
    # predict: normal when 1 - S >= 0.5, i.e. covid when S > 0.5 (0.9, 0.7, 0.6, 0.8)
    assert sc["sensitivity"](est, X, Y) == pytest.approx(3 / 4)
    assert sc["specificity"](est, X, Y) == pytest.approx(5 / 6)
    assert sc["accuracy"](est, X, Y) == pytest.approx(0.8)
    # and with the positive class in column 1
    sc_n = make_cxr_scorers("normal")
    assert sc_n["roc_auc"](est, X, Y) == pytest.approx(18 / 24)
    assert sc_n["sensitivity"](est, X, Y) == pytest.approx(5 / 6)


def test_scorers_work_in_cross_validate_and_grid_search():
    X = (1 - S)[:, None]
    res = cross_validate(FixedScore(), X, Y, cv=2, scoring=make_cxr_scorers("covid"))
    for k in ("test_accuracy", "test_sensitivity", "test_specificity", "test_roc_auc"):
        assert len(res[k]) == 2 and np.all(np.isfinite(res[k]))
    gs = GridSearchCV(
        FixedScore(), {}, cv=2, scoring=make_cxr_scorers("covid"), refit="roc_auc"
    ).fit(X, Y)
    assert "mean_test_sensitivity" in gs.cv_results_


def _golden_inputs():
    import numpy as _np

    rng = _np.random.default_rng(7)
    n = 60
    y = _np.where(rng.random(n) < 0.4, "covid", "normal")
    s = _np.clip(rng.random(n) * 0.6 + (y == "covid") * 0.3, 0, 1)
    return y, s, _np.arange(n) // 2


def _plain(o):
    import numpy as _np

    if isinstance(o, dict):
        return {k: _plain(v) for k, v in o.items()}
    if isinstance(o, (list, tuple, _np.ndarray)):
        return [_plain(v) for v in o]
    if isinstance(o, _np.generic):
        return o.item()
    return o


def test_compute_metrics_matches_recorded_golden_values():
    """Output recorded before the metrics refactor; fixed seeds must give identical numbers."""
    import json
    from pathlib import Path

    from cxrkit.evaluation.metrics import compute_metrics

    golden = json.loads((Path(__file__).parent / "compute_metrics_golden.json").read_text())
    y, s, g = _golden_inputs()
    got = {
        "nogroups": compute_metrics(y, s, positive_label="covid", n_bootstraps=50, random_state=3),
        "groups": compute_metrics(
            y, s, positive_label="covid", groups=g, n_bootstraps=50, random_state=3
        ),
    }
    assert json.loads(json.dumps(_plain(got), sort_keys=True)) == golden

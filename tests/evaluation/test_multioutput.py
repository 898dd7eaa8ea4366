"""Multi-label and multi-class metrics: known values, undefined findings, NaN masking, CIs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import confusion_matrix, roc_auc_score

from cxrkit.errors import DataError
from cxrkit.evaluation import (
    compute_metrics,
    compute_multiclass_metrics,
    compute_multilabel_metrics,
)


def _multilabel(n: int = 240, k: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    Y = (rng.random((n, k)) < 0.4).astype(float)
    S = np.clip(0.35 * Y + 0.65 * rng.random((n, k)), 0, 1)
    groups = np.repeat(np.arange(n // 3), 3)
    return Y, S, groups


def _multiclass(n: int = 240, k: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    P = rng.dirichlet(np.ones(k), n)
    P[np.arange(n), y] += 0.6
    P /= P.sum(1, keepdims=True)
    return np.array(["covid", "normal", "pneumonia"])[y], P, np.repeat(np.arange(n // 3), 3)


def test_multilabel_point_values_match_sklearn():
    Y, S, g = _multilabel()
    m = compute_multilabel_metrics(Y, S, names=["a", "b", "c"], groups=g, n_bootstraps=50)
    for j, name in enumerate("abc"):
        assert m["findings"][name]["auc"]["value"] == pytest.approx(roc_auc_score(Y[:, j], S[:, j]))
        pred = S[:, j] >= 0.5
        sens = (pred & (Y[:, j] == 1)).sum() / (Y[:, j] == 1).sum()
        assert m["findings"][name]["sensitivity"]["value"] == pytest.approx(sens)
        assert m["findings"][name]["defined"] is True
    assert m["macro_auc"]["value"] == pytest.approx(roc_auc_score(Y, S, average="macro"))
    assert m["micro_auc"]["value"] == pytest.approx(roc_auc_score(Y, S, average="micro"))
    assert m["settings"]["n_groups"] == 80 and m["settings"]["resampling_unit"] == "patients"


def test_multilabel_finding_equals_binary_compute_metrics():
    Y, S, g = _multilabel()
    m = compute_multilabel_metrics(Y, S, names=["a", "b", "c"], groups=g, n_bootstraps=100)
    b = compute_metrics(Y[:, 1] == 1, S[:, 1], positive_label=True, groups=g, n_bootstraps=100)
    for key in ("auc", "sensitivity", "specificity", "ppv", "npv"):
        assert m["findings"]["b"][key]["ci_low"] == pytest.approx(b[key]["ci_low"])
        assert m["findings"]["b"][key]["ci_high"] == pytest.approx(b[key]["ci_high"])


def test_multilabel_cis_contain_point_and_are_seeded():
    Y, S, g = _multilabel()
    kw = dict(names=["a", "b", "c"], groups=g, n_bootstraps=200, random_state=3)
    m = compute_multilabel_metrics(Y, S, **kw)
    entries = [m["macro_auc"], m["micro_auc"]]
    entries += [m["findings"][f][k] for f in "abc" for k in ("auc", "sensitivity", "specificity")]
    for e in entries:
        assert e["ci_low"] <= e["value"] <= e["ci_high"]
        assert e["ci_high"] - e["ci_low"] > 0
    assert m["macro_auc"]["n_valid"] == 200
    again = compute_multilabel_metrics(Y, S, **kw)
    assert again["macro_auc"]["ci_low"] == m["macro_auc"]["ci_low"]
    other = compute_multilabel_metrics(Y, S, **{**kw, "random_state": 4})
    assert other["macro_auc"]["ci_low"] != m["macro_auc"]["ci_low"]


def test_patient_bootstrap_is_wider_than_image_bootstrap_for_clustered_data():
    rng = np.random.default_rng(1)
    n_pat, per = 60, 4
    y_pat = (rng.random((n_pat, 2)) < 0.5).astype(float)
    s_pat = np.clip(0.3 * y_pat + 0.7 * rng.random((n_pat, 2)), 0, 1)
    Y, S = np.repeat(y_pat, per, axis=0), np.repeat(s_pat, per, axis=0)
    g = np.repeat(np.arange(n_pat), per)
    kw = dict(names=["a", "b"], n_bootstraps=300)
    by_patient = compute_multilabel_metrics(Y, S, groups=g, **kw)["macro_auc"]
    by_image = compute_multilabel_metrics(Y, S, **kw)["macro_auc"]
    width = lambda e: e["ci_high"] - e["ci_low"]  # noqa: E731
    assert width(by_patient) > 1.5 * width(by_image)


def test_nan_labels_are_masked_per_finding():
    Y, S, g = _multilabel()
    Yn = Y.copy()
    Yn[:60, 0] = np.nan
    S_bad = S.copy()
    S_bad[:60, 0] = 1 - Y[:60, 0]  # wrong scores on the masked cells: must not count
    m = compute_multilabel_metrics(Yn, S_bad, names=["a", "b", "c"], groups=g, n_bootstraps=20)
    a = m["findings"]["a"]
    assert a["settings"]["n_images"] == 180
    assert a["auc"]["value"] == pytest.approx(roc_auc_score(Y[60:, 0], S[60:, 0]))
    assert m["findings"]["b"]["settings"]["n_images"] == 240
    assert m["settings"]["n_missing"] == {"a": 60, "b": 0, "c": 0}
    keep = ~np.isnan(Yn)
    assert m["micro_auc"]["value"] == pytest.approx(roc_auc_score(Yn[keep], S_bad[keep]))


def test_undefined_finding_is_reported_not_dropped():
    Y, S, g = _multilabel()
    Y[:, 1] = 0.0  # no positive
    Y[:, 2] = np.where(np.arange(len(Y)) % 2 == 0, 1.0, np.nan)  # no negative
    m = compute_multilabel_metrics(Y, S, names=["a", "b", "c"], groups=g, n_bootstraps=50)
    assert set(m["findings"]) == {"a", "b", "c"}
    assert m["findings"]["b"]["defined"] is False
    assert "no positive" in m["findings"]["b"]["reason"]
    assert "no negative" in m["undefined"]["c"]
    assert np.isnan(m["findings"]["b"]["auc"]["value"])
    assert m["findings"]["b"]["auc"]["method"].startswith("undefined: no positive")
    assert m["macro_auc"]["findings"] == ["a"]
    assert m["macro_auc"]["value"] == pytest.approx(roc_auc_score(Y[:, 0], S[:, 0]))
    assert np.isfinite(m["micro_auc"]["value"])


def test_every_finding_undefined_does_not_crash():
    Y = np.zeros((10, 2))
    m = compute_multilabel_metrics(Y, np.full((10, 2), 0.3), names=["a", "b"], n_bootstraps=10)
    assert np.isnan(m["macro_auc"]["value"]) and np.isnan(m["micro_auc"]["value"])
    assert set(m["undefined"]) == {"a", "b"}


@pytest.mark.parametrize(
    ("Y", "S", "names", "match"),
    [
        ([[1, -1], [0, 1]], [[0.1, 0.2], [0.3, 0.4]], ["a", "b"], "Uncertain labels"),
        ([[1, 0], [0, 1]], [[0.1, 0.2]], ["a", "b"], "shape"),
        ([[1, 0], [0, 1]], [[0.1, 0.2], [0.3, 0.4]], ["a"], "one name per column"),
        ([1, 0], [0.1, 0.2], ["a"], "2-D"),
    ],
)
def test_multilabel_bad_inputs(Y, S, names, match):
    with pytest.raises(DataError, match=match):
        compute_multilabel_metrics(Y, S, names=names, n_bootstraps=0)


def test_multiclass_known_values():
    y, P, g = _multiclass()
    classes = ["covid", "normal", "pneumonia"]
    m = compute_multiclass_metrics(y, P, classes=classes, groups=g, n_bootstraps=200)
    codes = np.searchsorted(classes, y)
    assert m["macro_auc"]["value"] == pytest.approx(roc_auc_score(codes, P, multi_class="ovr"))
    for j, c in enumerate(classes):
        assert m["classes"][c]["auc"]["value"] == pytest.approx(roc_auc_score(codes == j, P[:, j]))
        e = m["classes"][c]["auc"]
        assert e["ci_low"] <= e["value"] <= e["ci_high"]
    assert m["accuracy"]["value"] == pytest.approx((P.argmax(1) == codes).mean())
    acc = m["accuracy"]
    assert acc["ci_low"] <= acc["value"] <= acc["ci_high"]
    assert m["macro_auc"]["ci_low"] <= m["macro_auc"]["value"] <= m["macro_auc"]["ci_high"]
    expected = confusion_matrix(codes, P.argmax(1), labels=[0, 1, 2])
    assert m["confusion_matrix"]["matrix"] == expected.tolist()
    assert m["confusion_matrix"]["labels"] == classes


def test_multiclass_without_groups_uses_delong_and_absent_class_is_undefined():
    y, P, _ = _multiclass()
    y = np.where(y == "pneumonia", "normal", y)  # no pneumonia image left
    m = compute_multiclass_metrics(y, P, classes=["covid", "normal", "pneumonia"])
    assert m["classes"]["pneumonia"]["defined"] is False
    assert m["undefined"] == {"pneumonia": "no image of this class"}
    assert m["macro_auc"]["classes"] == ["covid", "normal"]
    assert "DeLong" in m["classes"]["covid"]["auc"]["method"]


def test_multiclass_bad_inputs():
    with pytest.raises(DataError, match="not in classes"):
        compute_multiclass_metrics(["a", "z"], [[0.5, 0.5], [0.5, 0.5]], classes=["a", "b"])
    with pytest.raises(DataError, match="expected"):
        compute_multiclass_metrics(["a", "b"], [[0.5, 0.5]], classes=["a", "b"])

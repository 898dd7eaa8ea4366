"""Multi-label CXRClassifier: one logit per finding, missing and uncertain labels masked."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from cxrkit import CXRClassifier, SnapshotEnsembleClassifier, load_model, save_model
from cxrkit.errors import DataError
from cxrkit.estimators import clear_feature_cache, feature_cache_stats
from cxrkit.estimators._targets import MaskedBCEWithLogitsLoss, infer_target

from ..conftest import make_findings

FINDINGS = ["effusion", "nodule", "opacity"]


def _labels_with_gaps(Y: np.ndarray, seed: int = 1) -> pd.DataFrame:
    """10 % of the labels missing (NaN) and 10 % uncertain (-1)."""
    rng = np.random.default_rng(seed)
    out = Y.copy()
    out[rng.random(Y.shape) < 0.1] = np.nan
    out[rng.random(Y.shape) < 0.1] = -1
    return pd.DataFrame(out, columns=FINDINGS)


def _clf(**kw):
    return CXRClassifier(
        "tiny_cnn", **{"input_size": 32, "max_epochs": 12, "lr": 3e-3, "random_state": 0, **kw}
    )


@pytest.mark.parametrize("uncertain", ["ignore", "ones", "zeros"])
def test_learns_each_finding_with_each_uncertainty_policy(uncertain):
    X, Y = make_findings(160)
    clf = _clf(uncertain=uncertain).fit(X[:120], _labels_with_gaps(Y[:120]))
    proba = clf.predict_proba(X[120:])
    assert proba.shape == (40, 3)
    assert clf.task_ == "multilabel-indicator"
    assert clf.labels_ == FINDINGS and clf.n_outputs_ == 3
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    aucs = [roc_auc_score(Y[120:, j], proba[:, j]) for j in range(3)]
    assert min(aucs) > 0.9, aucs
    pred = clf.predict(X[120:])
    assert pred.shape == (40, 3) and set(np.unique(pred)) <= {0, 1}


def test_uncertain_policy_decides_what_minus_one_means():
    Y = np.array([[1, 0], [0, 1], [-1, 1], [0, -1], [1, 0]], float)
    _, ignore = infer_target(Y, 5, uncertain="ignore")
    _, ones = infer_target(Y, 5, uncertain="ones")
    _, zeros = infer_target(Y, 5, uncertain="zeros")
    assert np.isnan(ignore[2, 0]) and np.isnan(ignore[3, 1])
    assert ones[2, 0] == 1 and ones[3, 1] == 1
    assert zeros[2, 0] == 0 and zeros[3, 1] == 0


def test_masked_loss_ignores_missing_labels():
    torch.manual_seed(0)
    logits = torch.randn(4, 3)
    y = torch.tensor([[1, 0, float("nan")], [0, 1, 1], [float("nan")] * 3, [1, 1, 0]])
    loss = MaskedBCEWithLogitsLoss()(logits, y)
    observed = ~torch.isnan(y)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits[observed], y[observed])
    torch.testing.assert_close(loss, expected)
    # changing the logit of a masked entry does not change the loss
    logits2 = logits.clone()
    logits2[0, 2] += 50.0
    logits2[2] -= 30.0
    torch.testing.assert_close(MaskedBCEWithLogitsLoss()(logits2, y), loss)
    # a batch without any observed label has zero loss, not NaN
    assert MaskedBCEWithLogitsLoss()(logits, torch.full((4, 3), float("nan"))).item() == 0.0


def test_balanced_class_weight_is_negatives_over_positives():
    Y = np.array([[1, 0], [0, 0], [0, 1], [0, np.nan], [1, 0]], float)
    target, _ = infer_target(Y, 5, class_weight="balanced")
    np.testing.assert_allclose(target.weight, [3 / 2, 3 / 1])
    target, _ = infer_target(pd.DataFrame(Y, columns=["a", "b"]), 5, class_weight={"a": 2, "b": 5})
    np.testing.assert_allclose(target.weight, [2, 5])
    with pytest.raises(DataError, match="class_weight has no weight for 'b'"):
        infer_target(pd.DataFrame(Y, columns=["a", "b"]), 5, class_weight={"a": 2})


def test_per_finding_thresholds():
    X, Y = make_findings(80)
    clf = _clf(max_epochs=6).fit(X, Y)
    proba = clf.predict_proba(X)
    t = [0.2, 0.5, 0.8]
    np.testing.assert_array_equal(clf.set_params(threshold=t).predict(X), proba >= t)
    with pytest.raises(DataError, match="threshold has 2 value"):
        clf.set_params(threshold=[0.1, 0.2]).predict(X)


def test_bad_multilabel_input_is_explained():
    X = np.zeros((4, 8, 8), np.uint8)
    all_missing = np.array([[1, np.nan], [0, np.nan], [1, np.nan], [0, np.nan]])
    with pytest.raises(DataError, match="Finding 'finding_1' has no observed label"):
        CXRClassifier("tiny_cnn", input_size=8, max_epochs=1).fit(X, all_missing)
    with pytest.raises(DataError, match="X has 4 images but y has 3 label rows"):
        CXRClassifier("tiny_cnn", input_size=8, max_epochs=1).fit(X, np.eye(3))


def test_snapshot_ensemble_and_feature_cache_on_multilabel():
    X, Y = make_findings(100)
    clear_feature_cache()
    base = CXRClassifier(
        "tiny_cnn", input_size=32, max_epochs=4, lr=3e-3, random_state=0, freeze="backbone"
    )
    ens = SnapshotEnsembleClassifier(base, policy="last", n_snapshots=3, interval=1)
    ens.fit(X, pd.DataFrame(Y, columns=FINDINGS))
    assert feature_cache_stats()["misses"] == len(X)  # one backbone pass per image, then heads
    members = ens.member_proba(X)
    assert feature_cache_stats()["hits"] >= len(X)  # prediction reads the cached features
    assert members.shape == (3, 100, 3)
    np.testing.assert_allclose(ens.predict_proba(X), members.mean(axis=0))
    assert ens.task_ == "multilabel-indicator" and ens.labels_ == FINDINGS
    assert ens.predict(X).shape == (100, 3)


def test_save_and_load_keep_the_findings(tmp_path):
    X, Y = make_findings(60)
    clf = _clf(max_epochs=3).fit(X, pd.DataFrame(Y, columns=FINDINGS))
    save_model(clf, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.task_ == "multilabel-indicator" and loaded.labels_ == FINDINGS
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), atol=1e-6)


def test_tta_averages_probabilities_per_finding():
    X, Y = make_findings(60)
    clf = _clf(max_epochs=3).fit(X, Y)
    plain = clf.predict_proba(X)
    mirrored = clf.predict_proba(X[:, :, ::-1])
    np.testing.assert_allclose(
        clf.set_params(tta="hflip").predict_proba(X), (plain + mirrored) / 2, atol=1e-6
    )

import numpy as np
from sklearn.linear_model import LogisticRegression

from cxrkit.evaluation.clinical import (
    calibration_intercept_slope,
    conformal_sets,
    net_benefit,
    select_threshold,
)


def test_threshold_ignores_test_labels():
    rng = np.random.default_rng(0)
    yv, sv = rng.integers(0, 2, 100), rng.random(100)
    t1 = select_threshold(yv, sv, "youden")
    yt = rng.integers(0, 2, 50)
    t2 = select_threshold(yv, sv, "youden")  # test labels are never an input
    assert t1 == t2 and 0 <= t1 <= 1
    del yt


def test_recalibration_moves_slope_toward_one():
    rng = np.random.default_rng(1)
    z = rng.normal(size=4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-z))).astype(int)
    over = 1 / (1 + np.exp(-3 * z))  # overconfident: slope 1/3
    _, b0 = calibration_intercept_slope(y[2000:], over[2000:])
    logit = np.log(over / (1 - over)).reshape(-1, 1)
    lr = LogisticRegression().fit(logit[:2000], y[:2000])
    _, b1 = calibration_intercept_slope(y[2000:], lr.predict_proba(logit[2000:])[:, 1])
    assert abs(b1 - 1) < abs(b0 - 1) and abs(b1 - 1) < 0.2


def test_conformal_coverage_20_seeds():
    alpha, cover = 0.1, {"lac": [], "aps": []}
    for seed in range(20):
        rng = np.random.default_rng(seed)
        logits = rng.normal(size=(600, 3)) * 2
        proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
        y = np.array([rng.choice(3, p=p) for p in proba])
        for m in cover:
            sets = conformal_sets(proba[:300], y[:300], proba[300:], alpha=alpha, method=m)
            cover[m].append(sets[np.arange(300), y[300:]].mean())
    for m in cover:
        assert np.mean(cover[m]) >= 1 - alpha - 0.02


def test_net_benefit_hand_computation():
    y = np.array([1, 1, 0, 0, 0])
    p = np.array([0.9, 0.4, 0.6, 0.2, 0.1])
    nb = net_benefit(y, p, [0.5])
    # at 0.5: TP=1, FP=1, n=5 -> 1/5 - 1/5 * 1 = 0
    assert nb["model"][0] == 0.0
    assert np.isclose(nb["treat_all"][0], 0.4 - 0.6)
    nb = net_benefit(y, p, [0.3])
    assert np.isclose(nb["model"][0], 2 / 5 - 1 / 5 * 0.3 / 0.7)

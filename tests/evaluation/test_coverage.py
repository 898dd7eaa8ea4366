"""Coverage of the confidence intervals on distributions with known truth."""

from __future__ import annotations

from statistics import NormalDist

import numpy as np

from cxrkit.evaluation.metrics import compute_metrics, delong_auc_ci

REPS = 200


def test_delong_interval_covers_the_true_auc_about_95_percent():
    # binormal scores, positives N(1, 1), negatives N(0, 1): AUC = Phi(1 / sqrt 2)
    true_auc = NormalDist().cdf(1 / np.sqrt(2))
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(60), np.zeros(60)]
    hits = 0
    for _ in range(REPS):
        s = rng.normal(y, 1.0)
        _, lo, hi = delong_auc_ci(y, s)
        hits += lo <= true_auc <= hi
    # binomial sd of the coverage at 200 repetitions is 1.5 points
    assert 0.90 <= hits / REPS <= 0.99


def test_bootstrap_interval_covers_the_true_sensitivity_about_95_percent():
    # sensitivity at threshold 0.5 for positive scores N(1, 1): P(Z > -0.5)
    true_sens = NormalDist().cdf(0.5)
    true_spec = NormalDist().cdf(0.5)
    rng = np.random.default_rng(1)
    y = np.r_[np.ones(100), np.zeros(100)]
    hits_sens = hits_spec = 0
    for r in range(REPS):
        s = rng.normal(y, 1.0)
        m = compute_metrics(y, s, positive_label=1, n_bootstraps=200, random_state=r)
        hits_sens += m["sensitivity"]["ci_low"] <= true_sens <= m["sensitivity"]["ci_high"]
        hits_spec += m["specificity"]["ci_low"] <= true_spec <= m["specificity"]["ci_high"]
    assert 0.88 <= hits_sens / REPS <= 0.99
    assert 0.88 <= hits_spec / REPS <= 0.99


def test_patient_bootstrap_keeps_coverage_on_clustered_data_where_image_bootstrap_fails():
    # 50 positive patients with 4 images each; a patient effect makes their images alike
    rng = np.random.default_rng(2)
    n_pat, per = 50, 4
    g = np.repeat(np.arange(2 * n_pat), per)
    y = np.repeat(np.r_[np.ones(n_pat), np.zeros(n_pat)], per)
    # score = y + patient effect (sd 0.9) + image noise (sd 0.45): total sd ~1.006
    true_sens = NormalDist().cdf(0.5 / np.sqrt(0.9**2 + 0.45**2))
    reps = 100  # two bootstraps per repetition; binomial sd of the coverage is ~2.2 points
    hits_pat = hits_img = 0
    for r in range(reps):
        s = y + np.repeat(rng.normal(0, 0.9, 2 * n_pat), per) + rng.normal(0, 0.45, len(y))
        mp = compute_metrics(y, s, positive_label=1, groups=g, n_bootstraps=200, random_state=r)
        mi = compute_metrics(y, s, positive_label=1, n_bootstraps=200, random_state=r)
        hits_pat += mp["sensitivity"]["ci_low"] <= true_sens <= mp["sensitivity"]["ci_high"]
        hits_img += mi["sensitivity"]["ci_low"] <= true_sens <= mi["sensitivity"]["ci_high"]
    assert 0.85 <= hits_pat / reps <= 0.99
    assert hits_img / reps < 0.85  # treating images as independent is overconfident

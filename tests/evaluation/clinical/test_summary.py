"""The clinical summaries: age bands, subgroup warnings, decision-curve band, conformal coverage."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxrkit.evaluation.clinical.summary import (
    age_band,
    calibration_summary,
    conformal_summary,
    decision_curve_summary,
    subgroup_summary,
)


def test_age_band_has_a_paediatric_band_and_unknown():
    assert [age_band(a) for a in (5, 17.9, 18, 45, 79, 80, None, "x")] == [
        "<18 (paediatric)",
        "<18 (paediatric)",
        "18-39",
        "40-59",
        "60-79",
        "80+",
        "unknown",
        "unknown",
    ]


def _scores(n: int, seed: int):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = np.clip(0.5 + (y - 0.5) * 0.6 + rng.normal(0, 0.2, n), 0.01, 0.99)
    return y, p, np.arange(n) // 2


def test_subgroup_whose_auc_is_worse_is_flagged():
    y, p, g = _scores(400, 0)
    bad = np.arange(400) < 120
    rng = np.random.default_rng(1)
    p[bad] = rng.random(bad.sum())  # no signal in this subgroup
    md = pd.DataFrame({"site": np.where(bad, "b", "a"), "age": [10] * 6 + [50] * 394})
    labels = np.where(y == 1, "pos", "neg")
    rows = subgroup_summary(labels, p, "pos", g, md, ["site", "age_band"], 0.85, n_bootstraps=100)
    by = {(r["column"], r["level"]): r for r in rows}
    assert by[("site", "b")]["status"] == "WARN" and "below" in by[("site", "b")]["note"]
    assert by[("site", "a")]["status"] == "PASS"
    assert by[("age_band", "<18 (paediatric)")]["note"].startswith("too small to say")
    assert by[("site", "b")]["auc_difference"]["ci_high"] < 0


def test_calibration_and_decision_curve_bands_contain_the_estimate():
    y, p, g = _scores(300, 2)
    c = calibration_summary(y, p, g, n_bootstraps=100)
    for k in ("ece", "brier", "slope"):
        assert c[k]["ci_low"] <= c[k]["value"] <= c[k]["ci_high"]
    assert sum(r["n"] for r in c["reliability"]) == 300
    d = decision_curve_summary(y, p, g, n_bootstraps=100)
    i = d["threshold"].index(0.3)
    assert d["model_ci_low"][i] <= d["model"][i] <= d["model_ci_high"][i]
    assert d["useful_range"] is not None


def test_conformal_summary_covers_at_least_the_target_on_average():
    rng = np.random.default_rng(3)
    cover = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        z = rng.normal(size=600)
        y = (rng.random(600) < 1 / (1 + np.exp(-2 * z))).astype(int)
        p1 = 1 / (1 + np.exp(-2 * z))
        proba = np.column_stack([1 - p1, p1])
        folds = [
            {
                "cal_proba": proba[:300],
                "cal_y": y[:300],
                "test_proba": proba[300:],
                "test_index": np.arange(300, 600),
            }
        ]
        out = conformal_summary(folds, y, None, alpha=0.1, n_bootstraps=20)
        cover.append(out["lac"]["coverage"]["value"])
        assert 1 <= out["aps"]["mean_set_size"] <= 2
    assert np.mean(cover) >= 0.9 - 0.02

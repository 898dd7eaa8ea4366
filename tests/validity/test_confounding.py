from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxrkit.validity import age_confounding, categorical_confounding, check_confounding, cramers_v


@pytest.mark.realdata
def test_cxr_dev_view_is_flagged(cxr_dev):
    _, md = cxr_dev
    res = {r.name: r for r in check_confounding(md)}
    view = res["confounding:view"]
    assert view.status == "WARN"
    assert view.numbers["table"]["AP Supine"] == {"covid": 118, "pneumonia": 8}
    assert view.numbers["top_level"] == "AP Supine"
    assert "'AP Supine' is 28% of covid (118 of 419) but 11% of pneumonia (8 of 74)" in view.summary
    assert res["confounding:source"].status == "PASS"  # a single source
    assert res["confounding:sex"].status == "PASS"
    assert res["confounding:age"].status == "PASS"


def test_balanced_variable_passes_and_source_per_class_fails():
    y = np.array(["a", "b"] * 50)
    balanced = np.array(["x", "x", "y", "y"] * 25)
    assert categorical_confounding(balanced, y, "view").status == "PASS"
    assert cramers_v(pd.crosstab(balanced, y)) == pytest.approx(0.0)
    source = np.where(y == "a", "hospital1", "hospital2")
    res = categorical_confounding(source, y, "source")
    assert res.status == "FAIL" and res.numbers["cramers_v"] == pytest.approx(1.0)


def test_pediatric_controls_are_flagged():
    rng = np.random.default_rng(0)
    y = np.array(["covid"] * 50 + ["normal"] * 50)
    adults = rng.integers(30, 80, 50)
    mixed = np.concatenate([rng.integers(1, 10, 20), rng.integers(30, 80, 30)])
    res = age_confounding(np.concatenate([adults, mixed]).astype(float), y)
    assert res.status == "WARN" and res.numbers["pediatric_classes"] == ["normal"]
    assert res.numbers["per_class"]["normal"]["pediatric"] == 20
    same = age_confounding(np.concatenate([adults, rng.integers(30, 80, 50)]).astype(float), y)
    assert same.status == "PASS"

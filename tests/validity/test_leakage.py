from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from cxrkit.errors import LeakageError
from cxrkit.validity import (
    GroupAwareCV,
    GuardResult,
    PatientLeakageWarning,
    check_train_test_leakage,
    format_guards,
    splitter_leakage,
    warn_if_splitter_leaks,
)


@pytest.fixture(scope="module")
def meta(shared_data):
    return pd.read_csv(shared_data / "cxr-dev" / "metadata.csv")


@pytest.mark.realdata
def test_stratified_kfold_leaks_on_cxr_dev(meta):
    assert (meta.groupby("patient_id").size() > 1).sum() == 118
    res = splitter_leakage(
        StratifiedKFold(5, shuffle=True, random_state=0),
        meta["image"],
        meta["label"],
        meta["patient_id"],
    )
    assert res.status == "FAIL"
    assert 50 < res.numbers["n_leaking_patients"] <= 118
    assert res.numbers["n_folds_with_leakage"] == 5


@pytest.mark.realdata
@pytest.mark.parametrize(
    "cv", [StratifiedGroupKFold(5, shuffle=True, random_state=0), GroupAwareCV(5, random_state=0)]
)
def test_grouped_splitters_do_not_leak_on_cxr_dev(meta, cv):
    res = splitter_leakage(cv, meta["image"], meta["label"], meta["patient_id"])
    assert res.status == "PASS"
    assert res.numbers["n_leaking_patients"] == 0
    assert res.numbers["n_patients"] == 301


@pytest.mark.realdata
def test_warning_names_number_of_leaking_patients(meta):
    cv = StratifiedKFold(5, shuffle=True, random_state=0)
    expected = splitter_leakage(cv, meta["image"], meta["label"], meta["patient_id"])
    n = expected.numbers["n_leaking_patients"]
    with pytest.warns(PatientLeakageWarning, match=rf"^{n} patient\(s\) leak across folds"):
        warn_if_splitter_leaks(cv, meta["image"], meta["label"], meta["patient_id"])


def test_no_warning_for_grouped_splitter_or_unknown_groups(recwarn):
    y = np.array([0, 1] * 20)
    g = np.repeat(np.arange(20), 2)
    assert warn_if_splitter_leaks(GroupAwareCV(4, random_state=0), y, y, g).status == "PASS"
    assert warn_if_splitter_leaks(StratifiedKFold(4), y, y, None) is None
    assert not [w for w in recwarn if issubclass(w.category, PatientLeakageWarning)]


def test_train_test_leakage_lists_first_ten_and_count():
    train = [f"p{i:02d}" for i in range(30)]
    test = [f"p{i:02d}" for i in range(15, 40)]
    msg = (
        r"^15 patient\(s\) have images in both the training and the test set \(15 of 25 test "
        r"images\): 'p15', 'p16', 'p17', 'p18', 'p19', 'p20', 'p21', 'p22', 'p23', 'p24' and "
        r"5 more\. A model evaluated this way is scored on patients it was trained on\."
    )
    with pytest.raises(LeakageError, match=msg):
        check_train_test_leakage(train, test)
    check_train_test_leakage(train[:10], test[10:])  # disjoint: no error


def test_group_aware_cv_is_sklearn_compatible():
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    y = np.array([0, 1] * 30)
    g = np.repeat(np.arange(20), 3)
    scores = cross_val_score(
        LogisticRegression(), X, y, groups=g, cv=GroupAwareCV(3, random_state=0)
    )
    assert len(scores) == 3
    assert GroupAwareCV(3).get_n_splits() == 3


def test_guard_result_and_table():
    r = GuardResult(
        "patient_leakage",
        "FAIL",
        "3 patients leak.",
        {"n": np.int64(3), "x": np.float64(0.5)},
        "Group by patient.",
    )
    d = r.to_dict()
    assert d == {
        "name": "patient_leakage",
        "status": "FAIL",
        "summary": "3 patients leak.",
        "numbers": {"n": 3, "x": 0.5},
        "advice": "Group by patient.",
    }
    assert type(d["numbers"]["n"]) is int
    text = format_guards([r, GuardResult("near_duplicates", "PASS", "None.")])
    assert "FAIL    patient_leakage" in text and "-> Group by patient." in text
    assert text.endswith("1 PASS, 0 WARN, 1 FAIL")
    with pytest.raises(ValueError, match=r"must be one of \('PASS', 'WARN', 'FAIL'\)\. Got 'OK'"):
        GuardResult("x", "OK", "s")  # type: ignore[arg-type]

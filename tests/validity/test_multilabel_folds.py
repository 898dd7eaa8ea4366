"""PatientMultilabelStratifiedKFold: grouped, stratified on every finding, NaN-tolerant."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import GroupKFold, cross_val_score
from sklearn.tree import DecisionTreeClassifier

from cxrkit.errors import ConfigurationError, DataError
from cxrkit.validity import PatientMultilabelStratifiedKFold, splitter_leakage
from cxrkit.validity.multilabel_folds import patient_label_matrix

#: Largest allowed gap between a finding's prevalence in a test fold and overall.
TOLERANCE = 0.05


def _patients(n_patients: int = 300, k: int = 4, seed: int = 0):
    """1-4 images per patient; findings of rather different prevalence, some NaN."""
    rng = np.random.default_rng(seed)
    prevalence = np.array([0.5, 0.3, 0.15, 0.08])[:k]
    per = rng.integers(1, 5, n_patients)
    groups = np.repeat(np.arange(n_patients), per)
    y_pat = (rng.random((n_patients, k)) < prevalence).astype(float)
    Y = y_pat[groups]
    Y[rng.random(Y.shape) < 0.2] = 0.0  # not every image of a patient shows the finding
    Y[rng.random(Y.shape) < 0.1] = np.nan
    return Y, np.array([f"p{g:04d}" for g in groups])


def _fold_prevalence_gaps(Y: np.ndarray, groups: np.ndarray, splits) -> np.ndarray:
    P, inv = patient_label_matrix(Y, groups)
    overall = P.mean(0)
    gaps = []
    for _, te in splits:
        gaps.append(np.abs(P[np.unique(inv[te])].mean(0) - overall))
    return np.array(gaps)


def test_no_patient_on_both_sides_and_every_image_tested_once():
    Y, groups = _patients()
    cv = PatientMultilabelStratifiedKFold(n_splits=5, random_state=0)
    splits = list(cv.split(np.zeros(len(Y)), Y, groups))
    assert len(splits) == cv.get_n_splits() == 5
    for tr, te in splits:
        assert set(groups[tr]).isdisjoint(groups[te])
        assert len(tr) + len(te) == len(Y)
    assert np.array_equal(np.sort(np.concatenate([te for _, te in splits])), np.arange(len(Y)))
    assert splitter_leakage(cv, np.zeros(len(Y)), Y, groups).status == "PASS"


def test_each_finding_prevalence_per_fold_within_tolerance():
    Y, groups = _patients()
    cv = PatientMultilabelStratifiedKFold(n_splits=5, random_state=1)
    gaps = _fold_prevalence_gaps(Y, groups, cv.split(np.zeros(len(Y)), Y, groups))
    assert gaps.max() <= TOLERANCE, gaps
    # images too (the patients carry them): observed-label prevalence per test fold
    for _, te in cv.split(np.zeros(len(Y)), Y, groups):
        assert np.all(np.abs(np.nanmean(Y[te], 0) - np.nanmean(Y, 0)) <= 2 * TOLERANCE)


def test_stratification_beats_plain_group_kfold():
    Y, groups = _patients(seed=3)
    ours = _fold_prevalence_gaps(
        Y, groups, PatientMultilabelStratifiedKFold(5, random_state=0).split(Y, Y, groups)
    )
    rng = np.random.default_rng(0)
    ids = np.unique(groups)
    shuffled = dict(zip(ids, rng.permutation(len(ids))))
    plain = _fold_prevalence_gaps(
        Y, groups, GroupKFold(5).split(Y, Y, np.array([shuffled[g] for g in groups]))
    )
    assert ours.mean() < plain.mean()


def test_nan_and_uncertain_count_as_not_positive_for_the_patient():
    Y = np.array([[np.nan, 1], [1, -1], [np.nan, np.nan], [0, -1]])
    P, inv = patient_label_matrix(Y, ["a", "a", "b", "b"])
    assert P.tolist() == [[True, True], [False, False]]
    assert inv.tolist() == [0, 0, 1, 1]


def test_reproducible_with_a_seed_even_without_shuffle_and_dataframe_input():
    Y, groups = _patients(n_patients=120)
    frame = pd.DataFrame(Y, columns=["a", "b", "c", "d"])
    for shuffle in (True, False):
        cv = PatientMultilabelStratifiedKFold(4, shuffle=shuffle, random_state=7)
        a = [te.tolist() for _, te in cv.split(Y, frame, groups)]
        b = [te.tolist() for _, te in cv.split(Y, Y, groups)]
        assert a == b
    seeds = {
        str(
            [
                te.tolist()
                for _, te in PatientMultilabelStratifiedKFold(4, random_state=s).split(Y, Y, groups)
            ]
        )
        for s in (0, 1)
    }
    assert len(seeds) == 2


def test_single_finding_and_sklearn_cross_val_score():
    Y, groups = _patients(n_patients=80)
    y1 = np.nan_to_num(Y[:, :1])
    cv = PatientMultilabelStratifiedKFold(3, random_state=0)
    gaps = _fold_prevalence_gaps(y1, groups, cv.split(y1, y1, groups))
    assert gaps.max() <= TOLERANCE
    X = np.random.default_rng(0).random((len(Y), 3))
    scores = cross_val_score(
        DecisionTreeClassifier(random_state=0), X, np.nan_to_num(Y), groups=groups, cv=cv
    )
    assert len(scores) == 3


def test_errors_say_what_to_pass():
    Y, groups = _patients(n_patients=10)
    with pytest.raises(DataError, match="needs groups"):
        next(PatientMultilabelStratifiedKFold(3).split(Y, Y))
    with pytest.raises(DataError, match="Cannot split 10 patient"):
        next(PatientMultilabelStratifiedKFold(11).split(Y, Y, groups))
    with pytest.raises(DataError, match="label rows"):
        next(PatientMultilabelStratifiedKFold(3).split(Y[:-1], Y, groups))
    with pytest.raises(ConfigurationError, match="n_splits"):
        PatientMultilabelStratifiedKFold(1)

"""The patient-grouped splitters give the reference answers, quickly at real scale."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import StratifiedGroupKFold

from cxrkit.validity import GroupAwareCV, holdout_split


def _reference_holdout(y: np.ndarray, groups: np.ndarray, size: float, seed: int) -> np.ndarray:
    """The per-patient loop holdout_split is defined by (validation indices)."""
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    target = {c: max(1, int(round(size * np.sum(y == c)))) for c in classes}
    uniq = np.unique(groups)
    rng.shuffle(uniq)
    counts = {c: 0 for c in classes}
    chosen = []
    for g in uniq:
        if all(counts[c] >= target[c] for c in classes):
            break
        labels, cnt = np.unique(y[groups == g], return_counts=True)
        if any(counts[c] < target[c] for c in labels):
            chosen.append(g)
            for c, k in zip(labels, cnt):
                counts[c] += int(k)
    return np.flatnonzero(np.isin(groups, chosen))


@pytest.mark.parametrize("seed", range(6))
def test_group_aware_cv_equals_stratified_group_kfold(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k = 400 + 300 * seed, 2 + seed % 3
    y = rng.choice(k, n, p=[0.6] + [0.4 / (k - 1)] * (k - 1))
    g = rng.integers(0, n // 3, n).astype(str)
    ours = [te.tolist() for _, te in GroupAwareCV(5, random_state=seed).split(y, y, g)]
    ref = [
        te.tolist()
        for _, te in StratifiedGroupKFold(5, shuffle=True, random_state=seed).split(y, y, g)
    ]
    assert ours == ref


@pytest.mark.parametrize("seed", range(4))
def test_holdout_split_equals_reference_loop(seed: int) -> None:
    rng = np.random.default_rng(seed)
    y = rng.choice(["covid", "pneumonia"], 900, p=[0.8, 0.2])
    g = rng.integers(0, 300, 900).astype(str)
    tr, va = holdout_split(y, g, 0.2, random_state=seed)
    assert va.tolist() == _reference_holdout(y, g, 0.2, seed).tolist()
    assert not set(g[tr]) & set(g[va])


def test_grouped_splits_of_100k_images_take_seconds() -> None:
    rng = np.random.default_rng(0)
    g = rng.integers(0, 30_000, 100_000)
    y = (rng.random(100_000) < 0.1).astype(int)
    folds = list(GroupAwareCV(5, random_state=0).split(y, y, g))  # would be ~30 s in Python
    assert sum(len(te) for _, te in folds) == 100_000
    tr, va = holdout_split(y, g, 0.2, random_state=0)
    assert len(tr) + len(va) == 100_000 and not np.intersect1d(g[tr], g[va]).size

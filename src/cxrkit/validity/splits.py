"""Patient-aware hold-out splits used inside estimators."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..errors import DataError

__all__ = ["holdout_split"]


def holdout_split(y: Any, groups: Any, size: float | int, *,
                  random_state: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (train, validation), stratified by ``y``.

    Parameters
    ----------
    y : array-like of shape (n,)
    groups : array-like of shape (n,) or None
        Patient ids. When given, all images of a patient fall on the same side.
    size : float in (0, 1) or int >= 1
        Fraction of each class, or number of images per class (the first paper
        held out 18 images per class), to put in the validation part.
    random_state : int or None

    Returns
    -------
    train_idx, valid_idx : ndarray of int
    """
    y = np.asarray(y)
    n = len(y)
    rng = np.random.default_rng(random_state)
    classes = np.unique(y)
    if isinstance(size, numbers.Integral) and not isinstance(size, bool) and size >= 1:
        target = {c: int(size) for c in classes}
    elif isinstance(size, numbers.Real) and 0 < size < 1:
        target = {c: max(1, int(round(size * np.sum(y == c)))) for c in classes}
    else:
        raise DataError(
            f"The validation size must be a float in (0, 1) or an int >= 1 (images per class). "
            f"Got {size!r} instead."
        )
    if groups is None:
        groups = np.arange(n)
    groups = np.asarray(groups)
    uniq = np.unique(groups)
    rng.shuffle(uniq)
    counts = {c: 0 for c in classes}
    valid_groups = []
    for g in uniq:
        members = y[groups == g]
        if all(counts[c] >= target[c] for c in classes):
            break
        labels, cnt = np.unique(members, return_counts=True)
        # Only take a patient if it helps a class that still needs images and
        # does not overfill another one by more than its own size.
        if any(counts[c] < target[c] for c in labels):
            valid_groups.append(g)
            for c, k in zip(labels, cnt):
                counts[c] += int(k)
    valid_mask = np.isin(groups, valid_groups)
    tr, va = np.flatnonzero(~valid_mask), np.flatnonzero(valid_mask)
    if len(tr) == 0 or len(np.unique(y[tr])) < len(classes):
        raise DataError(
            f"A validation split of {size!r} leaves too little training data ({len(tr)} images, "
            f"classes {list(np.unique(y[tr]))}); lower the validation size."
        )
    return tr, va

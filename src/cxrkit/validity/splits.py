"""Patient-aware hold-out splits used inside estimators."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..errors import DataError

__all__ = ["holdout_split"]


def holdout_split(
    y: Any, groups: Any, size: float | int, *, random_state: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
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
    uniq, g_inv = np.unique(groups, return_inverse=True)
    _, y_inv = np.unique(y, return_inverse=True)
    per_group = np.zeros((len(uniq), len(classes)), dtype=np.int64)
    np.add.at(per_group, (np.ravel(g_inv), np.ravel(y_inv)), 1)
    order = np.arange(len(uniq))
    rng.shuffle(order)  # the same permutation as shuffling the ids themselves
    want = np.array([target[c] for c in classes], dtype=np.int64)
    counts = np.zeros(len(classes), dtype=np.int64)
    chosen = np.zeros(len(uniq), dtype=bool)
    for gi in order:
        if (counts >= want).all():
            break
        row = per_group[gi]
        # Only take a patient if it helps a class that still needs images.
        if ((row > 0) & (counts < want)).any():
            chosen[gi] = True
            counts += row
    valid_mask = chosen[np.ravel(g_inv)]
    tr, va = np.flatnonzero(~valid_mask), np.flatnonzero(valid_mask)
    if len(tr) == 0 or len(np.unique(y[tr])) < len(classes):
        raise DataError(
            f"A validation split of {size!r} leaves too little training data ({len(tr)} images, "
            f"classes {list(np.unique(y[tr]))}); lower the validation size."
        )
    return tr, va

"""Patient leakage: no patient may appear on both sides of a split."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from ..errors import DataError, LeakageError
from ._folds import stratified_group_folds
from ._result import GuardResult

__all__ = [
    "check_train_test_leakage",
    "splitter_leakage",
    "warn_if_splitter_leaks",
    "GroupAwareCV",
    "PatientLeakageWarning",
]


class PatientLeakageWarning(UserWarning):
    """A cross-validation splitter puts the same patient in training and test folds."""


def _as_groups(groups: Any, name: str) -> np.ndarray:
    if groups is None:
        raise DataError(f"{name} is None; patient ids are needed to check for leakage.")
    if hasattr(groups, "to_numpy"):
        groups = groups.to_numpy()
    arr = np.asarray(groups)
    if arr.ndim != 1:
        raise DataError(f"{name} must be 1-D (one patient id per image); got shape {arr.shape}.")
    missing = pd.isna(arr)
    if missing.any():
        raise DataError(
            f"{name} has {int(missing.sum())} missing patient id(s) of {len(arr)}; give every "
            "image a patient id (use the image's own id when the patient is unknown)."
        )
    return arr.astype(str) if arr.dtype == object else arr


def _show(ids: Any, limit: int = 10) -> str:
    ids = sorted(ids, key=str)
    shown = ", ".join(repr(v.item() if hasattr(v, "item") else v) for v in ids[:limit])
    more = f" and {len(ids) - limit} more" if len(ids) > limit else ""
    return f"{shown}{more}"


def check_train_test_leakage(train_groups: Any, test_groups: Any) -> None:
    """Raise if any patient has images in both the training and the test set.

    Parameters
    ----------
    train_groups, test_groups : array-like of shape (n_train,), (n_test,)
        Patient ids of the training and test images.

    Raises
    ------
    LeakageError
        Listing the first 10 shared patient ids and how many there are.

    Examples
    --------
    >>> check_train_test_leakage(["a", "b"], ["c"])
    >>> check_train_test_leakage(["a", "b"], ["b", "c"])
    Traceback (most recent call last):
    ...
    cxrkit.errors.LeakageError: 1 patient(s) have images in both the training and the test set ...
    """
    tr = _as_groups(train_groups, "train_groups")
    te = _as_groups(test_groups, "test_groups")
    shared = np.intersect1d(tr, te)
    if len(shared):
        n_img = int(np.isin(te, shared).sum())
        raise LeakageError(
            f"{len(shared)} patient(s) have images in both the training and the test set "
            f"({n_img} of {len(te)} test images): {_show(shared)}. A model evaluated this way "
            "is scored on patients it was trained on. Split by patient (e.g. "
            "cxrkit.validity.GroupAwareCV or sklearn's StratifiedGroupKFold with "
            "groups=patient ids), or remove these patients from one side."
        )


def splitter_leakage(cv: Any, X: Any, y: Any, groups: Any) -> GuardResult:
    """Count patients that a cross-validation splitter puts on both sides of a fold.

    The splitter is run exactly as a protocol would run it
    (``cv.split(X, y, groups)``); splitters that ignore ``groups`` (``KFold``,
    ``StratifiedKFold``) leak whenever a patient has several images.

    Parameters
    ----------
    cv : scikit-learn splitter or iterable of (train, test) index pairs
    X : array-like of shape (n,) or (n, ...)
        Only its length is used by most splitters.
    y : array-like of shape (n,)
    groups : array-like of shape (n,)
        Patient ids.

    Returns
    -------
    GuardResult
        ``FAIL`` when any patient leaks, else ``PASS``. Numbers:
        ``n_leaking_patients`` (distinct, over all folds), ``n_patients``,
        ``n_folds``, ``n_folds_with_leakage``, ``max_leaking_patients_in_a_fold``,
        ``leaking_test_images`` (test images of leaking patients, summed over
        folds), ``example_patients`` (up to 10).
    """
    g = _as_groups(groups, "groups")
    if hasattr(cv, "split"):
        with warnings.catch_warnings():  # "groups parameter is ignored": that is the point
            warnings.filterwarnings("ignore", message=".*groups parameter is ignored.*")
            splits = list(cv.split(X, y, g))
    else:
        splits = list(cv)
    leaking: set[Any] = set()
    per_fold = []
    img = 0
    for tr, te in splits:
        shared = np.intersect1d(g[np.asarray(tr)], g[np.asarray(te)])
        per_fold.append(len(shared))
        leaking.update(shared.tolist())
        img += int(np.isin(g[np.asarray(te)], shared).sum())
    n_patients = len(np.unique(g))
    numbers = {
        "n_leaking_patients": len(leaking),
        "n_patients": n_patients,
        "n_folds": len(splits),
        "n_folds_with_leakage": int(sum(k > 0 for k in per_fold)),
        "max_leaking_patients_in_a_fold": int(max(per_fold, default=0)),
        "leaking_test_images": img,
        "example_patients": sorted(leaking, key=str)[:10],
    }
    name = type(cv).__name__
    if leaking:
        return GuardResult(
            "patient_leakage",
            "FAIL",
            f"{name} puts {len(leaking)} of {n_patients} patients in both training and test "
            f"folds ({numbers['n_folds_with_leakage']} of {len(splits)} folds affected; "
            f"{img} test images belong to patients seen in training).",
            numbers,
            "Use a grouped splitter (cxrkit.validity.GroupAwareCV, StratifiedGroupKFold, "
            "GroupKFold) and pass groups=patient ids; scores from this split are optimistic.",
        )
    return GuardResult(
        "patient_leakage",
        "PASS",
        f"{name}: no patient appears on both sides of any of the {len(splits)} folds "
        f"({n_patients} patients).",
        numbers,
    )


def warn_if_splitter_leaks(
    cv: Any, X: Any, y: Any, groups: Any | None, *, stacklevel: int = 2
) -> GuardResult | None:
    """Warn (``PatientLeakageWarning``, a ``UserWarning``) when ``cv`` leaks patients.

    Parameters
    ----------
    cv, X, y, groups
        As in :func:`splitter_leakage`. With ``groups=None`` nothing can be
        checked and ``None`` is returned.
    stacklevel : int, default=2
        Passed to :func:`warnings.warn`.

    Returns
    -------
    GuardResult or None
    """
    if groups is None:
        return None
    res = splitter_leakage(cv, X, y, groups)
    if res.status != "PASS":
        warnings.warn(
            f"{res.numbers['n_leaking_patients']} patient(s) leak across folds: {res.summary} "
            f"{res.advice}",
            PatientLeakageWarning,
            stacklevel=stacklevel,
        )
    return res


def _fast_folds_apply(y: np.ndarray, groups: np.ndarray, n_splits: int) -> bool:
    """Whether the compiled folds give exactly StratifiedGroupKFold's answer (and no warning)."""
    if y.ndim != 1 or len(y) != len(groups):
        return False
    _, counts = np.unique(y, return_counts=True)
    return 2 <= len(counts) <= 8 and counts.min() >= n_splits and len(np.unique(groups)) >= n_splits


class GroupAwareCV:
    """Stratified K-fold that keeps each patient's images in one fold.

    With ``groups`` it gives the folds of
    :class:`sklearn.model_selection.StratifiedGroupKFold` (computed by a compiled
    loop for up to 8 classes, so that 100,000s of patients take seconds);
    without (no patient ids known) it falls back to ``StratifiedKFold``. Every
    grouped split is verified: a patient on both sides raises ``LeakageError``.

    Parameters
    ----------
    n_splits : int, default=5
    shuffle : bool, default=True
    random_state : int or None, default=None

    Examples
    --------
    >>> import numpy as np
    >>> y = np.array([0, 1] * 10); g = np.repeat(np.arange(10), 2)
    >>> cv = GroupAwareCV(n_splits=5, random_state=0)
    >>> all(not set(g[tr]) & set(g[te]) for tr, te in cv.split(y, y, g))
    True
    """

    def __init__(
        self, n_splits: int = 5, *, shuffle: bool = True, random_state: int | None = None
    ) -> None:
        self.n_splits = n_splits
        self.shuffle = shuffle
        self.random_state = random_state

    def _inner(self, grouped: bool) -> Any:
        rs = self.random_state if self.shuffle else None
        if grouped:
            return StratifiedGroupKFold(self.n_splits, shuffle=self.shuffle, random_state=rs)
        return StratifiedKFold(self.n_splits, shuffle=self.shuffle, random_state=rs)

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Return the number of folds."""
        return int(self.n_splits)

    def split(self, X: Any, y: Any, groups: Any = None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train_idx, test_idx)``; patients never cross sides."""
        if groups is None:
            yield from self._inner(False).split(X, y)
            return
        g = _as_groups(groups, "groups")
        yy = np.asarray(y)
        if _fast_folds_apply(yy, g, self.n_splits):
            rs = self.random_state if self.shuffle else None
            splits = stratified_group_folds(
                yy, g, self.n_splits, shuffle=self.shuffle, random_state=rs
            )
        else:
            splits = self._inner(True).split(X, y, g)
        for tr, te in splits:
            check_train_test_leakage(g[tr], g[te])
            yield tr, te

    def __repr__(self) -> str:
        return (
            f"GroupAwareCV(n_splits={self.n_splits}, shuffle={self.shuffle}, "
            f"random_state={self.random_state})"
        )

"""Patient-grouped, multi-label stratified k-fold.

Every image of a patient falls in the same fold, and each finding's
prevalence is kept close to the same in every fold. The patients are
stratified, not the images: a patient's labels are aggregated (positive for a
finding when any of their images is), the patients are split by iterative
stratification (Sechidis, Tsoumakas & Vlahavas 2011, "On the stratification
of multi-label data", ECML PKDD; the implementation of the
``iterative-stratification`` package), and each image follows its patient.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator
from typing import Any

import numpy as np
from iterstrat.ml_stratifiers import IterativeStratification
from sklearn.model_selection import BaseCrossValidator
from sklearn.model_selection._split import GroupsConsumerMixin
from sklearn.utils import check_random_state

from ..errors import ConfigurationError, DataError

__all__ = ["PatientMultilabelStratifiedKFold", "patient_label_matrix"]


def patient_label_matrix(y: Any, groups: Any) -> tuple[np.ndarray, np.ndarray]:
    """Aggregate an image-level indicator matrix to one row per patient.

    Parameters
    ----------
    y : array-like of shape (n, k)
        1 (present), 0 (absent), -1 (uncertain) or NaN (missing) per image and finding.
    groups : array-like of shape (n,)
        Patient ids.

    Returns
    -------
    Y_patient : ndarray of bool, shape (n_patients, k)
        True where any image of the patient is positive (1) for the finding;
        missing and uncertain labels count as not positive.
    patient_of_image : ndarray of int, shape (n,)
        Row of ``Y_patient`` of each image.
    """
    try:
        Y = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(
            "y must be a numeric (images, findings) indicator matrix of 1, 0, -1 and NaN; "
            "found non-numeric values."
        ) from None
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.ndim != 2:
        raise DataError(f"y must be 2-D (images, findings); got shape {Y.shape}.")
    g = np.asarray(groups)
    if g.ndim != 1 or len(g) != len(Y):
        raise DataError(
            f"groups must hold one patient id per image ({len(Y)}); got shape {g.shape}."
        )
    _, inv = np.unique(g.astype(str) if g.dtype == object else g, return_inverse=True)
    inv = np.asarray(inv).ravel()
    P = np.zeros((int(inv.max()) + 1 if len(inv) else 0, Y.shape[1]), dtype=bool)
    np.logical_or.at(P, inv, Y == 1)
    return P, inv


class PatientMultilabelStratifiedKFold(GroupsConsumerMixin, BaseCrossValidator):
    """K-fold over patients, stratified on several findings at once.

    The multi-label counterpart of :class:`sklearn.model_selection.StratifiedGroupKFold`:
    no patient has images in both the training and the test part of a split,
    and every finding's share of positive patients is about the same in each
    fold (iterative stratification, Sechidis et al. 2011).

    Parameters
    ----------
    n_splits : int, default=5
        Number of folds (at least 2, at most the number of patients).
    shuffle : bool, default=True
        Shuffle the patients before stratifying (otherwise they are taken in
        the sorted order of their ids).
    random_state : int, RandomState or None, default=None
        Seed of the shuffle and of the random tie-breaks of the stratification
        (used even when ``shuffle=False``, so that an int gives reproducible folds).

    Notes
    -----
    A patient counts as positive for a finding when any of their images is
    labelled 1; missing (NaN) and uncertain (-1) labels count as not positive
    for the stratification only. Patients, not images, are balanced: with
    very unequal numbers of images per patient the image counts of the folds
    can differ more than those of a plain k-fold.

    Examples
    --------
    >>> import numpy as np
    >>> Y = np.array([[1, 0], [1, 0], [0, 1], [0, 1], [1, 1], [0, 0]] * 4)
    >>> groups = np.repeat(np.arange(12), 2)
    >>> cv = PatientMultilabelStratifiedKFold(n_splits=3, random_state=0)
    >>> splits = list(cv.split(np.zeros(len(Y)), Y, groups))
    >>> all(set(groups[tr]).isdisjoint(groups[te]) for tr, te in splits)
    True
    """

    n_splits: int
    shuffle: bool
    random_state: Any

    def __init__(self, n_splits: int = 5, shuffle: bool = True, random_state: Any = None) -> None:
        if not isinstance(n_splits, numbers.Integral) or isinstance(n_splits, bool):
            raise ConfigurationError(
                f"The 'n_splits' parameter must be an int >= 2. Got {n_splits!r} instead."
            )
        if n_splits < 2:
            raise ConfigurationError(
                f"The 'n_splits' parameter must be an int >= 2. Got {n_splits!r} instead."
            )
        self.n_splits = int(n_splits)
        self.shuffle = bool(shuffle)
        self.random_state = random_state

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Return the number of splits, ``n_splits``."""
        return self.n_splits

    def patient_folds(self, y: Any, groups: Any) -> np.ndarray:
        """Return the test fold (0..n_splits-1) of each image.

        Parameters
        ----------
        y : array-like of shape (n, k)
            Indicator matrix (1, 0, -1, NaN); a DataFrame works too.
        groups : array-like of shape (n,)
            Patient ids.
        """
        if groups is None:
            raise DataError(
                "PatientMultilabelStratifiedKFold needs groups (one patient id per image) so "
                "that no patient is on both sides of a split; pass groups=patient_ids."
            )
        if y is None:
            raise DataError(
                "PatientMultilabelStratifiedKFold needs y, the (images, findings) indicator "
                "matrix to stratify on."
            )
        P, inv = patient_label_matrix(y, groups)
        n_patients = len(P)
        if n_patients < self.n_splits:
            raise DataError(
                f"Cannot split {n_patients} patient(s) into n_splits={self.n_splits} folds; "
                "lower n_splits or add patients."
            )
        if P.shape[1] == 1:  # one finding: stratify on it and its complement
            P = np.column_stack([P[:, 0], ~P[:, 0]])
        rng = check_random_state(self.random_state)
        order = np.arange(n_patients)
        if self.shuffle:
            rng.shuffle(order)
        r = np.full(self.n_splits, 1.0 / self.n_splits)
        fold_in_order = IterativeStratification(labels=P[order], r=r, random_state=rng)
        fold_of_patient = np.empty(n_patients, dtype=np.int64)
        fold_of_patient[order] = np.asarray(fold_in_order, dtype=np.int64)
        return fold_of_patient[inv]

    def _iter_test_masks(
        self, X: Any = None, y: Any = None, groups: Any = None
    ) -> Iterator[np.ndarray]:
        fold = self.patient_folds(y, groups)
        for i in range(self.n_splits):
            yield fold == i

    def split(
        self, X: Any, y: Any = None, groups: Any = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train, test)`` image indices of each fold.

        Parameters
        ----------
        X : array-like of shape (n, ...)
            Images (only their number is used).
        y : array-like of shape (n, k)
            Indicator matrix of the findings (1, 0, -1, NaN).
        groups : array-like of shape (n,)
            Patient ids.
        """
        n = len(X)
        if y is not None and len(y) != n:
            raise DataError(f"X has {n} images but y has {len(y)} label rows; they must match.")
        fold = self.patient_folds(y, groups)
        idx = np.arange(n)
        for i in range(self.n_splits):
            test = fold == i
            yield idx[~test], idx[test]

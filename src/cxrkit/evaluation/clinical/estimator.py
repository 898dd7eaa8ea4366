"""A meta-estimator that recalibrates and picks its operating point on a patient-grouped inner split."""

from __future__ import annotations

from numbers import Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import StratifiedGroupKFold, StratifiedShuffleSplit
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ...errors import ConfigurationError, DataError
from .thresholds import select_threshold

__all__ = ["ClinicalClassifier", "check_threshold_rule"]

_RULES = ("youden", "f1")
_BOUNDED = ("sensitivity", "specificity")


def check_threshold_rule(rule: Any) -> str | float:
    """Return ``rule`` if it is a valid operating-point rule, else raise.

    Parameters
    ----------
    rule : str or float
        ``"youden"``, ``"f1"``, ``"sensitivity:0.95"``, ``"specificity:0.9"``
        or a number in [0, 1] (a fixed threshold).

    Returns
    -------
    str or float
    """
    if isinstance(rule, (int, float)) and not isinstance(rule, bool):
        if 0.0 <= float(rule) <= 1.0:
            return float(rule)
    elif isinstance(rule, str):
        try:
            return check_threshold_rule(float(rule))
        except (ValueError, ConfigurationError):
            pass
        kind, _, value = rule.partition(":")
        if rule in _RULES:
            return rule
        if kind in _BOUNDED:
            try:
                if 0.0 < float(value) <= 1.0:
                    return rule
            except ValueError:
                pass
    raise ConfigurationError(
        f"The operating-point rule {rule!r} is not valid; expected 'youden', 'f1', "
        "'sensitivity:X' or 'specificity:X' with X in (0, 1], or a number in [0, 1] "
        "(e.g. 'sensitivity:0.95' or 0.5)."
    )


class ClinicalClassifier(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """Recalibrate a binary classifier and fit its threshold on a patient-grouped inner split.

    ``fit(X, y, groups)`` splits the training data by patient, stratified by
    class (one fold of :class:`~sklearn.model_selection.StratifiedGroupKFold`
    with ``round(1 / inner_split)`` folds: about ``inner_split`` of the patients
    held out), fits a clone of ``estimator`` on the inner-training
    part, then fits the recalibrator
    (:class:`~sklearn.calibration.CalibratedClassifierCV` on the frozen inner
    model) and the threshold on the inner-validation part only. Test data is
    never seen by either. The estimator is **not** refitted on all the training data afterwards: the
    model kept is the one trained on the inner-training part, so that the
    recalibrator and threshold belong to the model they were fitted to (as
    ``CalibratedClassifierCV(FrozenEstimator(...))``). When ``calibration`` is ``None`` and ``threshold`` is a number, nothing
    needs validation data: no split is made and the estimator is fitted on all
    of it.

    Parameters
    ----------
    estimator : classifier
        Any scikit-learn classifier with ``predict_proba`` (a
        :class:`cxrkit.CXRClassifier`, an ensemble, a ``LogisticRegression``).
    calibration : {"sigmoid", "isotonic", "temperature"} or None, default=None
        Recalibration method (temperature scaling also for multi-class).
    threshold : str or float, default=0.5
        ``"youden"``, ``"f1"``, ``"sensitivity:0.95"``, ``"specificity:0.9"``
        or a fixed number.
    inner_split : float, default=0.25
        Fraction of the patients held out as inner-validation data.
    always_split : bool, default=False
        Make the inner split even when nothing is fitted on it, to keep its
        probabilities (``validation_proba_``) as calibration scores of
        split-conformal prediction sets.
    random_state : int, default=0
        Seed of the inner split.

    Attributes
    ----------
    estimator_ : classifier
        The fitted clone (on the inner-training part; on all the data when no split was needed).
    calibrator_ : CalibratedClassifierCV or None
        The recalibrator fitted on the inner-validation part.
    threshold_ : float
        Threshold on the (recalibrated) probability of ``classes_[1]``.
    classes_ : ndarray
        The labels, in ``predict_proba`` column order.
    inner_train_index_, inner_validation_index_ : ndarray
        Row indices of the inner split (``None`` when no split was needed).
    validation_proba_ : ndarray or None
        Recalibrated probabilities of the inner-validation part (the
        calibration scores of split-conformal sets).
    validation_y_ : ndarray or None
        Labels of the inner-validation part.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2)); y = (X[:, 0] > 0).astype(int)
    >>> clf = ClinicalClassifier(LogisticRegression(), calibration="sigmoid", threshold="youden")
    >>> clf.fit(X, y, groups=np.arange(200) // 2).predict_proba(X).shape
    (200, 2)
    """

    _parameter_constraints: dict[str, list[Any]] = {
        "estimator": [object],
        "calibration": [StrOptions({"sigmoid", "isotonic", "temperature"}), None],
        "threshold": [str, Interval(Real, 0, 1, closed="both")],
        "inner_split": [Interval(Real, 0, 1, closed="neither")],
        "always_split": ["boolean"],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        estimator: Any,
        *,
        calibration: str | None = None,
        threshold: str | float = 0.5,
        inner_split: float = 0.25,
        always_split: bool = False,
        random_state: int = 0,
    ) -> None:
        self.estimator = estimator
        self.calibration = calibration
        self.threshold = threshold
        self.inner_split = inner_split
        self.always_split = always_split
        self.random_state = random_state

    @property
    def needs_validation(self) -> bool:
        """Whether anything is fitted on inner-validation data."""
        return (
            self.always_split
            or self.calibration is not None
            or isinstance(check_threshold_rule(self.threshold), str)
        )

    def _inner_split(self, X: Any, y: np.ndarray, groups: Any) -> tuple[np.ndarray, np.ndarray]:
        """Row indices of the inner-training and inner-validation parts, split by patient."""
        if groups is None:
            splitter: Any = StratifiedShuffleSplit(
                n_splits=1, test_size=self.inner_split, random_state=self.random_state
            )
            tr, va = next(splitter.split(np.zeros(len(y)), y))
        else:
            # Stratified by class and grouped by patient: one fold of
            # round(1 / inner_split) holds out about inner_split of the patients.
            splitter = StratifiedGroupKFold(
                n_splits=max(2, round(1 / self.inner_split)),
                shuffle=True,
                random_state=self.random_state,
            )
            tr, va = next(splitter.split(np.zeros(len(y)), y, np.asarray(groups)))
        for part, name in ((tr, "inner-training"), (va, "inner-validation")):
            if len(np.unique(y[part])) < len(np.unique(y)):
                raise DataError(
                    f"ClinicalClassifier: the {name} part of the patient split "
                    f"(inner_split={self.inner_split}) lacks a class; {len(y)} images are too "
                    "few. Pass more data, another random_state or "
                    "calibration=None with a numeric threshold."
                )
        return tr, va

    def fit(self, X: Any, y: Any, groups: Any = None, **fit_params: Any) -> ClinicalClassifier:
        """Fit the estimator, then the recalibrator and threshold on held-out patients.

        Parameters
        ----------
        X : array-like
            Training inputs (images, paths or features).
        y : array-like of shape (n_samples,)
            Labels (two classes for a threshold rule).
        groups : array-like of shape (n_samples,), optional
            Patient ids; without them the inner split is by image (stratified).
        **fit_params
            Passed to the estimator's ``fit``.

        Returns
        -------
        self : ClinicalClassifier
        """
        self._validate_params()
        rule = check_threshold_rule(self.threshold)
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        if isinstance(rule, str) and len(self.classes_) != 2:
            raise DataError(
                f"ClinicalClassifier: threshold={rule!r} needs two classes; got "
                f"{list(self.classes_)}. Pass a numeric threshold."
            )
        self.calibrator_, self.validation_proba_, self.validation_y_ = None, None, None
        self.inner_train_index_ = self.inner_validation_index_ = None
        if not self.needs_validation:
            self.estimator_ = self._fit_one(X, y, groups, fit_params)
            self.threshold_ = float(rule)
            return self
        tr, va = self._inner_split(X, y, groups)
        self.inner_train_index_, self.inner_validation_index_ = tr, va
        g = None if groups is None else np.asarray(groups)
        inner = self._fit_one(X[tr], y[tr], None if g is None else g[tr], fit_params)
        if self.calibration is not None:
            # One "split" over all of it: the frozen model is not refitted, so its
            # predictions are computed once (no per-class minimum of a k-fold).
            whole = np.arange(len(va))
            self.calibrator_ = CalibratedClassifierCV(
                FrozenEstimator(inner), method=self.calibration, cv=[(whole, whole)]
            ).fit(X[va], y[va])
            proba = self.calibrator_.predict_proba(X[va])
        else:
            proba = inner.predict_proba(X[va])
        self.validation_proba_, self.validation_y_ = proba, y[va]
        self.threshold_ = (
            select_threshold((y[va] == self.classes_[1]).astype(int), proba[:, 1], rule)
            if isinstance(rule, str)
            else float(rule)
        )
        self.estimator_ = inner
        return self

    def _fit_one(self, X: Any, y: np.ndarray, groups: Any, fit_params: dict[str, Any]) -> Any:
        est = clone(self.estimator)
        if groups is not None and _accepts_groups(est):
            return est.fit(X, y, groups=groups, **fit_params)
        return est.fit(X, y, **fit_params)

    def predict_uncalibrated_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of the fitted estimator before recalibration."""
        check_is_fitted(self)
        return np.asarray(self.estimator_.predict_proba(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Recalibrated class probabilities, columns in ``classes_`` order."""
        check_is_fitted(self)
        if self.calibrator_ is None:
            return self.predict_uncalibrated_proba(X)
        return np.asarray(self.calibrator_.predict_proba(X))

    def predict(self, X: Any) -> np.ndarray:
        """Labels: ``classes_[1]`` where its probability is at least ``threshold_``."""
        proba = self.predict_proba(X)
        if len(self.classes_) != 2:
            return self.classes_[np.argmax(proba, axis=1)]
        return self.classes_[(proba[:, 1] >= self.threshold_).astype(int)]


def _accepts_groups(est: Any) -> bool:
    import inspect

    try:
        return "groups" in inspect.signature(est.fit).parameters
    except (TypeError, ValueError):
        return False

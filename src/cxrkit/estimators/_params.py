"""Declarative parameter validation, with scikit-learn's rules and messages.

Each estimator declares ``_parameter_constraints`` (the constraint vocabulary of
:mod:`sklearn.utils._param_validation`) and calls :func:`validate_params` once,
at the start of ``fit``. A violation raises :class:`~cxrkit.errors.ConfigurationError`
with scikit-learn's message, e.g. ``The 'n_snapshots' parameter of
SnapshotEnsembleClassifier must be an int in the range [1, inf). Got 0 instead.``
"""

from __future__ import annotations

from typing import Any

from sklearn.utils._param_validation import (
    InvalidParameterError,
    validate_parameter_constraints,
)

from ..errors import ConfigurationError

__all__ = ["validate_params"]


def validate_params(estimator: Any) -> None:
    """Check ``estimator.get_params(deep=False)`` against its ``_parameter_constraints``.

    Parameters
    ----------
    estimator : BaseEstimator
        An estimator with a ``_parameter_constraints`` table; parameters missing
        from the table (routed ``optimizer__*`` options) are not checked here.

    Raises
    ------
    ConfigurationError
        For the first parameter that satisfies none of its constraints.
    """
    try:
        validate_parameter_constraints(
            estimator._parameter_constraints,
            estimator.get_params(deep=False),
            caller_name=type(estimator).__name__,
        )
    except InvalidParameterError as exc:
        raise ConfigurationError(str(exc)) from None

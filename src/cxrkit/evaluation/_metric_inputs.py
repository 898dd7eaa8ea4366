"""Input checks shared by the metric functions."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from ..errors import ConfigurationError, DataError

__all__ = ["as_binary", "as_scores", "check_prevalence", "ratio"]


def as_binary(y_true: Any, positive_label: Any, *, name: str = "y_true") -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise DataError(f"{name} must be 1-D (one label per image); got shape {y.shape}.")
    is_pos = y == positive_label
    if not isinstance(is_pos, np.ndarray) or is_pos.shape != y.shape:
        raise DataError(f"Could not compare {name} with positive_label={positive_label!r}.")
    return is_pos.astype(bool)


def as_scores(y_score: Any, n: int) -> np.ndarray:
    s = np.asarray(y_score, dtype=np.float64)
    if s.ndim == 2 and s.shape[1] == 1:
        s = s.ravel()
    if s.ndim != 1:
        raise DataError(
            f"y_score must be 1-D (the probability of the positive label per image); got shape "
            f"{s.shape}. For predict_proba output pass the positive column, e.g. proba[:, 1]."
        )
    if len(s) != n:
        raise DataError(f"y_true has {n} labels but y_score has {len(s)} scores; they must match.")
    bad = ~np.isfinite(s)
    if bad.any():
        raise DataError(
            f"y_score contains {int(bad.sum())} NaN or infinite value(s); every image needs a "
            "finite score. Remove those images or fix the model output."
        )
    return s


def ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den > 0 else float("nan")


def check_prevalence(prevalence: float) -> float:
    if not isinstance(prevalence, numbers.Real) or not 0.0 < float(prevalence) < 1.0:
        raise ConfigurationError(
            f"The 'prevalence' parameter must be a float in the range (0, 1). Got {prevalence!r} "
            "instead (e.g. 0.0257 for 2.57%)."
        )
    return float(prevalence)

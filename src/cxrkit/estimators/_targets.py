"""The target step of :class:`CXRClassifier`: labels in, loss, probabilities out.

Everything that depends on the kind of target lives here, in three small
functions used by ``fit`` and prediction: :func:`encode_target` (the labels of
``y`` to what the loss reads), :data:`TARGET_CRITERION` (the loss on the
network's output) and :func:`proba_from_logits` (the network's output to
``predict_proba`` columns in ``classes_`` order). Today the target is binary:
one logit scoring ``classes_[1]``, binary cross-entropy, and the sigmoid.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit
from sklearn.preprocessing import LabelEncoder
from torch import nn

from ..errors import DataError

__all__ = [
    "TARGET_CRITERION",
    "encode_target",
    "labels_from_proba",
    "logit_of_mean_probability",
    "proba_from_logits",
]

#: Loss on the network's output: one logit per image, scoring ``classes_[1]``.
TARGET_CRITERION = nn.BCEWithLogitsLoss


def encode_target(y: Any, n: int) -> tuple[LabelEncoder, np.ndarray]:
    """Check ``y`` (one of two labels per image, ``n`` images) and encode it.

    Returns
    -------
    encoder : LabelEncoder
        Fitted on ``y``; ``encoder.classes_`` is the estimator's ``classes_``.
    y_encoded : ndarray of shape (n,), float32
        0 for ``classes_[0]``, 1 for ``classes_[1]`` (what the loss reads).
    """
    if y is None:
        raise DataError("CXRClassifier requires y to be passed, but the target y is None.")
    y = np.asarray(y)
    if y.ndim != 1:
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
        else:
            raise DataError(f"y should be a 1d array (one label per image); got shape {y.shape}.")
    if len(y) != n:
        raise DataError(f"X has {n} images but y has {len(y)} labels; they must match.")
    if y.dtype.kind == "f" and np.isnan(y).any():
        raise DataError(f"y contains {int(np.isnan(y).sum())} NaN label(s); remove those images.")
    if y.dtype == object and any(v is None or (isinstance(v, float) and np.isnan(v)) for v in y):
        raise DataError("y contains missing labels (None/NaN); remove those images.")
    encoder = LabelEncoder().fit(y)
    classes = encoder.classes_
    if len(classes) != 2:
        shown = [c.item() if hasattr(c, "item") else c for c in classes[:10]]
        kind = "multiclass" if len(classes) > 2 else "a single class"
        raise DataError(
            f"Only binary classification is supported. The type of the target is {kind}: "
            f"CXRClassifier needs exactly two classes in y; got {len(classes)} class(es): "
            f"{shown}. Select two labels (e.g. covid vs pneumonia) or train one classifier "
            "per class."
        )
    return encoder, encoder.transform(y).astype(np.float32)


def proba_from_logits(logits: np.ndarray) -> np.ndarray:
    """Return probabilities of shape ``(n, 2)``, columns in ``classes_`` order."""
    p1 = expit(logits)  # no overflow warning for large logits
    return np.column_stack([1.0 - p1, p1])


def labels_from_proba(proba: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Return the label with the larger probability (threshold 0.5)."""
    return classes[(proba[:, 1] >= 0.5).astype(int)]


def logit_of_mean_probability(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``logit((sigmoid(a) + sigmoid(b)) / 2)``, finite for any finite logits."""
    log_p = np.logaddexp(-np.logaddexp(0, -a), -np.logaddexp(0, -b))
    log_q = np.logaddexp(-np.logaddexp(0, a), -np.logaddexp(0, b))
    return log_p - log_q

"""The target step of :class:`CXRClassifier`: labels in, loss, probabilities out.

Everything that depends on the kind of target lives here. :func:`infer_target`
reads ``y`` the way :func:`sklearn.utils.multiclass.type_of_target` does and
returns a :class:`Target`, which then owns the four target-specific steps:
encoding the labels for the loss, the loss itself, the network's output to
``predict_proba`` columns, and probabilities to ``predict`` labels.

``"binary"``
    One logit scoring ``classes_[1]``, binary cross-entropy, the sigmoid;
    ``predict_proba`` has two columns.
``"multiclass"``
    ``k`` logits, softmax cross-entropy; ``predict_proba`` rows sum to 1.
``"multilabel-indicator"``
    ``k`` logits, one per finding, binary cross-entropy on the observed labels
    only (a missing label, NaN, is masked out of the loss, as torchxrayvision
    does); ``predict_proba`` holds ``k`` independent probabilities (the
    convention of :class:`sklearn.neural_network.MLPClassifier`). Uncertain
    labels (-1, as in CheXpert and MIMIC-CXR) follow ``uncertain``:
    ``"ignore"`` masks them, ``"ones"`` and ``"zeros"`` are U-Ones and U-Zeros
    (Irvin et al. 2019).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy.special import expit, softmax
from sklearn.preprocessing import LabelEncoder
from torch import nn

from ..errors import DataError

__all__ = [
    "TASKS",
    "MaskedBCEWithLogitsLoss",
    "Target",
    "SoftmaxCrossEntropyLoss",
    "infer_target",
    "logit_of_mean_probability",
]

TASKS = ("binary", "multiclass", "multilabel-indicator")
UNCERTAIN = ("ignore", "ones", "zeros")


class MaskedBCEWithLogitsLoss(nn.Module):
    """Binary cross-entropy over the observed entries of an ``(n, k)`` target.

    NaN targets are left out; the loss is the mean over the remaining entries
    (0 when a batch has none). ``pos_weight`` (one value per finding) weighs
    the positive term as in :class:`torch.nn.BCEWithLogitsLoss`.
    """

    pos_weight: torch.Tensor | None

    def __init__(self, pos_weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("pos_weight", pos_weight)

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        y = y.to(logits.dtype).reshape(logits.shape)
        observed = ~torch.isnan(y)
        losses = nn.functional.binary_cross_entropy_with_logits(
            logits,
            torch.where(observed, y, torch.zeros_like(y)),
            pos_weight=self.pos_weight,
            reduction="none",
        )
        n = observed.sum()
        return (losses * observed).sum() / n.clamp(min=1)


class SoftmaxCrossEntropyLoss(nn.Module):
    """Softmax cross-entropy on class indices delivered as floats (the datasets' dtype)."""

    weight: torch.Tensor | None

    def __init__(self, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.register_buffer("weight", weight)

    def forward(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits, y.long().reshape(-1), weight=self.weight)


@dataclass
class Target:
    """What a fitted classifier knows about its target.

    Attributes
    ----------
    task : {"binary", "multiclass", "multilabel-indicator"}
    classes : ndarray
        ``classes_``: the labels (binary, multiclass) or ``arange(k)`` (multilabel).
    labels : list of str
        The class labels as text, or the finding names (multilabel).
    weight : ndarray or None
        Per-class weights (multiclass) or positive weights per finding
        (binary: one, multilabel: ``k``), from ``class_weight``.
    """

    task: str
    classes: np.ndarray
    labels: list[str]
    weight: np.ndarray | None = field(default=None)

    @property
    def n_logits(self) -> int:
        """Outputs of the network: 1 for binary, else ``k``."""
        return 1 if self.task == "binary" else len(self.classes)

    @property
    def n_outputs(self) -> int:
        """``n_outputs_`` in scikit-learn's sense: ``k`` for multilabel, else 1."""
        return len(self.classes) if self.task == "multilabel-indicator" else 1

    def criterion(self) -> tuple[type[nn.Module], dict[str, Any]]:
        """Return the loss class on the network's output and its arguments (skorch's ``criterion`` and ``criterion__*``)."""
        cls: type[nn.Module] = {
            "binary": nn.BCEWithLogitsLoss,
            "multiclass": SoftmaxCrossEntropyLoss,
        }.get(self.task, MaskedBCEWithLogitsLoss)
        if self.weight is None:
            return cls, {}
        w = torch.as_tensor(self.weight, dtype=torch.float32)
        return cls, {"weight" if self.task == "multiclass" else "pos_weight": w}

    def proba(self, logits: np.ndarray) -> np.ndarray:
        """Return ``predict_proba`` from the network's output."""
        if self.task == "binary":
            p1 = expit(logits)  # no overflow warning for large logits
            return np.column_stack([1.0 - p1, p1])
        if self.task == "multiclass":
            return np.asarray(softmax(logits, axis=1))
        return np.asarray(expit(logits))

    def predict(self, proba: np.ndarray, threshold: Any = None) -> np.ndarray:
        """Return labels (binary, multiclass) or an ``(n, k)`` indicator matrix."""
        if self.task == "multiclass":
            return self.classes[np.argmax(proba, axis=1)]
        if self.task == "binary":
            t1 = 0.5 if threshold is None else float(np.asarray(threshold).reshape(-1)[0])
            return self.classes[(proba[:, 1] >= t1).astype(int)]
        t = np.asarray(0.5 if threshold is None else threshold, dtype=float)
        if t.ndim == 0:
            t = np.full(proba.shape[1], float(t))
        if t.shape != (proba.shape[1],):
            raise DataError(
                f"threshold has {t.size} value(s) but the classifier predicts "
                f"{proba.shape[1]} findings ({', '.join(self.labels)}); pass one number or "
                "one per finding."
            )
        return (proba >= t).astype(int)

    def merge_views(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Network output whose probabilities are the mean of those of ``a`` and ``b`` (test-time augmentation)."""
        if self.task == "multiclass":
            return np.log((self.proba(a) + self.proba(b)) / 2)
        return logit_of_mean_probability(a, b)

    def stratify_key(self, y_encoded: np.ndarray) -> np.ndarray:
        """Labels a stratified validation split keeps balanced (multilabel: the number of positive findings of each image)."""
        if self.task == "multilabel-indicator":
            return np.nansum(y_encoded, axis=1).astype(int)
        return y_encoded


def logit_of_mean_probability(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``logit((sigmoid(a) + sigmoid(b)) / 2)``, elementwise, finite for any finite logits."""
    log_p = np.logaddexp(-np.logaddexp(0, -a), -np.logaddexp(0, -b))
    log_q = np.logaddexp(-np.logaddexp(0, a), -np.logaddexp(0, b))
    return log_p - log_q


def _missing(y: np.ndarray) -> np.ndarray:
    if y.dtype.kind == "f":
        return np.isnan(y)
    if y.dtype == object:
        return np.array([v is None or (isinstance(v, float) and np.isnan(v)) for v in y])
    return np.zeros(len(y), bool)


def _shown(classes: np.ndarray) -> list[Any]:
    return [c.item() if hasattr(c, "item") else c for c in classes[:10]]


def infer_target(
    y: Any, n: int, *, uncertain: str = "ignore", class_weight: Any = None
) -> tuple[Target, np.ndarray]:
    """Check ``y`` (``n`` images) and return its :class:`Target` and the encoded labels.

    Returns
    -------
    target : Target
    y_encoded : ndarray of float32
        Binary: 0/1 per image; multiclass: the class index; multilabel:
        ``(n, k)`` with 0, 1 and NaN (masked).
    """
    if y is None:
        raise DataError("CXRClassifier requires y to be passed, but the target y is None.")
    names = [str(c) for c in y.columns] if hasattr(y, "columns") else None
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1 and names is None:
        y = y.ravel()
    if y.ndim == 2:
        if len(y) != n:
            raise DataError(f"X has {n} images but y has {len(y)} label rows; they must match.")
        return _multilabel(y, names, uncertain, class_weight)
    if y.ndim != 1:
        raise DataError(
            f"y should be a 1d array (one label per image) or a 2-D (images, findings) "
            f"indicator matrix; got shape {y.shape}."
        )
    if len(y) != n:
        raise DataError(f"X has {n} images but y has {len(y)} labels; they must match.")
    missing = _missing(y)
    if missing.any():
        what = "NaN label(s)" if y.dtype.kind == "f" else "missing labels (None/NaN)"
        raise DataError(
            f"y contains {int(missing.sum())} {what}; remove those images (a 2-D multi-label "
            "y may hold NaN for a missing finding)."
        )
    if y.dtype.kind == "f" and not np.all(np.mod(y, 1) == 0):
        raise DataError(
            "Unknown label type: continuous. CXRClassifier classifies; y must hold class labels "
            "(strings or integers), not continuous values."
        )
    encoder = LabelEncoder().fit(y)
    classes = encoder.classes_
    if len(classes) < 2:
        raise DataError(
            f"CXRClassifier needs at least two classes in y; got 1 class(es): "
            f"{_shown(classes)}. The type of the target is a single class."
        )
    task = "binary" if len(classes) == 2 else "multiclass"
    encoded = encoder.transform(y)
    weight = _class_weights(task, class_weight, classes, encoded)
    labels = [str(c.item() if hasattr(c, "item") else c) for c in classes]
    return Target(task, classes, labels, weight), encoded.astype(np.float32)


def _multilabel(
    y: np.ndarray, names: list[str] | None, uncertain: str, class_weight: Any
) -> tuple[Target, np.ndarray]:
    k = y.shape[1]
    try:
        yy = y.astype(np.float64)
    except (TypeError, ValueError):
        raise DataError(
            "A 2-D y is a multi-label indicator matrix: it must hold 1, 0, -1 (uncertain) or "
            "NaN (missing) in every cell; found non-numeric values."
        ) from None
    names = names or [f"finding_{j}" for j in range(k)]
    bad = ~np.isnan(yy) & ~np.isin(yy, (0.0, 1.0, -1.0))
    if bad.any():
        raise DataError(
            f"A 2-D y is a multi-label indicator matrix of 1, 0, -1 (uncertain) and NaN "
            f"(missing); found {int(bad.sum())} other value(s), e.g. {yy[bad][0]!r}."
        )
    if uncertain not in UNCERTAIN:
        raise DataError(f"uncertain must be one of {UNCERTAIN}; got {uncertain!r}.")
    fill = {"ignore": np.nan, "ones": 1.0, "zeros": 0.0}[uncertain]
    yy = np.where(yy == -1, fill, yy)
    for j, name in enumerate(names):
        col = yy[:, j][~np.isnan(yy[:, j])]
        if not len(col):
            raise DataError(
                f"Finding {name!r} has no observed label (all missing or uncertain under "
                f"uncertain={uncertain!r}); drop the column or choose another uncertain policy."
            )
        if len(np.unique(col)) < 2:
            raise DataError(
                f"Finding {name!r} has only {'positive' if col[0] else 'negative'} labels "
                f"({len(col)} observed); a classifier cannot learn it: drop the column."
            )
    classes = np.arange(k)
    weight = _class_weights("multilabel-indicator", class_weight, names, yy)
    return Target("multilabel-indicator", classes, names, weight), yy.astype(np.float32)


def _class_weights(
    task: str, class_weight: Any, classes: Sequence[Any] | np.ndarray, y: np.ndarray
) -> np.ndarray | None:
    """Loss weights from ``class_weight``.

    Multiclass: a weight per class (``"balanced"``: scikit-learn's
    ``n / (k * n_c)``). Binary and multilabel: the positive weight of the
    binary cross-entropy (``"balanced"``: ``n_negative / n_positive``; a binary
    mapping ``{neg: a, pos: b}`` gives ``b / a``; a multilabel mapping gives each
    finding's positive weight).
    """
    if class_weight is None:
        return None
    labels = list(classes)
    if task == "multiclass":
        counts = np.bincount(y.astype(int), minlength=len(labels)).astype(float)
        if class_weight == "balanced":
            return len(y) / (len(labels) * np.maximum(counts, 1))
        return np.array([float(_lookup(class_weight, c, labels)) for c in labels])
    cols = y.reshape(len(y), -1) if task == "multilabel-indicator" else y.reshape(-1, 1)
    if class_weight == "balanced":
        pos = np.nansum(cols == 1, axis=0).astype(float)
        neg = np.nansum(cols == 0, axis=0).astype(float)
        return neg / np.maximum(pos, 1)
    if task == "binary":
        w0, w1 = (float(_lookup(class_weight, c, labels)) for c in labels)
        return np.array([w1 / w0])
    return np.array([float(_lookup(class_weight, c, labels)) for c in labels])


def _lookup(mapping: Mapping[Any, Any], key: Any, labels: list[Any]) -> Any:
    for k in (key, str(key)):
        if k in mapping:
            return mapping[k]
    unknown = [k for k in mapping if k not in labels and k not in map(str, labels)]
    hint = f" Unknown key(s): {unknown}." if unknown else ""
    raise DataError(
        f"class_weight has no weight for {key!r}; it needs one for each of {labels} "
        f"(missing ones are not assumed to be 1).{hint}"
    )

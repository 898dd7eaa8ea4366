"""Source and shortcut probes, centre blackout, leave-one-source-out CV.

- **Source probe**: train the same pipeline to predict *where an image came
  from* instead of its label. A high AUC means the sources are easy to tell
  apart, so if the classes come from different sources the label can be learnt
  from the source (DeGrave et al. 2021).
- **Shortcut probe**: re-run the evaluation with the centre of every image
  blacked out (the lungs hidden). An AUC well above chance means the model can
  reach its result from outside the lungs: text markers, borders, devices
  (Maguolo & Nanni 2020).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import cross_val_predict

from ..errors import ConfigurationError, DataError
from ..transforms import CentreBlackout
from ._result import GuardResult

__all__ = [
    "CentreBlackout",
    "LeaveOneSourceOut",
    "source_probe",
    "shortcut_probe",
    "SOURCE_AUC_WARN",
    "SHORTCUT_AUC_WARN",
    "SHORTCUT_RETAINED_WARN",
]

SOURCE_AUC_WARN = 0.75
SHORTCUT_AUC_WARN = 0.70
#: Share of the whole-image AUC's distance from chance that, kept with the lungs
#: hidden, makes the shortcut probe warn.
SHORTCUT_RETAINED_WARN = 0.75


class LeaveOneSourceOut:
    """Cross-validation that tests on one source (hospital, dataset) at a time.

    Parameters
    ----------
    sources : array-like of shape (n,), optional
        The source of each image. When given, ``split`` ignores ``groups`` for
        choosing folds (so ``groups`` can stay patient ids) but checks that no
        patient appears in two sources' folds; when ``None``, the ``groups``
        passed to ``split`` are the sources.

    Examples
    --------
    >>> import numpy as np
    >>> cv = LeaveOneSourceOut()
    >>> [te.tolist() for _, te in cv.split(np.zeros(4), groups=["a", "b", "a", "c"])]
    [[0, 2], [1], [3]]
    """

    def __init__(self, sources: Any = None) -> None:
        self.sources = sources

    def _sources(self, n: int, groups: Any) -> np.ndarray:
        src = self.sources if self.sources is not None else groups
        if src is None:
            raise DataError(
                "LeaveOneSourceOut needs the source of each image: pass sources=... when "
                "creating it, or groups=sources to split()."
            )
        arr = np.asarray(src.to_numpy() if hasattr(src, "to_numpy") else src, dtype=object)
        if len(arr) != n:
            raise DataError(f"sources has {len(arr)} entries but X has {n} samples.")
        return arr.astype(str)

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:
        """Return the number of distinct sources."""
        if self.sources is not None:
            return len(np.unique(np.asarray(self.sources, dtype=object).astype(str)))
        if groups is None:
            raise DataError("LeaveOneSourceOut.get_n_splits needs groups=sources.")
        return len(np.unique(np.asarray(groups, dtype=object).astype(str)))

    def split(
        self, X: Any, y: Any = None, groups: Any = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train_idx, test_idx)``, one fold per source (in sorted order)."""
        n = len(X)
        src = self._sources(n, groups)
        levels = np.unique(src)
        if len(levels) < 2:
            raise DataError(
                f"LeaveOneSourceOut needs at least two sources; all {n} images come from "
                f"{levels[0] if len(levels) else 'nowhere'!r}."
            )
        for s in levels:
            te = np.flatnonzero(src == s)
            tr = np.flatnonzero(src != s)
            if self.sources is not None and groups is not None:
                from .leakage import check_train_test_leakage

                g = np.asarray(groups, dtype=object).astype(str)
                check_train_test_leakage(g[tr], g[te])
            yield tr, te

    def __repr__(self) -> str:
        return "LeaveOneSourceOut()" if self.sources is None else "LeaveOneSourceOut(sources=...)"


def _make(make_estimator: Any) -> Any:
    if hasattr(make_estimator, "fit"):
        return clone(make_estimator)
    if callable(make_estimator):
        return make_estimator()
    raise ConfigurationError(
        f"make_estimator must be an estimator or a callable returning one; got "
        f"{type(make_estimator).__name__}."
    )


def _oof_auc(
    est: Any, X: Any, y: np.ndarray, groups: Any, cv: Any, n_jobs: int | None = None
) -> float:
    proba = cross_val_predict(
        est, X, y, groups=groups, cv=cv, method="predict_proba", n_jobs=n_jobs
    )
    classes = np.unique(y)
    return float(roc_auc_score(y == classes[1], proba[:, 1]))


def source_probe(
    make_estimator: Callable[[], Any] | Any,
    X: Any,
    sources: Any,
    groups: Any = None,
    cv: Any = 5,
    *,
    max_sources: int = 3,
    warn_auc: float = SOURCE_AUC_WARN,
    n_jobs: int | None = None,
) -> GuardResult:
    """Probe whether the pipeline can tell where an image came from.

    The same estimator is cross-validated (``cross_val_predict``, grouped by
    patient when ``groups`` is given) to predict the source. With two sources
    the target is the source itself; with more, each of the ``max_sources``
    largest sources is probed one-vs-rest and the highest AUC is reported.

    Parameters
    ----------
    make_estimator : callable returning an estimator, or an estimator (cloned)
        The pipeline under evaluation, e.g. ``lambda: CXRClassifier(...)``.
    X : images as accepted by the estimator
    sources : array-like of shape (n,)
    groups : array-like of shape (n,), optional
        Patient ids, passed to the splitter.
    cv : int or splitter, default=5
        Use a grouped splitter (e.g. ``GroupAwareCV``) when ``groups`` is given.
    max_sources : int, default=3
    warn_auc : float, default=0.75
        AUC at or above which the result is ``WARN``.
    n_jobs : int, optional
        Folds fitted side by side, passed to ``cross_val_predict`` (joblib worker
        processes, or the active ``joblib.parallel_config`` backend). The result
        does not depend on it: each fold's estimator is seeded by its
        ``random_state``.

    Returns
    -------
    GuardResult
        ``source_probe``; numbers: ``auc`` (highest), ``auc_per_source``,
        ``n_sources``. A single source gives ``PASS`` without training.
    """
    src = np.asarray(
        sources.to_numpy() if hasattr(sources, "to_numpy") else sources, dtype=object
    ).astype(str)
    levels, counts = np.unique(src, return_counts=True)
    if len(levels) < 2:
        return GuardResult(
            "source_probe",
            "PASS",
            f"All images come from one source ({str(levels[0])!r}); nothing to probe.",
            {"n_sources": int(len(levels))},
        )
    order = levels[np.argsort(-counts)]
    probes = [order[0]] if len(levels) == 2 else list(order[:max_sources])
    aucs: dict[str, float] = {}
    for s in probes:
        target = np.where(src == s, "this_source", "other_source")
        aucs[str(s)] = round(_oof_auc(_make(make_estimator), X, target, groups, cv, n_jobs), 4)
    best = max(aucs, key=lambda k: abs(aucs[k] - 0.5))
    auc = aucs[best]
    numbers = {
        "auc": auc,
        "auc_per_source": aucs,
        "n_sources": int(len(levels)),
        "probed_source": best,
    }
    summary = (
        f"The pipeline predicts the image source ({best!r} vs the rest) with AUC "
        f"{auc:.2f} ({len(levels)} sources)."
    )
    if max(auc, 1 - auc) >= warn_auc:
        return GuardResult(
            "source_probe",
            "WARN",
            summary,
            numbers,
            "Sources are easy to tell apart. If the classes are not equally distributed over "
            "sources (see confounding:source), the model can learn the source instead of the "
            "disease: evaluate with LeaveOneSourceOut, and balance classes within each source.",
        )
    return GuardResult("source_probe", "PASS", summary, numbers)


def _with_blackout(est: Any, X: Any, blackout: CentreBlackout) -> tuple[Any, Any]:
    params = est.get_params(deep=False) if hasattr(est, "get_params") else {}
    if "transforms" in params:
        est.set_params(transforms=[*list(params["transforms"] or ()), blackout])
        return est, X
    arr = np.asarray(X)
    if arr.dtype.kind in "biuf" and arr.ndim == 3:
        return est, np.stack([blackout(im) for im in arr])
    raise ConfigurationError(
        f"shortcut_probe cannot black out the images: {type(est).__name__} has no 'transforms' "
        "parameter and X is not an (n, H, W) array. Use CXRClassifier, or pass images as an array."
    )


def shortcut_probe(
    make_estimator: Callable[[], Any] | Any,
    X: Any,
    y: Any,
    groups: Any = None,
    cv: Any = 5,
    fraction: float = 0.6,
    *,
    warn_auc: float = SHORTCUT_AUC_WARN,
    reference_auc: float | None = None,
    warn_retained: float = SHORTCUT_RETAINED_WARN,
    n_jobs: int | None = None,
) -> GuardResult:
    """Re-run the evaluation with the centre of every image blacked out.

    Parameters
    ----------
    make_estimator : callable returning an estimator, or an estimator (cloned)
        A ``CXRClassifier`` gets :class:`CentreBlackout` appended to its
        ``transforms`` (applied at fit and predict time); other estimators need
        ``X`` as an ``(n, H, W)`` array, which is blacked out directly.
    X : images
    y : array-like of shape (n,), two classes
    groups : array-like, optional
        Patient ids for the splitter.
    cv : int or splitter, default=5
    fraction : float, default=0.6
        Side of the hidden central square as a fraction of the image side.
    warn_auc : float, default=0.70
        AUC (of either orientation) at or above which the result is ``WARN``.
    reference_auc : float, optional
        The AUC the evaluation reached with whole images. A blacked-out AUC
        that keeps ``warn_retained`` or more of the reference's distance from
        chance (and is itself at least 0.1 from chance) is also a ``WARN``:
        hiding the lungs then barely changes what the model achieves, even if
        both are modest.
    warn_retained : float, default=0.75
    n_jobs : int, optional
        Folds fitted side by side, passed to ``cross_val_predict`` (joblib worker
        processes, or the active ``joblib.parallel_config`` backend). The result
        does not depend on it: each fold's estimator is seeded by its
        ``random_state``.

    Returns
    -------
    GuardResult
        ``shortcut_probe``; numbers: ``auc``, ``fraction`` and, with
        ``reference_auc``, ``auc_whole_images`` and ``retained`` (the share of
        the whole-image AUC's distance from chance kept without the lungs).
    """
    yy = np.asarray(y)
    if len(np.unique(yy)) != 2:
        raise DataError(f"shortcut_probe needs two classes in y; got {list(np.unique(yy))[:10]}.")
    blackout = CentreBlackout(fraction)
    est, Xb = _with_blackout(_make(make_estimator), X, blackout)
    auc = round(_oof_auc(est, Xb, yy, groups, cv, n_jobs), 4)
    numbers: dict[str, Any] = {"auc": auc, "fraction": fraction}
    summary = (
        f"With the central {fraction:.0%} x {fraction:.0%} of every image blacked out, "
        f"the pipeline still reaches AUC {auc:.2f}."
    )
    dev = abs(auc - 0.5)
    retained_flag = False
    if reference_auc is not None:
        ref_dev = abs(float(reference_auc) - 0.5)
        retained = dev / ref_dev if ref_dev > 0 else float("inf")
        numbers.update(
            {
                "auc_whole_images": round(float(reference_auc), 4),
                "retained": round(min(retained, 99.0), 3),
            }
        )
        summary += f" With whole images the evaluation reached AUC {reference_auc:.2f}"
        summary += (
            f", so hiding the lungs kept {min(retained, 9.99):.0%} of its distance from chance."
            if ref_dev >= 0.1
            else "."
        )
        retained_flag = ref_dev >= 0.1 and dev >= 0.1 and retained >= warn_retained
    if max(auc, 1 - auc) >= warn_auc or retained_flag:
        return GuardResult(
            "shortcut_probe",
            "WARN",
            summary,
            numbers,
            "The label can be predicted without the lungs: look for text markers, borders, "
            "devices or processing differences between classes (saliency maps help); crop or "
            "mask them, or use data where both classes come from the same sources.",
        )
    note = " Close to chance." if dev < 0.1 else f" Below the warning level ({warn_auc:.2f})."
    return GuardResult("shortcut_probe", "PASS", summary + note, numbers)

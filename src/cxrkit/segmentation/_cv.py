"""Patient-grouped cross-validation of a segmenter, with confidence intervals."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import GroupKFold

from ..errors import DataError
from ._estimator import LungSegmenter, read_images, read_masks
from ._masks import dice_iou

__all__ = ["cluster_bootstrap_mean", "cross_validate_segmenter"]


def cluster_bootstrap_mean(
    values: Any,
    groups: Any = None,
    *,
    n_bootstraps: int = 2000,
    confidence: float = 0.95,
    random_state: int | None = 0,
) -> tuple[float, float, float]:
    """Mean of ``values`` with a percentile bootstrap interval that resamples groups.

    With ``groups`` (patient ids) whole patients are drawn with replacement, so
    several images of one patient do not narrow the interval.

    >>> m, lo, hi = cluster_bootstrap_mean([0.9, 0.8, 1.0, 0.7], ["a", "a", "b", "c"])
    >>> round(m, 3), lo <= m <= hi
    (0.85, True)
    """
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        raise DataError("cluster_bootstrap_mean needs at least one value.")
    g = (
        np.arange(len(v))
        if groups is None
        else np.unique(np.asarray(groups).astype(str), return_inverse=True)[1]
    )
    if len(g) != len(v):
        raise DataError(f"groups has {len(g)} entries but values has {len(v)}.")
    sums = np.bincount(g, weights=v)
    counts = np.bincount(g).astype(float)
    rng = np.random.default_rng(random_state)
    idx = rng.integers(0, len(sums), (n_bootstraps, len(sums)))
    boot = sums[idx].sum(1) / counts[idx].sum(1)
    alpha = (1 - confidence) / 2
    lo, hi = np.quantile(boot, [alpha, 1 - alpha])
    return float(v.mean()), float(lo), float(hi)


def _entry(values: np.ndarray, groups: np.ndarray, seed: int | None) -> dict[str, float]:
    m, lo, hi = cluster_bootstrap_mean(values, groups, random_state=seed)
    return {
        "mean": round(m, 4),
        "ci_low": round(lo, 4),
        "ci_high": round(hi, 4),
        "median": round(float(np.median(values)), 4),
        "min": round(float(values.min()), 4),
    }


def cross_validate_segmenter(
    segmenter: LungSegmenter,
    X: Any,
    masks: Any,
    groups: Any,
    *,
    n_splits: int = 5,
    random_state: int | None = 0,
    progress: bool = False,
    keep_masks: bool = False,
) -> dict[str, Any]:
    """Patient-grouped k-fold Dice and IoU of a segmenter on held-out patients.

    Each fold trains a clone on the other folds' patients and scores its
    cleaned masks (:meth:`LungSegmenter.predict`) against the manual ones at the
    images' own resolution. Intervals are patient-level cluster bootstraps.

    Returns
    -------
    dict
        ``folds`` (per fold: ``dice``, ``iou`` with mean, CI, median, min;
        ``n_images``, ``n_patients``, ``fit_seconds``, ``n_implausible``),
        ``overall`` (all held-out images pooled), ``fold_mean`` (mean and standard
        deviation of the fold means), ``per_image`` (index, fold, dice, iou),
        ``total_seconds``; with ``keep_masks``, ``masks``: the held-out predicted
        masks in input order (not JSON-ready).
    """
    images, truth = read_images(X), read_masks(masks)
    g = np.asarray(groups).astype(str)
    if not len(images) == len(truth) == len(g):
        raise DataError(
            f"cross_validate_segmenter got {len(images)} images, {len(truth)} masks "
            f"and {len(g)} groups; pass one of each per image."
        )
    t0 = time.perf_counter()
    dice = np.full(len(images), np.nan)
    iou = np.full(len(images), np.nan)
    fold_of = np.full(len(images), -1)
    predicted: list[Any] = [None] * len(images)
    folds = []
    splitter = GroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    for k, (tr, te) in enumerate(splitter.split(np.zeros(len(images)), groups=g)):
        seg = clone(segmenter).fit([images[i] for i in tr], [truth[i] for i in tr], groups=g[tr])
        results = seg.segment([images[i] for i in te])
        for i, r in zip(te, results):
            dice[i], iou[i] = dice_iou(r.mask, truth[i])
            predicted[i] = r.mask if keep_masks else None
        fold_of[te] = k
        folds.append(
            {
                "fold": k,
                "n_images": int(len(te)),
                "n_patients": int(len(set(g[te]))),
                "dice": _entry(dice[te], g[te], random_state),
                "iou": _entry(iou[te], g[te], random_state),
                "fit_seconds": round(seg.fit_seconds_, 1),
                "n_implausible": int(sum(not r.plausible for r in results)),
            }
        )
        if progress:
            f = folds[-1]
            print(
                f"fold {k}: Dice {f['dice']['mean']:.3f} [{f['dice']['ci_low']:.3f}, "
                f"{f['dice']['ci_high']:.3f}]  IoU {f['iou']['mean']:.3f} "
                f"[{f['iou']['ci_low']:.3f}, {f['iou']['ci_high']:.3f}]  "
                f"({f['n_images']} images, {f['fit_seconds']:.0f} s)",
                flush=True,
            )
    fold_dice = np.array([f["dice"]["mean"] for f in folds])
    fold_iou = np.array([f["iou"]["mean"] for f in folds])
    out: dict[str, Any] = {
        "n_splits": n_splits,
        "n_images": len(images),
        "n_patients": int(len(set(g))),
        "folds": folds,
        "overall": {
            "dice": _entry(dice, g, random_state),
            "iou": _entry(iou, g, random_state),
            "n_implausible": int(sum(f["n_implausible"] for f in folds)),
        },
        "fold_mean": {
            "dice": round(float(fold_dice.mean()), 4),
            "dice_sd": round(float(fold_dice.std(ddof=1)), 4) if n_splits > 1 else 0.0,
            "iou": round(float(fold_iou.mean()), 4),
            "iou_sd": round(float(fold_iou.std(ddof=1)), 4) if n_splits > 1 else 0.0,
        },
        "per_image": [
            {
                "index": int(i),
                "fold": int(fold_of[i]),
                "dice": round(float(dice[i]), 4),
                "iou": round(float(iou[i]), 4),
            }
            for i in range(len(images))
        ],
        "total_seconds": round(time.perf_counter() - t0, 1),
    }
    if keep_masks:
        out["masks"] = predicted
    return out

"""Does a model look at the lungs? Two guards that need a lung segmenter.

- **outside_lungs_probe**: train the same pipeline on images whose lung fields
  are hidden (``lung_blackout``). If it still separates the classes (the
  lower end of the AUC's 95% interval above 0.6), the labels are predictable
  from outside the lungs: text, markers, devices, borders (DeGrave et al. 2021).
- **attribution_in_lungs**: for a fitted model, the share of each image's
  positive Grad-CAM mass that falls inside the lung fields, summarised per
  class with a patient-level interval and compared with the lungs' share of
  the image. Mostly outside the lungs is a WARN.

:func:`lung_guards` runs both where a segmenter is available (the protocols'
Validity section and ``metrics.json`` take its results as they are).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.model_selection import cross_val_predict

from ..errors import ConfigurationError, DataError
from ._lung_report import lung_guard_jobs
from ._result import GuardResult
from .probes import _make

__all__ = [
    "outside_lungs_probe",
    "attribution_in_lungs",
    "lung_guards",
    "lung_guard_jobs",
    "OUTSIDE_LUNGS_CI_WARN",
    "ATTRIBUTION_SHARE_WARN",
]

#: ``outside_lungs_probe`` warns when the lower end of the AUC interval exceeds this.
OUTSIDE_LUNGS_CI_WARN = 0.6
#: ``attribution_in_lungs`` warns when a class's mean in-lung share is below this.
ATTRIBUTION_SHARE_WARN = 0.5


def _resolve_segmenter(segmenter: Any) -> Any:
    from ..segmentation import LungSegmenter, default_segmenter, load_segmenter

    if segmenter is None:
        return default_segmenter()
    if isinstance(segmenter, LungSegmenter):
        return segmenter
    return load_segmenter(segmenter)


def _mask_stats_numbers(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {
        "masks_computed": after["misses"] - before["misses"],
        "implausible_masks": after["n_implausible"] - before["n_implausible"],
    }


def outside_lungs_probe(
    make_estimator: Callable[[], Any] | Any,
    X: Any,
    y: Any,
    groups: Any = None,
    cv: Any = 5,
    *,
    segmenter: Any = None,
    fill: str | float = "zero",
    warn_ci_low: float = OUTSIDE_LUNGS_CI_WARN,
    reference_auc: float | None = None,
    n_bootstraps: int = 1000,
    random_state: int | None = 0,
    n_jobs: int | None = None,
) -> GuardResult:
    """Cross-validate the pipeline on images with the lungs hidden.

    Parameters
    ----------
    make_estimator : callable returning an estimator, or an estimator (cloned)
        A ``CXRClassifier`` gets ``lung_blackout`` appended to its ``transforms``
        (at fit and predict time); other estimators need ``X`` as an
        ``(n, H, W)`` array, which is blacked out directly.
    X : images
    y : array-like of shape (n,), two classes
    groups : array-like, optional
        Patient ids: the splitter groups by them and the AUC interval is a
        patient-level cluster bootstrap.
    cv : int or splitter, default=5
    segmenter : LungSegmenter, folder or None
        ``None``: the folder in ``$CXRKIT_LUNG_SEGMENTER``.
    fill : {"zero", "median"} or float, default="zero"
    warn_ci_low : float, default=0.6
    reference_auc : float, optional
        The whole-image AUC, reported beside the probe's.
    n_bootstraps : int, default=1000
    random_state : int, default=0
    n_jobs : int, optional
        Folds fitted side by side (``cross_val_predict``).

    Returns
    -------
    GuardResult
        ``outside_lungs_probe``; numbers: ``auc``, ``ci_low``, ``ci_high``,
        ``ci_method``, ``n_images``, the masks computed and found implausible
        in this process, and ``auc_whole_images`` when given.
    """
    from ..evaluation.metrics import compute_metrics
    from ..segmentation import lung_mask_stats
    from ..transforms import LungMask

    yy = np.asarray(y).astype(str)
    classes = [str(c) for c in np.unique(yy)]
    if len(classes) != 2:
        raise DataError(f"outside_lungs_probe needs two classes in y; got {classes[:10]}.")
    hide = LungMask(segmenter=_resolve_segmenter(segmenter), fill=fill, keep="outside")
    est = _make(make_estimator)
    params = est.get_params(deep=False) if hasattr(est, "get_params") else {}
    before = lung_mask_stats()
    if "transforms" in params:
        est.set_params(transforms=[*list(params["transforms"] or ()), hide])
        Xh = X
    elif isinstance(X, np.ndarray) and X.dtype.kind in "biuf" and X.ndim == 3:
        Xh = np.stack([hide(np.asarray(im, np.float32)) for im in X])
    else:
        raise ConfigurationError(
            f"outside_lungs_probe cannot hide the lungs: {type(est).__name__} has no 'transforms' "
            "parameter and X is not an (n, H, W) array. Use CXRClassifier, or pass images as an array."
        )
    proba = cross_val_predict(
        est, Xh, yy, groups=groups, cv=cv, method="predict_proba", n_jobs=n_jobs
    )
    m = compute_metrics(
        yy,
        proba[:, 1],
        positive_label=classes[1],
        groups=groups,
        n_bootstraps=n_bootstraps,
        random_state=random_state,
    )["auc"]
    auc, lo, hi = float(m["value"]), float(m["ci_low"]), float(m["ci_high"])
    numbers: dict[str, Any] = {
        "auc": round(auc, 4),
        "ci_low": round(lo, 4),
        "ci_high": round(hi, 4),
        "ci_method": m.get("method"),
        "n_images": int(len(yy)),
        "positive_label": classes[1],
        **_mask_stats_numbers(before, lung_mask_stats()),
    }
    summary = (
        f"With the lung fields hidden, the pipeline separates {classes[1]!r} from "
        f"{classes[0]!r} with AUC {auc:.2f} [{lo:.2f}, {hi:.2f}]."
    )
    if reference_auc is not None:
        numbers["auc_whole_images"] = round(float(reference_auc), 4)
        summary += f" With whole images: AUC {reference_auc:.2f}."
    if lo > warn_ci_low:
        return GuardResult(
            "outside_lungs_probe",
            "WARN",
            summary,
            numbers,
            "The labels are predictable from outside the lungs (a shortcut: text, markers, "
            "devices, borders, source). Train and evaluate with transforms=['lung_crop'] or "
            "['lung_mask'], and check attribution_in_lungs.",
        )
    return GuardResult(
        "outside_lungs_probe",
        "PASS",
        summary + f" The interval's lower end is not above {warn_ci_low:.2f}.",
        numbers,
    )


def _mask_through(transforms: list[Any], img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Carry a lung mask through the classifier's transforms (geometry only)."""
    cur, m = img, mask
    for t in transforms:
        out = np.asarray(t(cur))
        if hasattr(t, "transform_mask"):
            m = t.transform_mask(cur, m)
        elif out.shape[-2:] != cur.shape[-2:]:
            raise ConfigurationError(
                f"attribution_in_lungs cannot follow the lung mask through transform {t!r}: it "
                "changes the image's size and has no transform_mask(img, mask) method. Add one, "
                "or evaluate a model without it."
            )
        cur = out if out.ndim == 2 else cur
    return m


def _class_summary(
    share: np.ndarray, area: np.ndarray, groups: np.ndarray | None, seed: int | None
) -> dict[str, Any]:
    from ..segmentation import cluster_bootstrap_mean

    ok = np.isfinite(share)
    g = None if groups is None else groups[ok]
    mean, lo, hi = cluster_bootstrap_mean(share[ok], g, random_state=seed)
    lung = float(area[ok].mean())
    return {
        "n": int(ok.sum()),
        "share_in_lungs": round(mean, 4),
        "ci_low": round(lo, 4),
        "ci_high": round(hi, 4),
        "lung_area_share": round(lung, 4),
        "enrichment": round(mean / lung, 3) if lung > 0 else None,
    }


def attribution_in_lungs(
    estimator: Any,
    X: Any,
    y: Any = None,
    groups: Any = None,
    *,
    segmenter: Any = None,
    target_layer: Any = None,
    warn_share: float = ATTRIBUTION_SHARE_WARN,
    batch_size: int = 32,
    random_state: int | None = 0,
) -> GuardResult:
    """Share of positive Grad-CAM mass inside the lungs, per class.

    Parameters
    ----------
    estimator : fitted CXRClassifier or SnapshotEnsembleClassifier
        An ensemble is explained through its ``estimator_``.
    X : images (paths or an (n, H, W) array)
    y : array-like, optional
        Labels to summarise by; without them one summary covers all images.
    groups : array-like, optional
        Patient ids for the cluster-bootstrap intervals.
    segmenter : LungSegmenter, folder or None
    target_layer : nn.Module, optional
        Passed to :func:`cxrkit.evaluation.gradcam`.
    warn_share : float, default=0.5
        WARN when any class's mean in-lung share is below it.
    batch_size : int, default=32

    Returns
    -------
    GuardResult
        ``attribution_in_lungs``; numbers: ``per_class`` (``n``,
        ``share_in_lungs`` with CI, ``lung_area_share``, ``enrichment``),
        ``overall``, ``skipped_implausible_mask``, ``skipped_empty_cam``.
        Images with an implausible mask or an all-zero Grad-CAM are left out
        of the summaries and counted.
    """
    base = _fitted_base(estimator)
    seg = _resolve_segmenter(segmenter)
    share, area, implausible, empty = _score_attributions(base, X, seg, target_layer, batch_size)
    n = len(share)
    per_class, overall = _summarise_shares(share, area, y, groups, random_state)
    if not per_class:
        raise DataError(
            f"attribution_in_lungs could not score any of {n} images "
            f"({implausible} implausible masks, {empty} empty Grad-CAMs)."
        )
    numbers = {
        "per_class": per_class,
        "overall": overall,
        "n_images": n,
        "skipped_implausible_mask": implausible,
        "skipped_empty_cam": empty,
        "warn_share": warn_share,
    }
    return _attribution_result(per_class, overall, numbers, n, implausible + empty, warn_share)


def _fitted_base(estimator: Any) -> Any:
    """Return the fitted CXRClassifier behind ``estimator`` (an ensemble's ``estimator_``)."""
    base = estimator.estimator_ if hasattr(estimator, "estimator_") else estimator
    if not hasattr(base, "module_"):
        raise ConfigurationError(
            f"attribution_in_lungs needs a fitted CXRClassifier; got {type(estimator).__name__} "
            "without a fitted network. Fit it first."
        )
    return base


def _score_attributions(
    base: Any, X: Any, seg: Any, target_layer: Any, batch_size: int
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Return per-image in-lung Grad-CAM share and lung area, plus the skip counts.

    Images that are not scored (implausible mask, all-zero Grad-CAM) keep NaN.
    """
    from ..estimators import as_image_source
    from ..evaluation import gradcam
    from ..segmentation import get_mask_cache
    from ..transforms import resolve_transforms

    src = as_image_source(X)
    transforms = resolve_transforms(base.transforms)
    size = base.preprocessing_.input_size
    n = len(src)
    share, area = np.full(n, np.nan), np.full(n, np.nan)
    implausible = empty = 0
    start = 0
    for batch in base.iter_batches(src, batch_size):
        cams = gradcam(base.module_, batch.to(base.device_), target_layer)
        for j, cam in enumerate(cams):
            img = src.load(start + j)
            result, _ = get_mask_cache().lookup(seg, img)
            if not result.plausible:
                implausible += 1
                continue
            m = _mask_through(transforms, img, result.mask)
            m = resize_mask(m, size)
            total = float(cam.sum())
            if total <= 0:
                empty += 1
                continue
            share[start + j] = float((cam * m).sum()) / total
            area[start + j] = float(m.mean())
        start += len(cams)
    return share, area, implausible, empty


def _summarise_shares(
    share: np.ndarray, area: np.ndarray, y: Any, groups: Any, random_state: int | None
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Return the per-class summaries and the overall one (``None`` when nothing was scored)."""
    n = len(share)
    labels = np.asarray(y).astype(str) if y is not None else np.full(n, "all")
    g = np.asarray(groups).astype(str) if groups is not None else None
    per_class: dict[str, Any] = {}
    for label in np.unique(labels):
        sel = (labels == label) & np.isfinite(share)
        if sel.any():
            per_class[str(label)] = _class_summary(
                share[sel], area[sel], None if g is None else g[sel], random_state
            )
    if not per_class:
        return per_class, None
    fin = np.isfinite(share)
    overall = _class_summary(share[fin], area[fin], None if g is None else g[fin], random_state)
    return per_class, overall


def _attribution_result(
    per_class: dict[str, Any],
    overall: Any,
    numbers: dict[str, Any],
    n: int,
    n_skipped: int,
    warn_share: float,
) -> GuardResult:
    """Build the PASS/WARN result of :func:`attribution_in_lungs`."""
    parts = [
        f"{k}: {v['share_in_lungs']:.0%} [{v['ci_low']:.0%}, {v['ci_high']:.0%}]"
        for k, v in per_class.items()
    ]
    summary = (
        f"Share of positive Grad-CAM mass inside the lungs ({'; '.join(parts)}); the lungs "
        f"cover {overall['lung_area_share']:.0%} of the input."
    )
    if n_skipped:
        summary += f" {n_skipped} of {n} images not scored (see numbers)."
    low = [k for k, v in per_class.items() if v["share_in_lungs"] < warn_share]
    if low:
        return GuardResult(
            "attribution_in_lungs",
            "WARN",
            summary,
            numbers,
            f"The model's evidence for {', '.join(map(repr, low))} lies mostly outside the lung "
            "fields: look at Grad-CAM overlays for text, markers or borders, and retrain with "
            "transforms=['lung_crop'] or ['lung_mask'].",
        )
    return GuardResult("attribution_in_lungs", "PASS", summary, numbers)


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """Return a boolean mask resized to ``size x size`` (bilinear, then > 0.5)."""
    from ..io import resize_image

    return resize_image(np.asarray(mask, np.float32), size, "bilinear") > 0.5


def lung_guards(
    make_estimator: Any,
    fitted: Any,
    X: Any,
    y: Any,
    groups: Any = None,
    cv: Any = 5,
    *,
    segmenter: Any = None,
    reference_auc: float | None = None,
    n_jobs: int | None = None,
    enabled: bool = True,
) -> list[GuardResult]:
    """Both lung guards, or none when switched off or no segmenter is available.

    ``segmenter=None`` uses ``$CXRKIT_LUNG_SEGMENTER`` when it is set; without
    it the list is empty (the guards are on by default where a segmenter is
    available). ``fitted`` (may be ``None``) is the model whose Grad-CAM is
    scored on ``X``; ``make_estimator`` is re-trained for the probe.
    """
    from ..segmentation import default_segmenter

    if not enabled:
        return []
    seg = segmenter if segmenter is not None else default_segmenter(required=False)
    if seg is None:
        return []
    seg = _resolve_segmenter(seg)
    out = [
        outside_lungs_probe(
            make_estimator,
            X,
            y,
            groups,
            cv,
            segmenter=seg,
            reference_auc=reference_auc,
            n_jobs=n_jobs,
        )
    ]
    if fitted is not None:
        out.append(attribution_in_lungs(fitted, X, y, groups, segmenter=seg))
    return out

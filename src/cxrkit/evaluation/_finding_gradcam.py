"""Grad-CAM for one finding (or class) of a multi-output model, as a report section.

A multi-label network has one logit per finding (a multi-class one, one per
class); :func:`cxrkit.evaluation.gradcam` with ``output=j`` explains logit
``j``. :func:`finding_gradcam_section` picks a few true/false positives and
negatives of that finding among the held-out images of one fold (at the
finding's threshold, images whose label for it is missing left out), draws
their overlays and returns a :class:`~cxrkit.evaluation.ReportSection`.
"""

from __future__ import annotations

import base64
import html
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigurationError
from .results import ReportSection

__all__ = ["finding_gradcam_entries", "finding_gradcam_section", "gradcam_overlays"]


def gradcam_overlays(
    model: Any,
    X: Any,
    chosen: dict[str, list[int]],
    labels: Any,
    scores: np.ndarray,
    *,
    output: int | None = None,
) -> list[dict[str, Any]]:
    """Grad-CAM overlay entries of the images ``chosen`` per kind (``"TP"``, ``"FP"``, ...).

    Parameters
    ----------
    model : CXRClassifier or SnapshotEnsembleClassifier
        A fitted model (an ensemble's network is explained at its last epoch).
    X : array of images or paths
    chosen : dict of str to list of int
        Image indices per kind, in the order they are shown.
    labels, scores : array-like of shape (n,)
        Shown with each image.
    output : int, optional
        The output to explain (:func:`~cxrkit.evaluation.gradcam`).

    Returns
    -------
    list of dict
        ``id``, ``label``, ``score``, ``kind``, ``image`` (``[0, 1]``) and
        ``heatmap`` per image.
    """
    from ..estimators import as_image_source
    from .gradcam import gradcam

    base = model.estimator_ if hasattr(model, "estimator_") else model
    prep = base.preprocessing_
    out: list[dict[str, Any]] = []
    for kind, idx in chosen.items():
        if not idx:
            continue
        batch = next(base.iter_batches(as_image_source(X[np.asarray(idx)]), batch_size=len(idx)))
        maps = gradcam(base.module_, batch.to(base.device_), output=output)
        for j, i in enumerate(idx):
            img = batch[j, 0].numpy() * prep.std[0] + prep.mean[0]
            out.append(
                {
                    "id": str(X[i]) if X.dtype == object else f"image {i}",
                    "label": str(labels[i]),
                    "score": float(scores[i]),
                    "kind": kind,
                    "image": np.clip(img, 0, 1),
                    "heatmap": maps[j],
                }
            )
    return out


def finding_gradcam_entries(
    model: Any,
    X: Any,
    truth: np.ndarray,
    scores: np.ndarray,
    output: int,
    pool: np.ndarray,
    *,
    threshold: float = 0.5,
    per_kind: int = 2,
) -> list[dict[str, Any]]:
    """Grad-CAM overlays of output ``output`` for up to ``per_kind`` TP, FP, TN and FN images.

    ``truth`` holds the finding's 1/0 labels (NaN: missing, left out) and
    ``scores`` its out-of-fold probabilities; the candidates are ``pool`` (e.g.
    the test fold of ``model``), the most confident of each kind first.
    """
    observed = ~np.isnan(truth)
    pred, pos = scores >= threshold, truth == 1
    kinds = {
        "TP": observed & pred & pos,
        "FP": observed & pred & ~pos,
        "TN": observed & ~pred & ~pos,
        "FN": observed & ~pred & pos,
    }
    chosen = {
        kind: sorted((int(i) for i in pool if mask[i]), key=lambda i: -abs(scores[i] - threshold))[
            :per_kind
        ]
        for kind, mask in kinds.items()
    }
    labels = np.where(observed, np.nan_to_num(truth).astype(int).astype(str), "")
    return gradcam_overlays(model, X, chosen, labels, scores, output=output)


def finding_gradcam_section(
    model: Any,
    X: Any,
    truth: np.ndarray,
    scores: np.ndarray,
    names: list[str],
    finding: str,
    pool: np.ndarray,
    *,
    threshold: float = 0.5,
    per_kind: int = 2,
) -> ReportSection:
    """Return the "Grad-CAM" report section for ``finding``.

    ``truth`` and ``scores`` are ``(n, k)``, in the order of ``names`` (the
    model's outputs).

    Raises
    ------
    ConfigurationError
        When ``finding`` is not one of ``names``.
    """
    from ._figures import plot_gradcam_entries

    if finding not in names:
        raise ConfigurationError(
            f"gradcam_finding={finding!r} is not one of the findings {names}; pick one of them."
        )
    j = names.index(finding)
    entries = finding_gradcam_entries(
        model,
        X,
        np.asarray(truth, dtype=float)[:, j],
        np.asarray(scores, dtype=float)[:, j],
        j,
        pool,
        threshold=threshold,
        per_kind=per_kind,
    )
    key = "gradcam-finding"
    data = {
        "finding": finding,
        "threshold": threshold,
        "images": [{k: v for k, v in e.items() if k not in ("image", "heatmap")} for e in entries],
    }
    if not entries:
        return ReportSection(
            key,
            f"Grad-CAM: {finding}",
            html=f"<p>No held-out image of {html.escape(finding)} with an observed label.</p>",
            data=data,
        )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{key}.png"
        plot_gradcam_entries(entries, finding, path, per_kind)
        png = path.read_bytes()
    url = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    body = (
        f"<p>Evidence for <b>{html.escape(finding)}</b> (its own logit), on held-out images of "
        f"the last fold, at threshold {threshold:g}: true and false positives and negatives, the "
        "most confident of each first. Images whose label for this finding is missing are "
        "left out.</p>"
        f'<img src="{url}" alt="Grad-CAM of {html.escape(finding)}" style="max-width:100%">'
    )
    return ReportSection(
        key, f"Grad-CAM: {finding}", html=body, data=data, figures={f"{key}.png": png}
    )

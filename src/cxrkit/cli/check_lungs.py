"""The lung guard of ``cxrkit check``: a cheap linear probe on images with the lungs hidden.

``cxrkit check`` trains no network, so of the two lung guards it runs
``outside_lungs_probe`` with a logistic regression on pooled pixels (seconds
for a few thousand images); ``attribution_in_lungs`` needs a trained model and
is reported by ``cxrkit run``.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = ["HOW_TO_BUILD", "PROBE_SIZE", "SEGMENTER_ENV", "lung_guard_rows", "segmenter_folder"]

#: The variable the protocols also read for the segmenter's folder.
SEGMENTER_ENV = "CXRKIT_LUNG_SEGMENTER"
#: Side, in pixels, of the images the probe sees (pooled to 16 x 16 features).
PROBE_SIZE = 64

HOW_TO_BUILD = (
    "INFO: lung guards skipped: no lung segmenter. Build one with `cxrkit train-lungs "
    "--masks DIR --out SEGDIR`, then pass --lung-segmenter SEGDIR or set "
    f"{SEGMENTER_ENV}=SEGDIR."
)


def segmenter_folder(flag: str | None) -> str | None:
    """Return the segmenter folder from ``--lung-segmenter`` or the environment, if any."""
    return flag or os.environ.get(SEGMENTER_ENV) or None


def _pooled(X: np.ndarray) -> np.ndarray:
    """Average ``(n, 64, 64)`` images over 4 x 4 blocks into 256 features."""
    n, h, w = X.shape
    return X.reshape(n, h // 4, 4, w // 4, 4).mean(axis=(2, 4)).reshape(n, -1)


def _probe() -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    return make_pipeline(
        FunctionTransformer(_pooled), StandardScaler(), LogisticRegression(max_iter=1000)
    )


def _images(X: Any) -> np.ndarray:
    from ..estimators import as_image_source
    from ..io import resize_image

    src = as_image_source(X)
    return np.stack(
        [resize_image(src.load(i), PROBE_SIZE, "bilinear") for i in range(len(src))]
    ).astype(np.float32)


def _cv(y: np.ndarray, groups: Any) -> Any:
    from sklearn.model_selection import GroupKFold, StratifiedKFold

    if groups is not None:
        return GroupKFold(n_splits=min(5, len(np.unique(np.asarray(groups)))))
    return StratifiedKFold(n_splits=min(5, int(np.unique(y, return_counts=True)[1].min())))


def lung_guard_rows(ds: Any, folder: str, *, n_jobs: int | None = None) -> list[Any]:
    """Run ``outside_lungs_probe`` on ``ds`` with the segmenter saved in ``folder``.

    Parameters
    ----------
    ds : CXRDataset
        Two classes, images as paths or arrays.
    folder : str
        A folder written by ``cxrkit train-lungs`` (or ``save_segmenter``).
    n_jobs : int, optional
        Folds fitted at the same time.

    Returns
    -------
    list of GuardResult
        The probe's row.
    """
    from ..segmentation import load_segmenter
    from ..validity.lungs import outside_lungs_probe

    y = np.asarray(ds.y).astype(str)
    X = _images(ds.X)
    return [
        outside_lungs_probe(
            _probe,
            X,
            y,
            ds.groups,
            _cv(y, ds.groups),
            segmenter=load_segmenter(folder),
            n_jobs=n_jobs,
        )
    ]

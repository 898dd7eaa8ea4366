"""Cleaning predicted lung masks and judging whether they are plausible."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

__all__ = [
    "LungMaskResult",
    "clean_lung_mask",
    "judge_lung_mask",
    "dice_iou",
    "MIN_SECOND_LUNG_RATIO",
]

#: The smaller of the two lungs must hold at least this share of the larger one's
#: pixels (the smallest ratio among the 419 manual cxr-dev masks is 0.57).
MIN_SECOND_LUNG_RATIO = 0.15


@dataclass(frozen=True)
class LungMaskResult:
    """A cleaned lung mask and whether it can be trusted.

    Attributes
    ----------
    mask : ndarray of bool, shape (H, W)
        Lung pixels, at the size of the image it was predicted for.
    plausible : bool
        ``False`` when the mask is empty, a lung is missing or the lung fraction
        lies outside the range seen in training.
    reason : str
        Why the mask is implausible (``""`` when plausible).
    lung_fraction : float
        Share of the image's pixels inside the mask.
    """

    mask: np.ndarray
    plausible: bool
    reason: str
    lung_fraction: float


def clean_lung_mask(mask: np.ndarray) -> np.ndarray:
    """Keep the two largest connected regions of ``mask`` and fill their holes.

    >>> m = np.zeros((6, 9), bool); m[1:5, 1:3] = m[1:5, 5:8] = m[0, 8] = True
    >>> int(clean_lung_mask(m).sum())
    20
    """
    m = np.asarray(mask, dtype=bool)
    labels, n = ndimage.label(m)
    if n > 2:
        sizes = np.bincount(labels.ravel())[1:]
        keep = np.argsort(sizes)[::-1][:2] + 1
        m = np.isin(labels, keep)
    return ndimage.binary_fill_holes(m)


def judge_lung_mask(mask: np.ndarray, fraction_range: tuple[float, float]) -> LungMaskResult:
    """Say whether a cleaned mask looks like two lungs of a plausible size.

    Parameters
    ----------
    mask : ndarray of bool, shape (H, W)
    fraction_range : (float, float)
        Lowest and highest lung fraction accepted (a fitted segmenter's
        ``lung_fraction_range_``).

    Returns
    -------
    LungMaskResult

    Examples
    --------
    >>> m = np.zeros((10, 10), bool); m[2:8, 1:4] = m[2:8, 6:9] = True
    >>> judge_lung_mask(m, (0.1, 0.6)).plausible
    True
    >>> judge_lung_mask(m[:, :5], (0.1, 0.6)).reason
    'one lung is missing (1 region found)'
    """
    m = np.asarray(mask, dtype=bool)
    frac = float(m.mean()) if m.size else 0.0
    lo, hi = fraction_range
    if not m.any():
        return LungMaskResult(m, False, "the mask is empty", 0.0)
    labels, n = ndimage.label(m)
    sizes = np.sort(np.bincount(labels.ravel())[1:])[::-1]
    if n < 2:
        return LungMaskResult(m, False, "one lung is missing (1 region found)", frac)
    if sizes[1] < MIN_SECOND_LUNG_RATIO * sizes[0]:
        return LungMaskResult(
            m,
            False,
            f"one lung is missing (the second region has {sizes[1] / sizes[0]:.0%} of "
            "the first one's pixels)",
            frac,
        )
    if not lo <= frac <= hi:
        return LungMaskResult(
            m,
            False,
            f"lung fraction {frac:.3f} lies outside the range seen in training "
            f"[{lo:.3f}, {hi:.3f}]",
            frac,
        )
    return LungMaskResult(m, True, "", frac)


def dice_iou(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Dice coefficient and intersection over union of two boolean masks.

    Two empty masks agree perfectly (1.0, 1.0).

    >>> a = np.array([1, 1, 0, 0], bool); b = np.array([1, 0, 0, 0], bool)
    >>> tuple(round(v, 3) for v in dice_iou(a, b))
    (0.667, 0.5)
    """
    p, t = np.asarray(pred, bool), np.asarray(truth, bool)
    if p.shape != t.shape:
        from ..errors import DataError

        raise DataError(f"dice_iou needs masks of one shape; got {p.shape} and {t.shape}.")
    inter = float(np.logical_and(p, t).sum())
    total = float(p.sum() + t.sum())
    union = total - inter
    if total == 0:
        return 1.0, 1.0
    return 2 * inter / total, inter / union

"""Lung-field transforms: crop to the lungs, keep only the lungs, or hide them.

Each transform segments the image with a fitted
:class:`~cxrkit.segmentation.LungSegmenter` (``segmenter=``: the estimator, the
folder written by ``cxrkit train-lungs``, or ``None`` for the folder in
``$CXRKIT_LUNG_SEGMENTER``). Masks come from the process-wide
:class:`~cxrkit.segmentation.MaskCache`, keyed by the segmenter and the
image's pixels, so each image is segmented once. The transforms are
deterministic, so a frozen backbone's feature cache still applies after them.

A predicted mask that is implausible (empty, one lung missing, lung fraction
outside the training range) is never used: ``lung_crop`` and ``lung_mask``
return the image unchanged, ``lung_blackout`` hides the segmenter's average
training mask instead. Every such image raises an
:class:`ImplausibleLungMaskWarning` the first time it is seen and is counted
in :func:`cxrkit.segmentation.lung_mask_stats`.
"""

from __future__ import annotations

import numbers
import os
import threading
import warnings
from typing import Any

import numpy as np

from ..errors import ConfigurationError, DataError
from ..io import resize_image
from ._transforms import Transform

__all__ = ["ImplausibleLungMaskWarning", "LungCrop", "LungMask", "lung_blackout"]

_LOAD_LOCK = threading.Lock()
_SEGMENTERS: dict[str, tuple[int | None, Any]] = {}
_FILLS = ("median", "zero")


class ImplausibleLungMaskWarning(UserWarning):
    """A predicted lung mask was implausible and a transform used its fallback."""


def _load_cached(folder: str | os.PathLike[str]) -> Any:
    """Return a segmenter folder loaded once per process (reloaded when its weights change)."""
    from ..segmentation import load_segmenter

    path = os.path.abspath(folder)
    weights = os.path.join(path, "model.safetensors")
    stamp = os.stat(weights).st_mtime_ns if os.path.isfile(weights) else None
    hit = _SEGMENTERS.get(path)
    if hit is None or hit[0] != stamp:
        _SEGMENTERS[path] = hit = (stamp, load_segmenter(path))
    return hit[1]


class _LungTransform(Transform):
    """Shared segmenter handling of the lung transforms."""

    segmenter: Any
    _loaded: Any = None

    def _get_segmenter(self) -> Any:
        if self._loaded is not None:
            return self._loaded
        from ..segmentation import SEGMENTER_ENV, LungSegmenter, default_segmenter

        with _LOAD_LOCK:
            if self._loaded is None:
                seg = self.segmenter
                if seg is None:
                    folder = os.environ.get(SEGMENTER_ENV)
                    self._loaded = _load_cached(folder) if folder else default_segmenter()
                elif isinstance(seg, (str, os.PathLike)):
                    self._loaded = _load_cached(seg)
                elif isinstance(seg, LungSegmenter):
                    if not hasattr(seg, "fingerprint_"):
                        raise ConfigurationError(
                            f"{type(self).__name__} got an unfitted LungSegmenter; fit it first "
                            "or pass the folder written by `cxrkit train-lungs`."
                        )
                    self._loaded = seg
                else:
                    raise ConfigurationError(
                        f"The 'segmenter' parameter of {type(self).__name__} must be a fitted "
                        f"LungSegmenter, a folder path or None. Got {type(seg).__name__} instead."
                    )
        return self._loaded

    def lung_mask_of(self, img: np.ndarray) -> Any:
        """Return the cached :class:`~cxrkit.segmentation.LungMaskResult` of ``img``; warns (once per image) when it is implausible and this transform falls back."""
        from ..segmentation import get_mask_cache

        cache = get_mask_cache()
        result, computed = cache.lookup(self._get_segmenter(), img)
        if not result.plausible:
            cache.count_fallback(self._name)
            if computed:
                n = cache.stats()["n_implausible"]
                warnings.warn(
                    f"{self._name}: the predicted lung mask of a {img.shape[0]}x{img.shape[1]} "
                    f"image is implausible ({result.reason}); {self._fallback}. {n} image(s) so "
                    "far; see cxrkit.segmentation.lung_mask_stats().",
                    ImplausibleLungMaskWarning,
                    stacklevel=3,
                )
        return result

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if not hasattr(self.segmenter, "fingerprint_"):
            state.pop("_loaded", None)  # reloaded from the folder in the new process
        return state

    _name = "lung transform"
    _fallback = ""


def _as_2d(img: np.ndarray, who: str) -> np.ndarray:
    arr = np.asarray(img)
    if arr.ndim != 2:
        raise DataError(f"{who} expects a 2-D grayscale image; got an array of shape {arr.shape}.")
    return arr.astype(np.float32, copy=False)


class LungCrop(_LungTransform):
    """Crop to the bounding box of the predicted lungs plus a margin, then resize.

    Parameters
    ----------
    segmenter : LungSegmenter, path or None, default=None
        See the module documentation.
    margin : float, default=0.05
        Added on every side, as a fraction of the image's height (top, bottom)
        and width (left, right).
    size : int or None, default=None
        Side of the square output; ``None`` keeps the crop's size (the
        classifier resizes to its input size anyway).
    """

    _params = ("segmenter", "margin", "size")
    margin: float
    size: int | None
    _name = "lung_crop"
    _fallback = "the uncropped image was used"

    def __init__(
        self, segmenter: Any = None, margin: float = 0.05, size: int | None = None
    ) -> None:
        if (
            isinstance(margin, bool)
            or not isinstance(margin, numbers.Real)
            or not 0 <= margin < 0.5
        ):
            raise ConfigurationError(
                f"The 'margin' parameter of LungCrop must be a float in the range [0, 0.5). "
                f"Got {margin!r} instead."
            )
        if size is not None and (not isinstance(size, numbers.Integral) or size < 1):
            raise ConfigurationError(
                f"The 'size' parameter of LungCrop must be a positive int or None. Got {size!r} instead."
            )
        self.segmenter = segmenter
        self.margin = float(margin)
        self.size = None if size is None else int(size)

    def crop_box(self, img: np.ndarray) -> tuple[int, int, int, int] | None:
        """``(top, bottom, left, right)`` of the crop, or ``None`` (implausible mask)."""
        arr = _as_2d(img, "LungCrop")
        result = self.lung_mask_of(arr)
        if not result.plausible:
            return None
        rows, cols = np.flatnonzero(result.mask.any(1)), np.flatnonzero(result.mask.any(0))
        h, w = arr.shape
        dh, dw = round(self.margin * h), round(self.margin * w)
        return (
            max(0, rows[0] - dh),
            min(h, rows[-1] + 1 + dh),
            max(0, cols[0] - dw),
            min(w, cols[-1] + 1 + dw),
        )

    def _apply(
        self, arr: np.ndarray, box: tuple[int, int, int, int] | None, interpolation: str
    ) -> np.ndarray:
        out = arr if box is None else arr[box[0] : box[1], box[2] : box[3]]
        if self.size is not None:
            return resize_image(
                np.ascontiguousarray(out, dtype=np.float32), self.size, interpolation
            )
        return out.copy()

    def __call__(self, img: np.ndarray) -> np.ndarray:
        arr = _as_2d(img, "LungCrop")
        return self._apply(arr, self.crop_box(arr), "bilinear")

    def transform_mask(self, img: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Apply the crop that ``img`` gets to a mask of the same size."""
        arr = _as_2d(img, "LungCrop")
        out = self._apply(np.asarray(mask, np.float32), self.crop_box(arr), "nearest")
        return out > 0.5


class LungMask(_LungTransform):
    """Set the pixels outside (or inside) the predicted lungs to a fill value.

    Parameters
    ----------
    segmenter : LungSegmenter, path or None, default=None
    fill : {"median", "zero"} or float, default="median"
        ``"median"``: the median of the image's own pixels (keeps the overall
        brightness); ``"zero"``: black; a float: that value.
    keep : {"lungs", "outside"}, default="lungs"
        ``"lungs"`` keeps the lung fields and fills the rest (``lung_mask``);
        ``"outside"`` fills the lungs and keeps the rest (``lung_blackout``,
        what :func:`cxrkit.validity.lungs.outside_lungs_probe` trains on).
    """

    _params = ("segmenter", "fill", "keep")

    def __init__(
        self, segmenter: Any = None, fill: str | float = "median", keep: str = "lungs"
    ) -> None:
        if not (fill in _FILLS or (isinstance(fill, numbers.Real) and not isinstance(fill, bool))):
            raise ConfigurationError(
                f"The 'fill' parameter of LungMask must be one of {_FILLS} or a float. "
                f"Got {fill!r} instead."
            )
        if keep not in ("lungs", "outside"):
            raise ConfigurationError(
                f"The 'keep' parameter of LungMask must be 'lungs' or 'outside'. Got {keep!r} instead."
            )
        self.segmenter = segmenter
        self.fill = fill
        self.keep = keep

    @property
    def _name(self) -> str:  # type: ignore[override]
        return "lung_mask" if self.keep == "lungs" else "lung_blackout"

    @property
    def _fallback(self) -> str:  # type: ignore[override]
        return (
            "the unmasked image was used"
            if self.keep == "lungs"
            else "the segmenter's average training mask was hidden instead"
        )

    def region(self, img: np.ndarray) -> np.ndarray | None:
        """Boolean map of the pixels that are filled (``None``: nothing is)."""
        arr = _as_2d(img, "LungMask")
        result = self.lung_mask_of(arr)
        if result.plausible:
            return ~result.mask if self.keep == "lungs" else result.mask
        if self.keep == "lungs":
            return None
        return self._get_segmenter().prior_mask(arr.shape)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        arr = _as_2d(img, "LungMask")
        region = self.region(arr)
        out = arr.copy()
        if region is not None:
            value = (
                float(np.median(arr))
                if self.fill == "median"
                else 0.0
                if self.fill == "zero"
                else float(self.fill)
            )
            out[region] = value
        return out


def lung_blackout(segmenter: Any = None, fill: str | float = "zero") -> LungMask:
    """``LungMask(keep="outside")``: the lungs hidden, everything else kept."""
    return LungMask(segmenter=segmenter, fill=fill, keep="outside")

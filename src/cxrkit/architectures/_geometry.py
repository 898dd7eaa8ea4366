"""Cropping and resizing an image as a :class:`Preprocessing` declares."""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING

import numpy as np

from ..errors import ConfigurationError
from ..io import resize_image

if TYPE_CHECKING:
    from ._base import Preprocessing

__all__ = ["crop_and_resize", "centre_square", "centre_crop"]

CROPS = ("none", "square")


def centre_square(img: np.ndarray) -> np.ndarray:
    """Return the largest central square, placed as torchxrayvision's ``XRayCenterCrop``."""
    h, w = img.shape
    side = min(h, w)
    top, left = h // 2 - side // 2, w // 2 - side // 2
    return img[top : top + side, left : left + side]


def centre_crop(img: np.ndarray, size: int) -> np.ndarray:
    """Return the central ``size x size`` block, placed as torchvision's ``CenterCrop``."""
    h, w = img.shape
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return img[top : top + size, left : left + size]


def _skimage_resize(img: np.ndarray, size: int, cval: float) -> np.ndarray:
    try:
        from skimage.transform import resize
    except ImportError:  # pragma: no cover - scikit-image comes with torchxrayvision
        raise ConfigurationError(
            "interpolation='skimage' needs scikit-image: pip install 'cxrkit[xrv]'."
        ) from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = resize(img, (size, size), order=1, mode="constant", cval=cval, preserve_range=True)
    return np.asarray(out, dtype=np.float32)


def crop_and_resize(img: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """Apply ``prep.crop``, ``prep.crop_pct`` and ``prep.interpolation`` to a 2-D image."""
    if prep.crop not in CROPS:
        raise ConfigurationError(
            f"The 'crop' field of Preprocessing must be one of {CROPS}. Got {prep.crop!r} instead."
        )
    if not 0 < prep.crop_pct <= 1:
        raise ConfigurationError(
            "The 'crop_pct' field of Preprocessing must be a float in the range (0, 1]. "
            f"Got {prep.crop_pct!r} instead."
        )
    if prep.crop == "square":
        img = centre_square(img)
    size = int(prep.input_size)
    scaled = size if prep.crop_pct >= 1 else int(math.floor(size / prep.crop_pct))
    if prep.interpolation == "skimage":
        out = _skimage_resize(img, scaled, cval=float(prep.mean[0]))
    else:
        out = resize_image(img, scaled, prep.interpolation)
    if scaled != size:
        out = np.ascontiguousarray(centre_crop(out, size))
    return out.astype(np.float32, copy=False)

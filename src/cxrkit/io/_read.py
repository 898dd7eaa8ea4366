"""Image decoding and resizing.

Every image becomes a 2-D ``float32`` array with values in ``[0, 1]``
(8-bit / 255, 16-bit / 65535), whatever its file format.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ImageDecodeError

__all__ = ["read_xray", "resize_image", "INTERPOLATIONS"]

INTERPOLATIONS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
}


def _pil_to_gray(img: Image.Image) -> np.ndarray:
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        return (arr / 65535.0).clip(0, 1).astype(np.float32)
    if img.mode == "F":
        return np.asarray(img, dtype=np.float32)
    if img.mode != "L":
        img = img.convert("RGB").convert("L") if img.mode not in ("1",) else img.convert("L")
    return np.asarray(img, dtype=np.float32) / 255.0


def read_xray(path: str | os.PathLike[str]) -> np.ndarray:
    """Read an image file as a 2-D float32 array in ``[0, 1]``.

    Raises
    ------
    ImageDecodeError
        The file is missing, empty or not a decodable image.
    """
    p = Path(path)
    if not p.is_file():
        raise ImageDecodeError(f"Image '{p}' does not exist.")
    try:
        with Image.open(p) as img:
            img.load()
            return _pil_to_gray(img)
    except Exception as exc:
        raise ImageDecodeError(f"Image '{p}' could not be decoded ({type(exc).__name__}: {exc}).") from None


def resize_image(img: np.ndarray, size: int, interpolation: str = "bilinear") -> np.ndarray:
    """Resize a 2-D float image to ``size x size`` with PIL (antialiased when shrinking)."""
    if img.shape == (size, size):
        return img.astype(np.float32, copy=False)
    try:
        method = INTERPOLATIONS[interpolation]
    except KeyError:
        raise ValueError(
            f"The 'interpolation' parameter must be one of {sorted(INTERPOLATIONS)}. "
            f"Got {interpolation!r} instead."
        ) from None
    pil = Image.fromarray(np.ascontiguousarray(img, dtype=np.float32), mode="F")
    return np.asarray(pil.resize((size, size), method), dtype=np.float32)

"""Built-in image transforms.

Each transform is a small, picklable callable object (no lambdas) that takes a
2-D float32 image in ``[0, 1]`` and returns a new array; ``GrayTo3Channel``
returns ``(3, H, W)`` and ``ImageNetNormalize`` works on ``(3, H, W)`` or
``(H, W)`` images. Random transforms draw from their own
:class:`numpy.random.Generator` seeded by ``random_state``, so a given seed gives
the same sequence of results (also after pickling).
"""

from __future__ import annotations

import io
import numbers

import numpy as np
from PIL import Image

from ..errors import ConfigurationError, DataError
from ..io import resize_image

__all__ = [
    "Transform",
    "Resize",
    "GrayTo3Channel",
    "ImageNetNormalize",
    "HorizontalFlip",
    "JpegRecompress",
    "CentreCrop",
    "CentreBlackout",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _as_image(img: np.ndarray, who: str) -> np.ndarray:
    arr = np.asarray(img)
    if arr.ndim != 2:
        raise DataError(f"{who} expects a 2-D grayscale image; got an array of shape {arr.shape}.")
    return arr.astype(np.float32, copy=False)


def _fraction(name: str, owner: str, value: object) -> float:
    if not isinstance(value, numbers.Real) or isinstance(value, bool) or not 0 < float(value) <= 1:
        raise ConfigurationError(
            f"The {name!r} parameter of {owner} must be a float in the range (0, 1]. "
            f"Got {value!r} instead."
        )
    return float(value)


class Transform:
    """Base class: a readable ``repr`` built from the constructor arguments."""

    _params: tuple[str, ...] = ()

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={getattr(self, k)!r}" for k in self._params)
        return f"{type(self).__name__}({args})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and all(
            getattr(self, k) == getattr(other, k) for k in self._params
        )

    def __hash__(self) -> int:
        return hash((type(self).__name__,) + tuple(repr(getattr(self, k)) for k in self._params))


class Resize(Transform):
    """Resize to ``size x size`` (see :func:`cxrkit.io.resize_image`).

    Parameters
    ----------
    size : int, default=224
    interpolation : {"nearest", "bilinear", "bicubic", "lanczos"}, default="bilinear"
    """

    _params = ("size", "interpolation")
    size: int
    interpolation: str

    def __init__(self, size: int = 224, interpolation: str = "bilinear") -> None:
        if not isinstance(size, numbers.Integral) or isinstance(size, bool) or size < 1:
            raise ConfigurationError(
                f"The 'size' parameter of Resize must be an int in the range [1, inf). Got {size!r} instead."
            )
        self.size = int(size)
        self.interpolation = interpolation
        resize_image(np.zeros((2, 2), np.float32), 1, interpolation)  # validates interpolation

    def __call__(self, img: np.ndarray) -> np.ndarray:
        return resize_image(_as_image(img, "Resize"), self.size, self.interpolation)


class GrayTo3Channel(Transform):
    """Repeat a 2-D image into ``(3, H, W)`` (what ImageNet backbones expect)."""

    def __call__(self, img: np.ndarray) -> np.ndarray:
        arr = _as_image(img, "GrayTo3Channel")
        return np.repeat(arr[None], 3, axis=0)


class ImageNetNormalize(Transform):
    """``(x - mean) / std`` per channel with the ImageNet statistics.

    A 2-D image is first repeated into 3 channels; the output is ``(3, H, W)``.

    Parameters
    ----------
    mean, std : tuple of 3 floats, default=ImageNet's
    """

    _params = ("mean", "std")

    def __init__(
        self,
        mean: tuple[float, float, float] = IMAGENET_MEAN,
        std: tuple[float, float, float] = IMAGENET_STD,
    ) -> None:
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ConfigurationError(
                "ImageNetNormalize needs 3 means and 3 positive standard deviations. "
                f"Got mean={mean!r}, std={std!r}."
            )

    def __call__(self, img: np.ndarray) -> np.ndarray:
        arr = np.asarray(img, dtype=np.float32)
        if arr.ndim == 2:
            arr = np.repeat(arr[None], 3, axis=0)
        if arr.ndim != 3 or arr.shape[0] != 3:
            raise DataError(
                f"ImageNetNormalize expects a (H, W) or (3, H, W) image; got shape {arr.shape}."
            )
        mean = np.asarray(self.mean, np.float32)[:, None, None]
        std = np.asarray(self.std, np.float32)[:, None, None]
        return (arr - mean) / std


class HorizontalFlip(Transform):
    """Mirror the image left-right with probability ``p``.

    Parameters
    ----------
    p : float, default=1.0
        ``1.0`` always flips (deterministic); below 1 the decision is drawn
        from a generator seeded with ``random_state``.
    random_state : int or None, default=0
    """

    _params = ("p", "random_state")
    p: float
    _rng: np.random.Generator

    def __init__(self, p: float = 1.0, random_state: int | None = 0) -> None:
        if not isinstance(p, numbers.Real) or not 0 <= p <= 1:
            raise ConfigurationError(
                f"The 'p' parameter of HorizontalFlip must be a float in the range [0, 1]. Got {p!r} instead."
            )
        self.p = float(p)
        self.random_state = random_state
        self._rng = np.random.default_rng(random_state)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        arr = np.asarray(img, dtype=np.float32)
        flip = self.p >= 1 or (self.p > 0 and self._rng.random() < self.p)
        return np.ascontiguousarray(arr[..., ::-1]) if flip else arr.copy()


class JpegRecompress(Transform):
    """Encode as an 8-bit grayscale JPEG at ``quality`` and decode again.

    The first paper re-encoded its control images so that compression artefacts
    could not reveal the class; applying the same recompression to every image
    equalises them.

    Parameters
    ----------
    quality : int, default=90
        Pillow JPEG quality, 1-95.
    """

    _params = ("quality",)
    quality: int

    def __init__(self, quality: int = 90) -> None:
        if (
            not isinstance(quality, numbers.Integral)
            or isinstance(quality, bool)
            or not 1 <= quality <= 95
        ):
            raise ConfigurationError(
                f"The 'quality' parameter of JpegRecompress must be an int in the range [1, 95]. "
                f"Got {quality!r} instead."
            )
        self.quality = int(quality)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        arr = _as_image(img, "JpegRecompress")
        u8 = (np.clip(arr, 0, 1) * 255.0 + 0.5).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(u8).save(buf, format="JPEG", quality=self.quality)
        buf.seek(0)
        with Image.open(buf) as im:
            return np.asarray(im.convert("L"), dtype=np.float32) / 255.0


class CentreCrop(Transform):
    """Keep the central ``fraction`` of the height and of the width.

    Parameters
    ----------
    fraction : float in (0, 1], default=0.8
    """

    _params = ("fraction",)

    def __init__(self, fraction: float = 0.8) -> None:
        self.fraction = _fraction("fraction", "CentreCrop", fraction)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        arr = _as_image(img, "CentreCrop")
        h, w = arr.shape
        ch, cw = max(1, round(h * self.fraction)), max(1, round(w * self.fraction))
        top, left = (h - ch) // 2, (w - cw) // 2
        return arr[top : top + ch, left : left + cw].copy()


class CentreBlackout(Transform):
    """Set the central ``fraction`` x ``fraction`` box of the image to ``value``.

    Used by the shortcut probe (:func:`cxrkit.validity.shortcut_probe`, which
    passes its own ``fraction``, 0.6 by default): a model that still separates
    the classes with the lungs blacked out is reading something other than the lungs.

    Examples
    --------
    >>> out = CentreBlackout(0.5)(np.ones((4, 4), dtype=np.float32))
    >>> out.astype(int).tolist()
    [[1, 1, 1, 1], [1, 0, 0, 1], [1, 0, 0, 1], [1, 1, 1, 1]]

    Parameters
    ----------
    fraction : float in (0, 1], default=0.5
        Side of the box as a fraction of the image's height and width.
    value : float, default=0.0
    """

    _params = ("fraction", "value")

    def __init__(self, fraction: float = 0.5, value: float = 0.0) -> None:
        self.fraction = _fraction("fraction", "CentreBlackout", fraction)
        self.value = float(value)

    def box(self, shape: tuple[int, ...]) -> tuple[slice, slice]:
        """Return the row and column slices of the box for an image of ``shape``."""
        h, w = shape[-2], shape[-1]
        bh, bw = round(h * self.fraction), round(w * self.fraction)
        top, left = (h - bh) // 2, (w - bw) // 2
        return slice(top, top + bh), slice(left, left + bw)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        arr = _as_image(img, "CentreBlackout").copy()
        arr[self.box(arr.shape)] = self.value
        return arr

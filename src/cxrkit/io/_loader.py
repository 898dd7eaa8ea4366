"""XRayLoader: a scikit-learn transformer from image paths to arrays."""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from .._config import resolve_decode_threads
from ..errors import ConfigurationError, DataError, ImageDecodeError
from ._named import resolve_transforms
from ._pool import map_collecting_errors
from ._read import INTERPOLATIONS, read_xray_bytes, resize_image

__all__ = ["XRayLoader", "DecodeCache", "format_failures"]


def format_failures(errors: Sequence[str], n: int, *, what: str = "images", hint: str = "") -> str:
    """One message for many failures: the first 10, then a count."""
    errors = sorted(errors)
    shown = "\n  ".join(errors[:10])
    more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
    return f"{len(errors)} of {n} {what} could not be read:\n  {shown}{more}" + (
        f"\n{hint}" if hint else ""
    )


class DecodeCache:
    """A thread-safe LRU cache of decoded images keyed by file-content hash.

    Keys are ``(sha1 of the file bytes, size, interpolation, transforms)``, so
    a renamed or copied file is a hit and an overwritten file is a miss.

    Parameters
    ----------
    max_bytes : int, default=512 MiB
        Oldest entries are evicted beyond this many bytes of pixel data.
    """

    def __init__(self, max_bytes: int = 512 * 2**20) -> None:
        self.max_bytes = max_bytes
        self._data: OrderedDict[tuple[Any, ...], np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[Any, ...]) -> np.ndarray | None:
        with self._lock:
            arr = self._data.get(key)
            if arr is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return arr

    def put(self, key: tuple[Any, ...], arr: np.ndarray) -> None:
        with self._lock:
            if key in self._data:
                return
            arr = arr.copy()
            arr.setflags(write=False)
            self._data[key] = arr
            self._bytes += arr.nbytes
            while self._bytes > self.max_bytes and self._data:
                _, old = self._data.popitem(last=False)
                self._bytes -= old.nbytes

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._bytes = 0
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._data)


#: The process-wide cache shared by every :class:`XRayLoader` (clones included).
GLOBAL_CACHE = DecodeCache()


class XRayLoader(TransformerMixin, BaseEstimator):
    """Read image files into a ``(n, size, size)`` float32 array.

    A stateless scikit-learn transformer that can start a
    :class:`~sklearn.pipeline.Pipeline` (``fit`` only validates parameters).

    Parameters
    ----------
    size : int, default=224
        Side of the square output images.
    interpolation : {"nearest", "bilinear", "bicubic", "lanczos"}, default="bilinear"
        Resampling, see :func:`cxrkit.io.resize_image`.
    transforms : sequence of callables or str, default=()
        2-D -> 2-D transforms (or registered transform names) applied before
        resizing.
    cache : bool, default=True
        Keep decoded images in an in-memory cache keyed by the SHA-1 of the
        file's content (shared by all loaders in the process; see
        :data:`GLOBAL_CACHE`).
    n_jobs : int or None, default=None
        Decoding threads; ``None`` uses up to 8 (bounded by the CPU count).

    Examples
    --------
    >>> from sklearn.pipeline import make_pipeline
    >>> from cxrkit.io import XRayLoader
    >>> pipe = make_pipeline(XRayLoader(size=64), CXRClassifier("tiny_cnn", input_size=64))  # doctest: +SKIP
    """

    def __init__(
        self,
        size: int = 224,
        interpolation: str = "bilinear",
        transforms: Sequence[Callable[[np.ndarray], np.ndarray] | str] = (),
        cache: bool = True,
        n_jobs: int | None = None,
    ) -> None:
        self.size = size
        self.interpolation = interpolation
        self.transforms = transforms
        self.cache = cache
        self.n_jobs = n_jobs

    def _validate(self) -> None:
        if (
            not isinstance(self.size, (int, np.integer))
            or isinstance(self.size, bool)
            or self.size < 1
        ):
            raise ConfigurationError(
                f"The 'size' parameter of XRayLoader must be an int in the range [1, inf). "
                f"Got {self.size!r} instead."
            )
        if self.interpolation not in INTERPOLATIONS:
            raise ConfigurationError(
                f"The 'interpolation' parameter of XRayLoader must be one of "
                f"{sorted(INTERPOLATIONS)}. Got {self.interpolation!r} instead."
            )

    def _transform_callables(self) -> list[Callable[[np.ndarray], np.ndarray]]:
        return resolve_transforms(self.transforms, "XRayLoader")

    def fit(self, X: Any, y: Any = None) -> XRayLoader:
        """Validate the parameters; nothing is learned."""
        self._validate()
        self.is_fitted_ = True
        return self

    @staticmethod
    def _paths(X: Any) -> list[str]:
        if hasattr(X, "X") and hasattr(X, "metadata"):  # a CXRDataset
            X = X.X
        if isinstance(X, (str, os.PathLike)):
            raise DataError(f"XRayLoader needs a list of image paths; got the single path {X!r}.")
        if hasattr(X, "to_numpy"):
            X = X.to_numpy()
        X = np.asarray(X, dtype=object)
        if X.ndim == 2 and X.shape[1] == 1:
            X = X.ravel()
        if X.ndim != 1 or not all(isinstance(v, (str, os.PathLike)) for v in X):
            raise DataError("XRayLoader needs a 1-D sequence of image file paths.")
        return [os.fspath(v) for v in X]

    def _load_one(
        self,
        path: str,
        transforms: list[Callable[[np.ndarray], np.ndarray]],
        key_extra: tuple[Any, ...],
    ) -> np.ndarray:
        p = Path(path)
        if not p.is_file():
            raise ImageDecodeError(f"Image '{p}' does not exist.")
        data = p.read_bytes()
        key = (hashlib.sha1(data).hexdigest(),) + key_extra
        if self.cache:
            hit = GLOBAL_CACHE.get(key)
            if hit is not None:
                return hit
        img = read_xray_bytes(data, str(p))
        for t in transforms:
            img = t(img)
        img = resize_image(img, int(self.size), self.interpolation)
        if self.cache:
            GLOBAL_CACHE.put(key, img)
        return img

    def transform(self, X: Any) -> np.ndarray:
        """Decode, transform and resize every image.

        Returns
        -------
        ndarray of shape (n, size, size), float32 in [0, 1]

        Raises
        ------
        ImageDecodeError
            Listing every file that could not be read (first 10 + count).
        """
        self._validate()
        paths = self._paths(X)
        transforms = self._transform_callables()
        key_extra = (int(self.size), self.interpolation, tuple(repr(t) for t in transforms))
        out = np.empty((len(paths), int(self.size), int(self.size)), dtype=np.float32)

        def work(i: int) -> None:
            out[i] = self._load_one(paths[i], transforms, key_extra)

        threads = self.n_jobs or resolve_decode_threads()
        errors = map_collecting_errors(work, len(paths), threads, (ImageDecodeError,))
        if errors:
            raise ImageDecodeError(
                format_failures(
                    errors,
                    len(paths),
                    hint="Remove them, or load the data with cxrkit.datasets.load_dataset(..., "
                    "on_error='skip') to leave them out and have them counted.",
                )
            )
        return out

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.requires_fit = False
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        return tags

"""Turning user input (paths or arrays) into network-ready tensors."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from .._config import resolve_decode_threads
from ..architectures import Preprocessing
from ..errors import DataError, ImageDecodeError
from ..io import map_collecting_errors, prefetched_chunks, read_xray

__all__ = [
    "ImageSource",
    "as_image_source",
    "prepare_images",
    "ImageTensorDataset",
    "LazyImageDataset",
    "AugmentedImageDataset",
    "FlippedSource",
    "iter_prepared",
    "prepare_one",
    "to_tensor",
]

Transform = Callable[[np.ndarray], np.ndarray]


@dataclass
class ImageSource:
    """Images given either as file paths or as an in-memory array."""

    paths: np.ndarray | None = None
    array: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.paths) if self.paths is not None else len(self.array)  # type: ignore[arg-type]

    @property
    def is_paths(self) -> bool:
        return self.paths is not None

    def load(self, i: int) -> np.ndarray:
        if self.paths is not None:
            return read_xray(self.paths[i])
        img = self.array[i]  # type: ignore[index]
        if img.ndim == 1:
            img = img[None, :]
        if img.dtype == np.uint8:
            return img.astype(np.float32) / 255.0
        if img.dtype == np.uint16:
            return img.astype(np.float32) / 65535.0
        return img.astype(np.float32)

    def subset(self, idx: np.ndarray) -> ImageSource:
        if self.paths is not None:
            return ImageSource(paths=self.paths[idx])
        return ImageSource(array=self.array[idx])  # type: ignore[index]


def as_image_source(X: object, *, name: str = "X") -> ImageSource:
    """Validate ``X`` and wrap it.

    Accepted: a 1-D sequence of image paths; a ``(n, H, W)`` array of grayscale
    images (uint8 / 255, uint16 / 65535, floats used as given); a 2-D ``(n, W)``
    array, read as ``n`` images one pixel high.
    """
    if isinstance(X, ImageSource):
        return X
    if hasattr(X, "to_numpy") and not isinstance(X, np.ndarray):
        X = X.to_numpy()  # pandas Series / DataFrame
    _reject_non_images(X, name)
    if isinstance(X, np.ndarray) and X.dtype.kind in "biuf":
        arr = X
    else:
        got = _from_sequence(X, name)
        if isinstance(got, ImageSource):
            return got
        arr = got
    return ImageSource(array=_checked_array(arr, name))


def _reject_non_images(X: object, name: str) -> None:
    """Raise for inputs that cannot hold images: None, sparse, one path, complex."""
    if X is None:
        raise DataError(f"{name} is None; pass image paths or an (n, H, W) array of images.")
    if hasattr(X, "toarray") or type(X).__module__.startswith("scipy.sparse"):
        raise DataError(
            f"Sparse data was passed for {name}, but dense data is required. Use '.toarray()' to "
            "convert to a dense numpy array, or pass image paths."
        )
    if isinstance(X, (str, os.PathLike)):
        raise DataError(
            f"{name} is a single path ({X!r}); pass a list or 1-D array of image paths."
        )
    if isinstance(X, np.ndarray) and X.dtype.kind == "c":
        raise DataError(f"Complex data not supported in {name}; images must be real-valued.")


def _from_sequence(X: object, name: str) -> ImageSource | np.ndarray:
    """Return a sequence of paths as an :class:`ImageSource`, one of numbers as an array."""
    try:
        items = list(X)  # type: ignore[call-overload]
    except TypeError:
        raise DataError(
            f"{name} must be a 1-D sequence of image paths or an (n, H, W) array of "
            f"grayscale images; got {type(X).__name__}."
        ) from None
    if items and all(isinstance(v, (str, os.PathLike)) for v in items):
        return ImageSource(paths=np.asarray([os.fspath(v) for v in items], dtype=object))
    try:
        arr = np.asarray(items)
    except ValueError:
        arr = np.asarray(items, dtype=object)
    if arr.dtype == object:
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            pass
    if arr.dtype.kind == "c":
        raise DataError(f"Complex data not supported in {name}; images must be real-valued.")
    if arr.dtype.kind not in "biuf":
        raise DataError(
            f"{name} must be a 1-D sequence of image paths or an (n, H, W) array of "
            f"grayscale images; got elements of type {type(items[0]).__name__ if items else 'none'}."
        )
    return arr


def _checked_array(arr: np.ndarray, name: str) -> np.ndarray:
    """Check the shape and values of an array of images; return it (booleans as uint8)."""
    if arr.dtype.kind == "b":
        arr = arr.astype(np.uint8)
    if arr.ndim == 1:
        raise DataError(
            f"Expected an (n, H, W) or (n, W) array for {name}, got a 1-D array of numbers "
            f"(shape {arr.shape}). Reshape your data either using array.reshape(-1, 1) if it "
            "holds a single feature or array.reshape(1, -1) if it holds a single sample; for "
            "image files pass their paths as strings."
        )
    if arr.ndim not in (2, 3):
        hint = " For RGB images pass paths, or convert to grayscale first." if arr.ndim == 4 else ""
        raise DataError(
            f"{name} has shape {arr.shape}; expected (n, H, W) grayscale images or (n, W) rows.{hint}"
        )
    if arr.shape[0] == 0:
        raise DataError(f"{name} is empty (0 images); at least one image is required.")
    if arr.size == 0:
        raise DataError(
            f"{name} has 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required: "
            "images with no pixels cannot be used."
        )
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise DataError(
            f"{name} contains NaN or infinity in {int((~np.isfinite(arr)).any(axis=tuple(range(1, arr.ndim))).sum())} "
            "image(s); replace or remove them before fitting."
        )
    return arr


def prepare_one(
    src: ImageSource, i: int, transforms: Sequence[Transform], prep: Preprocessing
) -> np.ndarray:
    """Decode image ``i`` of ``src``, apply ``transforms`` and resize it (float32, 2-D)."""
    img = src.load(i)
    for t in transforms:
        img = t(img)
    return prep.resize(img)


def prepare_images(
    src: ImageSource,
    prep: Preprocessing,
    transforms: Sequence[Transform] = (),
    *,
    n_threads: int | None = None,
) -> np.ndarray:
    """Decode, transform and resize every image into one ``(n, S, S)`` float32 array.

    float32, exactly what :meth:`CXRClassifier.iter_batches` produces at
    prediction time, so training and prediction see the same pixels and share
    feature-cache entries.

    All failures are collected first and reported together.
    """
    n = len(src)
    out = np.empty((n, prep.input_size, prep.input_size), dtype=np.float32)

    def work(i: int) -> None:
        out[i] = prepare_one(src, i, transforms, prep)

    threads = n_threads or (resolve_decode_threads() if src.is_paths else 1)
    errors = map_collecting_errors(work, n, threads, (ImageDecodeError,))
    if errors:
        shown = "\n  ".join(errors[:10])
        more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise ImageDecodeError(
            f"{len(errors)} of {n} images could not be read:\n  {shown}{more}\n"
            "Remove them, or load the data with cxrkit.datasets.load_dataset(..., on_error='skip') "
            "to leave them out and have them counted in the dataset summary."
        )
    return out


def to_tensor(img: np.ndarray, prep: Preprocessing, flip: bool) -> torch.Tensor:
    """Return a prepared 2-D image as a normalised ``(C, S, S)`` tensor, mirrored if ``flip``."""
    t = torch.from_numpy(np.array(img, dtype=np.float32))
    if flip:
        t = t.flip(-1)
    t = t.unsqueeze(0).expand(prep.channels, -1, -1)
    mean = torch.tensor(prep.mean, dtype=torch.float32)[: prep.channels, None, None]
    std = torch.tensor(prep.std, dtype=torch.float32)[: prep.channels, None, None]
    return (t - mean) / std


class ImageTensorDataset(Dataset):
    """Prepared images (``(n, S, S)``) -> normalised ``(C, S, S)`` tensors.

    With ``hflip=True`` each access flips the image with probability 1/2
    (drawn from torch's global generator, so seeded runs repeat).
    """

    def __init__(
        self, images: np.ndarray, y: np.ndarray | None, prep: Preprocessing, hflip: bool = False
    ) -> None:
        self.images = images
        self.y = y
        self.prep = prep
        self.hflip = hflip

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        flip = bool(self.hflip and torch.rand(()) < 0.5)
        x = to_tensor(self.images[i], self.prep, flip)
        y = torch.tensor(self.y[i] if self.y is not None else 0.0, dtype=torch.float32)
        return x, y

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Return a whole batch at once (``DataLoader`` calls this instead of ``__getitem__``).

        The same tensors as ``[self[i] for i in indices]``, with the flips drawn as
        one ``torch.rand(n)`` (the same numbers as ``n`` calls of ``torch.rand(())``),
        in a few batched operations instead of a dozen per image.
        """
        idx = np.asarray(indices, dtype=np.int64)
        imgs = torch.from_numpy(np.array(self.images[idx], dtype=np.float32))
        if self.hflip:
            flip = torch.rand(len(idx)) < 0.5
            if bool(flip.any()):
                imgs[flip] = imgs[flip].flip(-1)
        c = self.prep.channels
        mean = torch.tensor(self.prep.mean, dtype=torch.float32)[:c].view(1, c, 1, 1)
        std = torch.tensor(self.prep.std, dtype=torch.float32)[:c].view(1, c, 1, 1)
        x = (imgs.unsqueeze(1).expand(-1, c, -1, -1) - mean) / std
        y = (
            torch.as_tensor(np.asarray(self.y)[idx], dtype=torch.float32)
            if self.y is not None
            else torch.zeros(len(idx))
        )
        return list(zip(x, y))


class LazyImageDataset(Dataset):
    """Decodes each image when it is accessed (for streaming prediction)."""

    def __init__(
        self, src: ImageSource, prep: Preprocessing, transforms: Sequence[Transform] = ()
    ) -> None:
        self.src = src
        self.prep = prep
        self.transforms = list(transforms)

    def __len__(self) -> int:
        return len(self.src)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        img = prepare_one(self.src, i, self.transforms, self.prep)
        return to_tensor(img, self.prep, False), torch.tensor(0.0)


class AugmentedImageDataset(Dataset):
    """Prepared images (``(n, S, S)``) -> normalised tensors, each image passed through ``augment`` (a 2-D image callable, e.g. :class:`cxrkit.transforms.CXRLight`) on every access."""

    def __init__(
        self, images: np.ndarray, y: np.ndarray | None, prep: Preprocessing, augment: Transform
    ) -> None:
        self.images = images
        self.y = y
        self.prep = prep
        self.augment = augment

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        img = self.augment(np.asarray(self.images[i], dtype=np.float32))
        x = to_tensor(img, self.prep, False)
        y = torch.tensor(self.y[i] if self.y is not None else 0.0, dtype=torch.float32)
        return x, y


class FlippedSource(ImageSource):
    """The images of another source, mirrored left-right as they are loaded (test-time augmentation)."""

    def __init__(self, source: ImageSource) -> None:
        super().__init__(paths=source.paths, array=source.array)

    def load(self, i: int) -> np.ndarray:
        return np.ascontiguousarray(super().load(i)[..., ::-1])

    def subset(self, idx: np.ndarray) -> ImageSource:
        return FlippedSource(super().subset(idx))


def iter_prepared(
    src: ImageSource, prep: Preprocessing, transforms: Sequence[Transform], batch_size: int
) -> Iterator[list[np.ndarray]]:
    """Yield lists of prepared images (decoded, transformed, resized; float32 2-D arrays), ``batch_size`` at a time; with files, decoding of the next two batches runs in a thread pool while the caller computes on this one."""
    threads = resolve_decode_threads() if src.is_paths else 1
    yield from prefetched_chunks(
        lambda i: prepare_one(src, i, transforms, prep), len(src), int(batch_size), threads
    )

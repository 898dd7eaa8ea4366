"""Thumbnails and perceptual hashes of images, computed in one streaming pass.

The pHash and dHash algorithms are those of the ``imagehash`` package
(Buchner), written in NumPy so that they run in batches and for the mirror
image too. Each image is decoded once into a 64 x 64 grayscale thumbnail (the
crop-tolerant similarity of :mod:`cxrkit.validity.duplicates` is computed from
it) and two small resamplings the hashes are taken from. Images are processed
in chunks, so memory grows only with the thumbnails kept (16 KiB per image);
with ``cache_dir`` the results are stored by content and reused.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from scipy.fft import dct
from tqdm.auto import tqdm

from ..errors import DataError, ImageDecodeError
from ..io import map_collecting_errors
from ._thumb_cache import ThumbnailCache, content_key

__all__ = ["ImageHashes", "compute_hashes", "crop_variants", "BASE", "SIDE"]

BASE = 64  # thumbnail side the crops are taken from
SIDE = 24  # side of the compared thumbnails
_PH = 32  # pHash working size
_HS = 8  # hash side (64 bits)
_KEEP = (0.97, 0.93, 0.89)


def _interp(lo: float, hi: float) -> np.ndarray:
    """Bilinear resampling matrix (SIDE x BASE) of the base interval [lo, hi)."""
    c = lo + (np.arange(SIDE) + 0.5) * (hi - lo) / SIDE - 0.5
    c = np.clip(c, 0, BASE - 1)
    i0 = np.floor(c).astype(int)
    i1 = np.minimum(i0 + 1, BASE - 1)
    w = (c - i0).astype(np.float32)
    r = np.zeros((SIDE, BASE), np.float32)
    np.add.at(r, (np.arange(SIDE), i0), 1 - w)
    np.add.at(r, (np.arange(SIDE), i1), w)
    return r


def _crop_matrices() -> np.ndarray:
    spans = [(0.0, float(BASE))]
    for keep in _KEEP:
        n = keep * BASE
        spans += [(0.0, n), ((BASE - n) / 2, (BASE + n) / 2), (BASE - n, float(BASE))]
    return np.stack([_interp(a, b) for a, b in spans])


_R = _crop_matrices()  # (10, SIDE, BASE); variant 0 is the whole image


def _normalise(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=-1, keepdims=True)
    return (x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-6)).astype(np.float32)


def crop_variants(thumbs: np.ndarray) -> np.ndarray:
    """Normalised crops of 64 x 64 thumbnails.

    Parameters
    ----------
    thumbs : ndarray of shape (n, 64, 64)

    Returns
    -------
    ndarray of float32, shape (n, 100, 576)
        Zero-mean, unit-norm 24 x 24 crops (kept fraction 1, 0.97, 0.93 or
        0.89 of each side, anchored at the start, centre or end); variant 0 is
        the whole image.
    """
    t = np.matmul(_R[None], thumbs[:, None])  # (n, 10, SIDE, BASE)
    v = np.matmul(t[:, :, None], _R.transpose(0, 2, 1)[None, None])  # (n, 10, 10, SIDE, SIDE)
    return _normalise(v.reshape(len(thumbs), -1, SIDE * SIDE))


@dataclass
class ImageHashes:
    """Perceptual hashes and thumbnails of ``n`` images.

    Attributes
    ----------
    ids : ndarray of shape (n,)
    phash, dhash : ndarray of bool, shape (n, 64)
        Hashes of the images as given (``imagehash.phash`` / ``dhash`` algorithms).
    phash_flip : ndarray of bool, shape (n, 64)
        pHash of the horizontally mirrored images.
    thumbs : ndarray of float32, shape (n, 64, 64)
        Grayscale thumbnails the crop-tolerant similarity is computed from.
    """

    ids: np.ndarray
    phash: np.ndarray
    dhash: np.ndarray
    phash_flip: np.ndarray
    thumbs: np.ndarray

    def __len__(self) -> int:
        return len(self.ids)

    def hex(self, kind: str = "phash") -> list[str]:
        """Hashes as 16-digit hex strings (the form ``str(imagehash.phash(img))`` prints)."""
        packed = np.packbits(getattr(self, kind), axis=1)
        return [row.tobytes().hex() for row in packed]

    def _variants(self) -> np.ndarray:
        """(n, 100, SIDE*SIDE) normalised crops; variant 0 is the whole image."""
        return crop_variants(self.thumbs)


def _to_pil(item: Any, index: int) -> Image.Image:
    if isinstance(item, (str, os.PathLike)):
        try:
            img: Image.Image = Image.open(item)
            img.draft("L", (2 * BASE, 2 * BASE))  # JPEG: decode at reduced scale
            if img.mode not in ("L", "F"):
                img = img.convert("F") if img.mode.startswith("I") else img.convert("L")
            img.load()
            return img
        except FileNotFoundError:
            raise ImageDecodeError(f"Image '{os.fspath(item)}' does not exist.") from None
        except Exception as exc:
            raise ImageDecodeError(
                f"Image '{os.fspath(item)}' could not be decoded ({type(exc).__name__}: {exc})."
            ) from None
    arr = _as_gray_array(item, index)
    if arr.dtype == np.uint8:
        return Image.fromarray(arr, mode="L")
    return Image.fromarray(np.ascontiguousarray(arr, dtype=np.float32), mode="F")


def _as_gray_array(item: Any, index: int) -> np.ndarray:
    arr = np.asarray(item)
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        arr = arr[..., :3].mean(axis=-1)
    if arr.ndim != 2 or arr.size == 0:
        raise DataError(
            f"Image {index} has shape {arr.shape}; expected a 2-D grayscale array or a path."
        )
    return arr


def _small(item: Any, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode one image into its thumbnail and the pHash / dHash resamplings."""
    img = _to_pil(item, index)
    lz = Image.Resampling.LANCZOS
    base = np.asarray(img.resize((BASE, BASE), lz), dtype=np.float32)
    p = np.asarray(img.resize((_PH, _PH), lz), dtype=np.float64)
    d = np.asarray(img.resize((_HS + 1, _HS), lz), dtype=np.float64)
    return base, p, d


def _phash_bits(small: np.ndarray) -> np.ndarray:
    coef = dct(dct(small, axis=1), axis=2)[:, :_HS, :_HS].reshape(len(small), -1)
    return coef > np.median(coef, axis=1, keepdims=True)


def _dhash_bits(small: np.ndarray) -> np.ndarray:
    return (small[:, :, 1:] > small[:, :, :-1]).reshape(len(small), -1)


def _images_list(images: Any) -> Any:
    """Return the images as an indexable sequence (a sequence is read lazily, not copied)."""
    if hasattr(images, "to_numpy"):
        images = images.to_numpy()
    if isinstance(images, (str, os.PathLike)):
        raise DataError(f"images is a single path ({images!r}); pass a list of paths or arrays.")
    if isinstance(images, np.ndarray) and images.dtype != object and images.ndim != 3:
        raise DataError(
            f"images has shape {images.shape}; expected (n, H, W) grayscale images or a list "
            "of paths."
        )
    if isinstance(images, (np.ndarray, Sequence)):
        return images  # indexed lazily: a sequence may decode or generate on access
    return list(images)


def _ids(items: Sequence[Any], ids: Sequence[Any] | None) -> np.ndarray:
    n = len(items)
    if ids is None:
        return np.asarray(
            [
                os.fspath(items[i]) if isinstance(items[i], (str, os.PathLike)) else i
                for i in range(n)
            ],
            dtype=object,
        )
    ids_arr = np.asarray(list(ids), dtype=object)
    if len(ids_arr) != n:
        raise DataError(f"ids has {len(ids_arr)} entries but there are {n} images.")
    return ids_arr


class _Stream:
    """Output arrays of :func:`compute_hashes`, filled one chunk at a time."""

    def __init__(self, n: int, cache: ThumbnailCache | None) -> None:
        self.thumbs = np.empty((n, BASE, BASE), np.float32)
        self.bits = np.empty((3, n, _HS * _HS), bool)  # phash, dhash, phash_flip
        self.cache = cache
        self.decoded = 0

    def chunk(self, items: Sequence[Any], start: int, stop: int, threads: int) -> list[str]:
        """Fill rows ``start:stop``; return the messages of images that failed."""
        idx = list(range(start, stop))
        keys: list[str | None] = [None] * len(idx)
        todo = idx
        if self.cache is not None:
            keys = [content_key(items[i]) for i in idx]
            found = self.cache.get_many([k for k in keys if k is not None])
            todo = []
            for i, k in zip(idx, keys):
                rec = found.get(k) if k is not None else None
                if rec is None:
                    todo.append(i)
                else:
                    self.thumbs[i], self.bits[:, i] = rec
        m = len(todo)
        ph = np.empty((m, _PH, _PH))
        dh = np.empty((m, _HS, _HS + 1))

        def work(t: int) -> None:
            self.thumbs[todo[t]], ph[t], dh[t] = _small(items[todo[t]], todo[t])

        errors = map_collecting_errors(work, m, threads, (ImageDecodeError, DataError))
        self.decoded += m
        if m and not errors:
            rows = np.asarray(todo)
            self.bits[0, rows] = _phash_bits(ph)
            self.bits[1, rows] = _dhash_bits(dh)
            self.bits[2, rows] = _phash_bits(ph[:, :, ::-1])
            if self.cache is not None:
                pos = {i: p for p, i in enumerate(idx)}
                new = [(keys[pos[i]], i) for i in todo if keys[pos[i]] is not None]
                self.cache.put_many(
                    [(k, self.thumbs[i], self.bits[:, i]) for k, i in new if k is not None]
                )
        return errors


def compute_hashes(
    images: Any,
    ids: Sequence[Any] | None = None,
    *,
    n_threads: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    chunk_size: int = 1024,
    progress: bool | None = None,
) -> ImageHashes:
    """pHash, dHash and thumbnails of each image, in one streaming pass.

    Parameters
    ----------
    images : sequence of paths, or array of shape (n, H, W), or list of 2-D arrays
        Any sequence is indexed one chunk at a time, so a lazy sequence never
        holds more than ``chunk_size`` decoded images.
    ids : sequence of shape (n,), optional
        Names used in reports; default: the paths, or ``0..n-1`` for arrays.
    n_threads : int, optional
        Decoding threads for paths (default: up to 8).
    cache_dir : path, optional
        Folder of a cache keyed by the content of each file (or array): images
        seen before are not decoded again. Created when absent.
    chunk_size : int, default=1024
        Images decoded (and looked up in the cache) at a time.
    progress : bool, optional
        Show a tqdm progress bar; default: only on a terminal.

    Returns
    -------
    ImageHashes

    Raises
    ------
    ImageDecodeError
        Listing every image that could not be read (up to 10 shown).
    """
    items = _images_list(images)
    n = len(items)
    ids_arr = _ids(items, ids)
    is_paths = n > 0 and isinstance(items[0], (str, os.PathLike))
    threads = n_threads or (min(8, os.cpu_count() or 1) if is_paths else 1)
    cache = ThumbnailCache(cache_dir) if cache_dir is not None else None
    out = _Stream(n, cache)
    errors: list[str] = []
    disable = None if progress is None else not progress
    try:
        with tqdm(total=n, desc="hashing images", unit="img", disable=disable) as bar:
            for start in range(0, n, max(1, int(chunk_size))):
                stop = min(n, start + max(1, int(chunk_size)))
                errors += out.chunk(items, start, stop, threads)
                bar.update(stop - start)
    finally:
        if cache is not None:
            cache.close()
    if errors:
        more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise ImageDecodeError(
            f"{len(errors)} of {n} images could not be hashed:\n  "
            + "\n  ".join(errors[:10])
            + more
            + "\nRemove them (or load the dataset with on_error='skip') and try again."
        )
    return ImageHashes(ids_arr, out.bits[0], out.bits[1], out.bits[2], out.thumbs)

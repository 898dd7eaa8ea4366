"""Near-duplicate images: crop-tolerant thumbnail matching plus perceptual hashes.

Two measures are computed for every image:

- **Perceptual hashes** (pHash and dHash, 64 bits each), with the algorithms of
  the ``imagehash`` package (Buchner) written in NumPy so that they run in
  batches and for the mirror image too. They are reported as distances and can
  be exported (:meth:`ImageHashes.hex`).
- A **crop-tolerant similarity**: the Pearson correlation of 24 x 24
  thumbnails, maximised over 100 crops of the other image (kept fraction 1,
  0.97, 0.93 or 0.89 of each side, anchored at the start, centre or end).

Two images are near-duplicates when the similarity is at least ``threshold``
(default 0.96). Global hashes alone cannot separate lightly cropped copies from
different radiographs, which all look alike at 8 x 8: on cxr-dev, images of
different patients come as close as pHash distance 4 of 64 while a 5 % crop of
one image moves it by up to 22. The thumbnail similarity separates them: copies
re-encoded as JPEG (quality 70), resized or cropped by up to 10 % score >= 0.96,
while distinct images of different patients score <= 0.95 (measured on cxr-dev).

Horizontal flips count as duplicates by default (``flip=True``): a mirrored
copy is the same radiograph of the same patient, and with flip augmentation in
training it is literally a training image. The ``flipped`` column says which
pairs matched mirrored. Pass ``flip=False`` to ignore mirrored copies.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from scipy.fft import dct

from ..errors import DataError, ImageDecodeError
from ..io._pool import map_collecting_errors

__all__ = [
    "ImageHashes",
    "compute_hashes",
    "find_near_duplicates",
    "cross_duplicates",
    "merge_duplicate_groups",
    "SIMILARITY_THRESHOLD",
]

SIMILARITY_THRESHOLD = 0.96
_BASE = 64  # thumbnail side the crops are taken from
_T = 24  # side of the compared thumbnails
_PH = 32  # pHash working size
_HS = 8  # hash side (64 bits)
_KEEP = (0.97, 0.93, 0.89)


def _interp(lo: float, hi: float) -> np.ndarray:
    """Bilinear resampling matrix (_T x _BASE) of the base interval [lo, hi)."""
    c = lo + (np.arange(_T) + 0.5) * (hi - lo) / _T - 0.5
    c = np.clip(c, 0, _BASE - 1)
    i0 = np.floor(c).astype(int)
    i1 = np.minimum(i0 + 1, _BASE - 1)
    w = (c - i0).astype(np.float32)
    r = np.zeros((_T, _BASE), np.float32)
    np.add.at(r, (np.arange(_T), i0), 1 - w)
    np.add.at(r, (np.arange(_T), i1), w)
    return r


def _crop_matrices() -> np.ndarray:
    spans = [(0.0, float(_BASE))]
    for keep in _KEEP:
        n = keep * _BASE
        spans += [(0.0, n), ((_BASE - n) / 2, (_BASE + n) / 2), (_BASE - n, float(_BASE))]
    return np.stack([_interp(a, b) for a, b in spans])


_R = _crop_matrices()  # (10, _T, _BASE); variant 0 is the whole image


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
        """(n, 100, _T*_T) normalised crops; variant 0 is the whole image."""
        t = np.matmul(_R[None], self.thumbs[:, None])  # (n, 10, _T, _BASE)
        v = np.matmul(t[:, :, None], _R.transpose(0, 2, 1)[None, None])  # (n, 10, 10, _T, _T)
        v = v.reshape(len(self), -1, _T * _T)
        return _normalise(v)


def _normalise(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=-1, keepdims=True)
    return (x / (np.linalg.norm(x, axis=-1, keepdims=True) + 1e-6)).astype(np.float32)


def _to_pil(item: Any, index: int) -> Image.Image:
    if isinstance(item, (str, os.PathLike)):
        try:
            img: Image.Image = Image.open(item)
            img.draft("L", (2 * _BASE, 2 * _BASE))  # JPEG: decode at reduced scale
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
    arr = np.asarray(item)
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):
        arr = arr[..., :3].mean(axis=-1)
    if arr.ndim != 2 or arr.size == 0:
        raise DataError(
            f"Image {index} has shape {arr.shape}; expected a 2-D grayscale array or a path."
        )
    if arr.dtype == np.uint8:
        return Image.fromarray(arr, mode="L")
    return Image.fromarray(np.ascontiguousarray(arr, dtype=np.float32), mode="F")


def _small(item: Any, index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    img = _to_pil(item, index)
    lz = Image.Resampling.LANCZOS
    base = np.asarray(img.resize((_BASE, _BASE), lz), dtype=np.float32)
    p = np.asarray(img.resize((_PH, _PH), lz), dtype=np.float64)
    d = np.asarray(img.resize((_HS + 1, _HS), lz), dtype=np.float64)
    return base, p, d


def _phash_bits(small: np.ndarray) -> np.ndarray:
    coef = dct(dct(small, axis=1), axis=2)[:, :_HS, :_HS].reshape(len(small), -1)
    return coef > np.median(coef, axis=1, keepdims=True)


def _dhash_bits(small: np.ndarray) -> np.ndarray:
    return (small[:, :, 1:] > small[:, :, :-1]).reshape(len(small), -1)


def _images_list(images: Any) -> list[Any]:
    if hasattr(images, "to_numpy"):
        images = images.to_numpy()
    if isinstance(images, (str, os.PathLike)):
        raise DataError(f"images is a single path ({images!r}); pass a list of paths or arrays.")
    if isinstance(images, np.ndarray) and images.dtype != object and images.ndim != 3:
        raise DataError(
            f"images has shape {images.shape}; expected (n, H, W) grayscale images or a list "
            "of paths."
        )
    return list(images)


def compute_hashes(
    images: Any, ids: Sequence[Any] | None = None, *, n_threads: int | None = None
) -> ImageHashes:
    """pHash, dHash and thumbnails of each image.

    Parameters
    ----------
    images : sequence of paths, or array of shape (n, H, W), or list of 2-D arrays
    ids : sequence of shape (n,), optional
        Names used in reports; default: the paths, or ``0..n-1`` for arrays.
    n_threads : int, optional
        Decoding threads for paths (default: up to 8).

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
    if ids is None:
        ids_arr = np.asarray(
            [os.fspath(v) if isinstance(v, (str, os.PathLike)) else i for i, v in enumerate(items)],
            dtype=object,
        )
    else:
        ids_arr = np.asarray(list(ids), dtype=object)
        if len(ids_arr) != n:
            raise DataError(f"ids has {len(ids_arr)} entries but there are {n} images.")
    base = np.empty((n, _BASE, _BASE), np.float32)
    ph = np.empty((n, _PH, _PH))
    dh = np.empty((n, _HS, _HS + 1))

    def work(i: int) -> None:
        base[i], ph[i], dh[i] = _small(items[i], i)

    is_paths = n > 0 and isinstance(items[0], (str, os.PathLike))
    threads = n_threads or (min(8, os.cpu_count() or 1) if is_paths else 1)
    errors = map_collecting_errors(work, n, threads, (ImageDecodeError, DataError))
    if errors:
        more = f"\n  ... and {len(errors) - 10} more" if len(errors) > 10 else ""
        raise ImageDecodeError(
            f"{len(errors)} of {n} images could not be hashed:\n  "
            + "\n  ".join(errors[:10])
            + more
            + "\nRemove them (or load the dataset with on_error='skip') and try again."
        )
    return ImageHashes(ids_arr, _phash_bits(ph), _dhash_bits(dh), _phash_bits(ph[:, :, ::-1]), base)


def _hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a8, b8 = a.astype(np.float32), b.astype(np.float32)
    return (a8 @ (1 - b8).T + (1 - a8) @ b8.T).astype(np.int64)


def _whole_vs_crops(fa: np.ndarray, vb: np.ndarray, block: int = 512) -> np.ndarray:
    """``out[i, j] = max_k corr(whole image a_i, crop k of b_j)``."""
    nb, k, d = vb.shape
    out = np.empty((len(fa), nb), np.float32)
    for t in range(0, nb, block):
        part = fa @ vb[t : t + block].reshape(-1, d).T
        out[:, t : t + block] = part.reshape(len(fa), -1, k).max(-1)
    return out


def _flip_variants(v: np.ndarray) -> np.ndarray:
    return v.reshape(*v.shape[:2], _T, _T)[..., ::-1].reshape(v.shape).copy()


def _pairs(
    ha: ImageHashes, hb: ImageHashes, same: bool, threshold: float, flip: bool
) -> pd.DataFrame:
    # a pair's similarity: max(corr(whole a, crop of b), corr(crop of a, whole b))
    va = ha._variants()
    vb = va if same else hb._variants()
    a_whole = _whole_vs_crops(va[:, 0], vb)
    b_whole = a_whole.T if same else _whole_vs_crops(vb[:, 0], va).T
    sim = np.maximum(a_whole, b_whole)
    flipped = np.zeros(sim.shape, bool)
    if flip:  # corr(crop of a, mirrored whole b) = corr(mirrored crop of a, whole b)
        vbf = _flip_variants(vb)
        af = _whole_vs_crops(va[:, 0], vbf)
        bf = af.T if same else _whole_vs_crops(vbf[:, 0], va).T
        sim_f = np.maximum(af, bf)
        flipped = sim_f > sim
        sim = np.maximum(sim, sim_f)
    hit = sim >= threshold
    if same:
        hit &= np.triu(np.ones(hit.shape, bool), 1)
    i, j = np.nonzero(hit)
    p = _hamming(ha.phash[i], hb.phash[j]).diagonal() if len(i) else np.zeros(0, np.int64)
    pf = _hamming(ha.phash[i], hb.phash_flip[j]).diagonal() if len(i) else p
    d = _hamming(ha.dhash[i], hb.dhash[j]).diagonal() if len(i) else p
    fl = flipped[i, j]
    out = pd.DataFrame(
        {
            "i": i.astype(np.int64),
            "j": j.astype(np.int64),
            "id_a": ha.ids[i],
            "id_b": hb.ids[j],
            "similarity": np.round(sim[i, j].astype(np.float64), 4),
            "phash_distance": np.where(fl, pf, p).astype(np.int64),
            "dhash_distance": np.where(fl, -1, d).astype(np.int64),
            "flipped": fl,
        }
    )
    return out.sort_values(
        ["similarity", "i", "j"], ascending=[False, True, True], ignore_index=True
    )


def _check_threshold(threshold: float) -> None:
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float, np.floating))
        or not 0 < threshold <= 1
    ):
        raise DataError(
            "The 'threshold' parameter must be a float in the range (0, 1] (the smallest "
            f"thumbnail correlation counted as a duplicate). Got {threshold!r} instead."
        )


def find_near_duplicates(
    images: Any,
    ids: Sequence[Any] | None = None,
    *,
    threshold: float = SIMILARITY_THRESHOLD,
    flip: bool = True,
) -> pd.DataFrame:
    """Pairs of near-identical images within one set.

    Parameters
    ----------
    images : sequence of paths, array of shape (n, H, W), or ImageHashes
    ids : sequence, optional
        Names for the images (default: paths or positions).
    threshold : float, default=0.96
        Smallest crop-tolerant thumbnail correlation counted as a duplicate.
    flip : bool, default=True
        Also compare each image with the mirror image of the other.

    Returns
    -------
    pandas.DataFrame
        One row per pair ``i < j``, most similar first: ``i``, ``j``
        (positions), ``id_a``, ``id_b``, ``similarity``, ``phash_distance`` and
        ``dhash_distance`` (Hamming, of 64 bits, in the matched orientation;
        dHash is not computed mirrored and shows -1 for flipped pairs),
        ``flipped`` (the match is mirrored).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> imgs = rng.integers(0, 255, (3, 64, 64), dtype=np.uint8)
    >>> imgs[2] = imgs[0][:, ::-1]
    >>> find_near_duplicates(imgs)[["i", "j", "flipped"]].values.tolist()
    [[0, 2, True]]
    """
    _check_threshold(threshold)
    h = images if isinstance(images, ImageHashes) else compute_hashes(images, ids)
    return _pairs(h, h, True, threshold, flip)


def cross_duplicates(
    train: Any,
    test: Any,
    *,
    train_ids: Sequence[Any] | None = None,
    test_ids: Sequence[Any] | None = None,
    threshold: float = SIMILARITY_THRESHOLD,
    flip: bool = True,
) -> pd.DataFrame:
    """Pairs (training image, test image) that are near-duplicates.

    Parameters
    ----------
    train, test : sequence of paths, array of shape (n, H, W), or ImageHashes
    train_ids, test_ids : sequence, optional
    threshold, flip
        As in :func:`find_near_duplicates`.

    Returns
    -------
    pandas.DataFrame
        Columns as in :func:`find_near_duplicates`; ``i``/``id_a`` index the
        training set and ``j``/``id_b`` the test set.
    """
    _check_threshold(threshold)
    ha = train if isinstance(train, ImageHashes) else compute_hashes(train, train_ids)
    hb = test if isinstance(test, ImageHashes) else compute_hashes(test, test_ids)
    return _pairs(ha, hb, False, threshold, flip)


def merge_duplicate_groups(groups: Any, pairs: pd.DataFrame) -> np.ndarray:
    """Unite patients whose images are near-duplicates into one group.

    Near-duplicates under different patient ids are usually one patient
    entered twice; grouping them keeps the copies on the same side of every
    split.

    Parameters
    ----------
    groups : array-like of shape (n,)
        Patient ids of the images that ``pairs`` indexes (columns ``i``, ``j``).
    pairs : DataFrame
        Output of :func:`find_near_duplicates`.

    Returns
    -------
    ndarray of shape (n,)
        For every image, the smallest (as text) patient id of its merged group;
        patients without duplicates keep their id.
    """
    g = np.asarray(groups.to_numpy() if hasattr(groups, "to_numpy") else groups, dtype=object)
    parent: dict[Any, Any] = {}

    def find(a: Any) -> Any:
        parent.setdefault(a, a)
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for i, j in zip(pairs["i"].to_numpy(), pairs["j"].to_numpy()):
        if i >= len(g) or j >= len(g):
            raise DataError(f"pairs refers to image {max(i, j)} but groups has {len(g)} entries.")
        ra, rb = find(g[i]), find(g[j])
        if ra != rb:
            lo, hi = sorted((ra, rb), key=str)
            parent[hi] = lo
    return np.asarray([find(v) if v in parent else v for v in g], dtype=object)

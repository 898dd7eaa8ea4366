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

By default (``method="index"``) candidate pairs come from a radius index over
projected thumbnails (:mod:`cxrkit.validity._dup_index`) and only those are
verified with the exact crop-tolerant correlation, so every reported pair is
one the exhaustive comparison (``method="exhaustive"``, every pair against
every crop, quadratic time) reports too. Two index backends exist
(:mod:`cxrkit.validity._radius_index`): ``"kdtree"`` (SciPy; its candidates are
a superset of the true pairs, so it finds exactly the exhaustive pairs) and
``"hnsw"`` (a faiss HNSW graph; approximate nearest neighbours, many times
faster on large sets; on cxr-dev and on the 5,000-image B7 benchmark set it
found every exhaustive pair). ``"index"`` is ``"hnsw"`` when faiss is installed
(``pip install "cxrkit[scale]"``) and ``"kdtree"`` otherwise. Timings and
recall are measured in ``benchmarks/b7_duplicates_scale.py``. Duplicate pairs
are grouped into clusters as the connected components of the pair graph.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from ..errors import DataError
from ._dup_index import indexed_similarities
from ._radius_index import resolve_backend
from ._thumbnails import SIDE, ImageHashes, compute_hashes

__all__ = [
    "ImageHashes",
    "compute_hashes",
    "find_near_duplicates",
    "cross_duplicates",
    "duplicate_clusters",
    "merge_duplicate_groups",
    "SIMILARITY_THRESHOLD",
]

SIMILARITY_THRESHOLD = 0.96
Method = Literal["index", "kdtree", "hnsw", "exhaustive"]
_METHODS = ("index", "kdtree", "hnsw", "exhaustive")


def _hamming_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distance of ``a[k]`` and ``b[k]`` for every row ``k``."""
    return np.count_nonzero(a != b, axis=1).astype(np.int64)


def _whole_vs_crops(fa: np.ndarray, vb: np.ndarray, block: int = 512) -> np.ndarray:
    """``out[i, j] = max_k corr(whole image a_i, crop k of b_j)``."""
    nb, k, d = vb.shape
    out = np.empty((len(fa), nb), np.float32)
    for t in range(0, nb, block):
        part = fa @ vb[t : t + block].reshape(-1, d).T
        out[:, t : t + block] = part.reshape(len(fa), -1, k).max(-1)
    return out


def _flip_variants(v: np.ndarray) -> np.ndarray:
    return v.reshape(*v.shape[:2], SIDE, SIDE)[..., ::-1].reshape(v.shape).copy()


def _exhaustive_similarities(
    ha: ImageHashes, hb: ImageHashes, same: bool, threshold: float, flip: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every pair against every crop: ``i, j, similarity, flipped`` of the hits."""
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
    return i.astype(np.int64), j.astype(np.int64), sim[i, j], flipped[i, j]


def _pair_frame(
    ha: ImageHashes,
    hb: ImageHashes,
    i: np.ndarray,
    j: np.ndarray,
    sim: np.ndarray,
    fl: np.ndarray,
) -> pd.DataFrame:
    p = _hamming_rows(ha.phash[i], hb.phash[j])
    pf = _hamming_rows(ha.phash[i], hb.phash_flip[j])
    d = _hamming_rows(ha.dhash[i], hb.dhash[j])
    out = pd.DataFrame(
        {
            "i": i.astype(np.int64),
            "j": j.astype(np.int64),
            "id_a": ha.ids[i],
            "id_b": hb.ids[j],
            "similarity": np.round(sim.astype(np.float64), 4),
            "phash_distance": np.where(fl, pf, p).astype(np.int64),
            "dhash_distance": np.where(fl, -1, d).astype(np.int64),
            "flipped": fl.astype(bool),
        }
    )
    return out.sort_values(
        ["similarity", "i", "j"], ascending=[False, True, True], ignore_index=True
    )


def _pairs(
    ha: ImageHashes,
    hb: ImageHashes,
    same: bool,
    threshold: float,
    flip: bool,
    method: str,
    progress: bool | None,
) -> pd.DataFrame:
    if method == "exhaustive":
        found = _exhaustive_similarities(ha, hb, same, threshold, flip)
    else:
        backend = resolve_backend(method)
        found = indexed_similarities(
            ha, hb, same, threshold, flip, backend=backend, progress=progress
        )
    return _pair_frame(ha, hb, *found)


def _check(threshold: float, method: str) -> None:
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, (int, float, np.floating))
        or not 0 < threshold <= 1
    ):
        raise DataError(
            "The 'threshold' parameter must be a float in the range (0, 1] (the smallest "
            f"thumbnail correlation counted as a duplicate). Got {threshold!r} instead."
        )
    if not isinstance(method, str) or method not in _METHODS:
        raise DataError(
            "The 'method' parameter must be a str among {'index', 'kdtree', 'hnsw', "
            f"'exhaustive'}}. Got {method!r} instead."
        )
    resolve_backend(method)  # "hnsw" without faiss: fail before hashing


def find_near_duplicates(
    images: Any,
    ids: Sequence[Any] | None = None,
    *,
    threshold: float = SIMILARITY_THRESHOLD,
    flip: bool = True,
    method: Method = "index",
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
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
    method : {"index", "kdtree", "hnsw", "exhaustive"}, default="index"
        How candidate pairs are found before the exact check. ``"kdtree"``
        verifies only the candidates of a k-d tree over projected thumbnails
        (the exhaustive pairs exactly); ``"hnsw"`` those of a faiss HNSW graph
        (approximate neighbours: much faster on large sets, needs
        ``pip install "cxrkit[scale]"``); ``"index"`` is ``"hnsw"`` when faiss
        is installed, else ``"kdtree"``; ``"exhaustive"`` compares every pair
        (quadratic time).
    cache_dir : path, optional
        Thumbnail cache keyed by content (see :func:`compute_hashes`).
    progress : bool, optional
        Progress bars; default: only on a terminal.

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
    _check(threshold, method)
    h = (
        images
        if isinstance(images, ImageHashes)
        else compute_hashes(images, ids, cache_dir=cache_dir, progress=progress)
    )
    return _pairs(h, h, True, threshold, flip, method, progress)


def cross_duplicates(
    train: Any,
    test: Any,
    *,
    train_ids: Sequence[Any] | None = None,
    test_ids: Sequence[Any] | None = None,
    threshold: float = SIMILARITY_THRESHOLD,
    flip: bool = True,
    method: Method = "index",
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Pairs (training image, test image) that are near-duplicates.

    Parameters
    ----------
    train, test : sequence of paths, array of shape (n, H, W), or ImageHashes
    train_ids, test_ids : sequence, optional
    threshold, flip, method, cache_dir, progress
        As in :func:`find_near_duplicates`.

    Returns
    -------
    pandas.DataFrame
        Columns as in :func:`find_near_duplicates`; ``i``/``id_a`` index the
        training set and ``j``/``id_b`` the test set.
    """
    _check(threshold, method)
    kw: dict[str, Any] = {"cache_dir": cache_dir, "progress": progress}
    ha = train if isinstance(train, ImageHashes) else compute_hashes(train, train_ids, **kw)
    hb = test if isinstance(test, ImageHashes) else compute_hashes(test, test_ids, **kw)
    return _pairs(ha, hb, False, threshold, flip, method, progress)


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected-component label of each of ``n`` nodes joined by edges ``a - b``."""
    graph = coo_matrix((np.ones(len(a), np.int8), (a, b)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _pair_columns(pairs: pd.DataFrame, n: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    i = pairs["i"].to_numpy(np.int64)
    j = pairs["j"].to_numpy(np.int64)
    if len(i) and (max(i.max(), j.max()) >= n or min(i.min(), j.min()) < 0):
        bad = int(max(i.max(), j.max()))
        raise DataError(f"pairs refers to image {bad} but {what} has {n} entries.")
    return i, j


def duplicate_clusters(pairs: pd.DataFrame, n_images: int) -> np.ndarray:
    """Cluster label of every image: images linked by duplicate pairs share one.

    Parameters
    ----------
    pairs : DataFrame
        Output of :func:`find_near_duplicates` (columns ``i``, ``j``).
    n_images : int
        Number of images the pairs index.

    Returns
    -------
    ndarray of int64, shape (n_images,)
        Labels ``0..k-1`` numbered in order of first image; an image without
        duplicates is a cluster of its own.
    """
    i, j = _pair_columns(pairs, n_images, "n_images")
    labels = _components(n_images, i, j)
    _, first = np.unique(labels, return_index=True)
    order = np.empty(len(first), np.int64)
    order[np.argsort(first)] = np.arange(len(first))
    return order[labels]


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
    i, j = _pair_columns(pairs, len(g), "groups")
    names, code = np.unique(g.astype(str), return_inverse=True)
    labels = _components(len(names), code[i], code[j])
    first_name: dict[int, str] = {}  # label -> smallest (as text) patient id; names are sorted
    originals: dict[str, Any] = {}
    for k, lab in enumerate(labels):
        first_name.setdefault(lab, names[k])
    for v, c in zip(g, code):
        originals.setdefault(names[c], v)
    return np.asarray([originals[first_name[labels[c]]] for c in code], dtype=object)

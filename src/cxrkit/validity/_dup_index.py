"""Candidate near-duplicate pairs from a radius index over projected thumbnails.

The crop-tolerant similarity of two images is the largest correlation between
the whole (24 x 24) thumbnail of one and one of the 100 crops of the other,
either way round (and mirrored). Each crop and whole thumbnail is a zero-mean
vector of norm at most 1, so a correlation of at least ``t`` means a Euclidean
distance of at most ``sqrt(2 - 2 t)``. An orthogonal projection never
lengthens a distance, so every pair that reaches ``t`` is also within that
radius after projecting onto a few principal components. The search
therefore

1. projects the whole thumbnails (and their mirror images) onto the leading
   principal components and indexes them (:mod:`cxrkit.validity._radius_index`:
   an exact k-d tree, or an HNSW graph from faiss);
2. streams the crops of every image, a chunk at a time, through the same
   projection and collects the whole thumbnails within the radius (with the
   k-d tree a superset of the true pairs: nothing is missed; with HNSW nearly
   so, see that module);
3. computes the exact correlations of those candidates only, so that every
   pair reported reaches the threshold exactly as in the exhaustive method.

Memory is the thumbnails plus one chunk of crops. The time is one index query
per crop plus the exact check of the candidates; how many candidates a crop
gets depends on how much of the thumbnails' variance the leading components
hold (much for radiographs, little for noise-like images, where the search
tends towards the exhaustive cost).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.decomposition import PCA
from tqdm.auto import tqdm

from ._radius_index import RadiusIndex, build_index
from ._thumbnails import _R, SIDE, ImageHashes, _normalise, crop_variants

__all__ = ["indexed_similarities", "whole_vectors"]

_N_COMPONENTS = 16
_PCA_SAMPLE = 20_000
_EPS = 1e-3  # slack of the radius for float32 rounding


def whole_vectors(thumbs: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Normalised whole 24 x 24 thumbnails (crop variant 0), shape (n, 576)."""
    out = np.empty((len(thumbs), SIDE * SIDE), np.float32)
    for s in range(0, len(thumbs), chunk):
        t = np.matmul(np.matmul(_R[0], thumbs[s : s + chunk]), _R[0].T)
        out[s : s + chunk] = _normalise(t.reshape(len(t), -1))
    return out


def _mirror(w: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(w.reshape(-1, SIDE, SIDE)[..., ::-1].reshape(w.shape))


def _basis(wholes: list[np.ndarray]) -> np.ndarray:
    """Orthonormal rows spanning the leading principal components of the wholes."""
    x = np.concatenate(wholes)
    if len(x) > _PCA_SAMPLE:
        x = x[np.random.default_rng(0).choice(len(x), _PCA_SAMPLE, replace=False)]
    k = min(_N_COMPONENTS, len(x), x.shape[1])
    if k < 2:
        return np.eye(SIDE * SIDE, dtype=np.float32)[:1]
    pca = PCA(n_components=k, svd_solver="randomized", random_state=0).fit(x)
    return np.ascontiguousarray(pca.components_, np.float32)


def _directed(
    db: np.ndarray,
    n_db: int,
    index: RadiusIndex,
    basis: np.ndarray,
    crops_of: ImageHashes,
    radius: float,
    chunk: int,
    bar: tqdm,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Exact ``max_k corr(db whole, crop k)`` of every candidate (whole, image).

    Returns positions of the whole's image, of the cropped image, whether the
    whole was mirrored and the correlation.
    """
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    n_var = 100
    for s in range(0, len(crops_of), chunk):
        v = crop_variants(crops_of.thumbs[s : s + chunk])  # (m, 100, 576)
        q = v.reshape(-1, v.shape[-1]) @ basis.T
        rows, pts = index.query(q, radius)
        if len(rows):
            cand = np.unique((rows // n_var) * len(db) + pts)
            img, pts = cand // len(db), cand % len(db)
            parts.append(_exact(db, v, img, pts, s))
        bar.update(len(v))
    if not parts:
        e = np.zeros(0, np.int64)
        return e, e, np.zeros(0, bool), np.zeros(0, np.float32)
    img = np.concatenate([p[0] for p in parts])
    pts = np.concatenate([p[1] for p in parts])
    val = np.concatenate([p[2] for p in parts])
    return pts % n_db, img, pts >= n_db, val


def _exact(
    db: np.ndarray, v: np.ndarray, img: np.ndarray, pts: np.ndarray, offset: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Correlations of candidates (sorted by ``img``): one small product per image."""
    val = np.empty(len(img), np.float32)
    bounds = np.flatnonzero(np.diff(img)) + 1
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, len(img)]):
        val[lo:hi] = (db[pts[lo:hi]] @ v[img[lo]].T).max(axis=1)
    return img + offset, pts, val


def indexed_similarities(
    ha: ImageHashes,
    hb: ImageHashes,
    same: bool,
    threshold: float,
    flip: bool,
    *,
    backend: str = "kdtree",
    chunk: int = 256,
    progress: bool | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pairs at or above ``threshold``, found through the index.

    Parameters
    ----------
    backend : {"kdtree", "hnsw"}, default="kdtree"
        Radius index of the projected whole thumbnails
        (:func:`cxrkit.validity._radius_index.build_index`).

    Returns
    -------
    i, j : ndarray of int64
        Positions in ``ha`` and ``hb`` (``i < j`` when ``same``).
    similarity : ndarray of float32
    flipped : ndarray of bool
        The best match is mirrored.
    """
    radius = float(np.sqrt(max(0.0, 2.0 - 2.0 * threshold))) + _EPS
    sides = [(ha, hb)] if same else [(ha, hb), (hb, ha)]
    wa = whole_vectors(ha.thumbs)
    wb = wa if same else whole_vectors(hb.thumbs)
    basis = _basis([wa] if same else [wa, wb])
    found = []
    total = sum(len(c) for _, c in sides)
    with tqdm(total=total, desc="near-duplicate index", unit="img", disable=_off(progress)) as bar:
        for k, (whole_of, crops_of) in enumerate(sides):
            w = wa if whole_of is ha else wb
            db = np.concatenate([w, _mirror(w)]) if flip else w
            index = build_index(db @ basis.T, backend)
            x, y, fl, val = _directed(db, len(w), index, basis, crops_of, radius, chunk, bar)
            found.append((x, y, fl, val) if k == 0 else (y, x, fl, val))
    return _combine(found, same, threshold)


def _off(progress: bool | None) -> bool | None:
    return None if progress is None else not progress


def _combine(
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    same: bool,
    threshold: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Best straight and mirrored correlation of each pair, both directions merged."""
    i = np.concatenate([f[0] for f in found])
    j = np.concatenate([f[1] for f in found])
    fl = np.concatenate([f[2] for f in found])
    val = np.concatenate([f[3] for f in found])
    if not len(i):
        e = np.zeros(0, np.int64)
        return e, e, np.zeros(0, np.float32), np.zeros(0, bool)
    if same:
        keep = i != j
        i, j, fl, val = np.minimum(i, j)[keep], np.maximum(i, j)[keep], fl[keep], val[keep]
    df = pd.DataFrame({"i": i, "j": j, "f": fl, "v": val})
    best = df.groupby(["i", "j", "f"])["v"].max().unstack("f")
    straight = best[False] if False in best else pd.Series(-np.inf, index=best.index)
    mirrored = best[True] if True in best else pd.Series(-np.inf, index=best.index)
    s = straight.fillna(-np.inf).to_numpy(np.float32)
    m = mirrored.fillna(-np.inf).to_numpy(np.float32)
    sim = np.maximum(s, m)
    hit = sim >= threshold
    ii = best.index.get_level_values("i").to_numpy(np.int64)[hit]
    jj = best.index.get_level_values("j").to_numpy(np.int64)[hit]
    return ii, jj, sim[hit], (m > s)[hit]

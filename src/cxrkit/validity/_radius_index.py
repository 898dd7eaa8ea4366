"""Radius search over projected thumbnails: a k-d tree (SciPy) or an HNSW graph (faiss).

Both backends answer one question for a batch of query vectors: which indexed
points lie within ``radius`` of each query. :mod:`cxrkit.validity._dup_index`
asks it for every crop of every image against the projected whole thumbnails
and verifies the candidates with the exact correlation, so a backend may
return too many candidates (they are discarded) but should miss none.

- ``"kdtree"`` (:class:`scipy.spatial.cKDTree`, ``query_ball_point``) is exact:
  it returns every point within the radius. Its cost per query grows with
  the number of points and with the dimension.
- ``"hnsw"`` (``faiss.IndexHNSWFlat``, Malkov & Yashunin 2018) is a graph of
  nearest neighbours searched greedily: a query asks for its ``k`` nearest
  points, which are then filtered by the radius. A query whose ``k``-th
  neighbour is still inside the radius may have more, and is asked again with
  four times ``k`` until its farthest returned neighbour lies outside (or
  every point is returned). The search itself is approximate (a neighbour can
  be missed when the greedy walk does not reach it), so its recall against
  the k-d tree is measured, not guaranteed: on cxr-dev and on the 5,000-image
  B7 benchmark set it found every pair. Queries cost about log(n) distance
  computations, which is what makes 100,000 images practical.

faiss is an optional dependency (``pip install "cxrkit[scale]"``); it is
imported only when the HNSW backend is built.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
from scipy.spatial import cKDTree

from ..errors import ConfigurationError

__all__ = [
    "BACKENDS",
    "RadiusIndex",
    "KDTreeIndex",
    "HNSWIndex",
    "build_index",
    "faiss_available",
    "resolve_backend",
]

BACKENDS = ("kdtree", "hnsw")
_INSTALL = 'pip install "cxrkit[scale]"'


class RadiusIndex(Protocol):
    """A set of points that can be searched by radius."""

    def query(self, q: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
        """Pairs (row of ``q``, indexed point) within ``radius``, as two int64 arrays."""
        ...


def _import_faiss() -> Any:
    import faiss  # optional dependency: the "scale" extra

    return faiss


def faiss_available() -> bool:
    """Whether faiss can be imported."""
    try:
        _import_faiss()
    except ImportError:
        return False
    return True


def resolve_backend(name: str) -> str:
    """Return the backend ``name`` asks for: ``"index"`` is HNSW when faiss is installed.

    Raises
    ------
    ConfigurationError
        ``"hnsw"`` was asked for and faiss is not installed.
    """
    if name == "index":
        return "hnsw" if faiss_available() else "kdtree"
    if name == "hnsw" and not faiss_available():
        raise ConfigurationError(
            "method='hnsw' needs the package 'faiss-cpu', which is not installed. Install it "
            f"with {_INSTALL} (or pip install faiss-cpu), or pass method='kdtree' (exact, "
            "slower on large sets)."
        )
    return name


class KDTreeIndex:
    """Exact radius search with :class:`scipy.spatial.cKDTree`.

    Parameters
    ----------
    points : ndarray of shape (n, d)
    """

    def __init__(self, points: np.ndarray) -> None:
        self.tree = cKDTree(points)

    def query(self, q: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
        hits = self.tree.query_ball_point(q, radius, workers=-1, return_sorted=False)
        lens = np.fromiter((len(h) for h in hits), np.int64, len(hits))
        if not lens.sum():
            e = np.zeros(0, np.int64)
            return e, e
        rows = np.repeat(np.arange(len(hits), dtype=np.int64), lens)
        return rows, np.concatenate([h for h in hits if h]).astype(np.int64)


class HNSWIndex:
    """Radius search through the ``k`` nearest neighbours in a faiss HNSW graph.

    Parameters
    ----------
    points : ndarray of shape (n, d)
    m : int, default=32
        Links per node of the graph.
    ef_construction : int, default=80
        Breadth of the search that links each added point.
    k : int, default=16
        Neighbours asked for first; queries with ``k`` neighbours inside the
        radius are asked again with ``4 k`` (and so on).
    ef_search : int, default=16
        Breadth of the search of each query (at least ``k``).
    """

    def __init__(
        self,
        points: np.ndarray,
        *,
        m: int = 32,
        ef_construction: int = 80,
        k: int = 16,
        ef_search: int = 16,
    ) -> None:
        faiss = _import_faiss()
        x = np.ascontiguousarray(points, dtype=np.float32)
        self.n = len(x)
        self.k, self.ef_search = k, ef_search
        self.index = faiss.IndexHNSWFlat(x.shape[1], m)
        self.index.hnsw.efConstruction = ef_construction
        if self.n:
            self.index.add(x)

    def query(self, q: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
        r2 = radius * radius  # faiss returns squared L2 distances
        todo = np.arange(len(q), dtype=np.int64)
        q = np.ascontiguousarray(q, dtype=np.float32)
        rows: list[np.ndarray] = []
        pts: list[np.ndarray] = []
        k = self.k
        while len(todo) and self.n:
            kk = min(k, self.n)
            self.index.hnsw.efSearch = max(self.ef_search, kk)
            # k nearest, not range_search: faiss 1.15's HNSW range_search aborts the process
            dist, idx = self.index.search(q[todo], kk)
            inside = (dist <= r2) & (idx >= 0)
            # a query with all kk neighbours inside may have more: ask again with more
            full = inside[:, -1] if kk < self.n else np.zeros(len(todo), bool)
            done = ~full
            r, c = np.nonzero(inside & done[:, None])
            rows.append(todo[r])
            pts.append(idx[r, c].astype(np.int64))
            todo, k = todo[full], 4 * k
        if not rows:
            e = np.zeros(0, np.int64)
            return e, e
        return np.concatenate(rows), np.concatenate(pts)


def build_index(points: np.ndarray, backend: str) -> RadiusIndex:
    """Build a radius index of ``points`` with ``backend`` (``"kdtree"`` or ``"hnsw"``)."""
    if backend == "hnsw":
        return HNSWIndex(points)
    if backend == "kdtree":
        return KDTreeIndex(points)
    raise ConfigurationError(
        f"The 'backend' parameter must be a str among {{'kdtree', 'hnsw'}}. Got {backend!r} "
        "instead."
    )

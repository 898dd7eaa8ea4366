"""Radius index backends: the k-d tree and the HNSW graph return the points within the radius."""

from __future__ import annotations

import numpy as np
import pytest

from cxrkit.errors import ConfigurationError
from cxrkit.validity._radius_index import build_index, faiss_available

BACKENDS = [
    "kdtree",
    pytest.param(
        "hnsw",
        marks=pytest.mark.skipif(
            not faiss_available(), reason="faiss-cpu is not installed (pip install 'cxrkit[scale]')"
        ),
    ),
]


def _brute(points: np.ndarray, q: np.ndarray, radius: float) -> set[tuple[int, int]]:
    d = np.linalg.norm(q[:, None] - points[None], axis=-1)
    return {(int(a), int(b)) for a, b in zip(*np.nonzero(d <= radius))}


@pytest.mark.parametrize("backend", BACKENDS)
def test_returns_exactly_the_points_within_the_radius(backend):
    # groups of 1-4 near copies, far apart (as duplicates among distinct images)
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (150, 8))
    points = np.concatenate([c + rng.normal(0, 0.1, (int(rng.integers(1, 5)), 8)) for c in centres])
    q = np.concatenate([points[::3] + 0.05, rng.normal(0, 3, (50, 8))]).astype(np.float32)
    rows, pts = build_index(points.astype(np.float32), backend).query(q, 0.6)
    got = set(zip(rows.tolist(), pts.tolist()))
    assert len(got) == len(rows), "a pair was returned twice"
    assert got == _brute(points, q, 0.6)
    assert len(got) > len(points) // 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_crowded_ball_is_returned_whole(backend):
    # 200 points within the radius of the query: more than the HNSW's first k neighbours
    rng = np.random.default_rng(1)
    points = np.concatenate([rng.normal(0, 0.01, (200, 4)), rng.normal(5, 1, (300, 4))])
    rows, pts = build_index(points.astype(np.float32), backend).query(np.zeros((2, 4)), 0.2)
    assert sorted(pts[rows == 0].tolist()) == list(range(200))
    assert sorted(pts[rows == 1].tolist()) == list(range(200))


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_results(backend):
    points = np.zeros((3, 4), np.float32)
    rows, pts = build_index(points, backend).query(np.full((2, 4), 9.0, np.float32), 0.5)
    assert rows.dtype == pts.dtype == np.int64 and len(rows) == len(pts) == 0


def test_unknown_backend_is_rejected():
    with pytest.raises(
        ConfigurationError,
        match=r"^The 'backend' parameter must be a str among \{'kdtree', 'hnsw'\}\. "
        r"Got 'ball' instead\.$",
    ):
        build_index(np.zeros((2, 2)), "ball")

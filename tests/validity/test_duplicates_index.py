"""The indexed near-duplicate search gives the exhaustive answers; thumbnails are cached."""

from __future__ import annotations

import io
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image, ImageDraw

from cxrkit.errors import ConfigurationError, DataError
from cxrkit.validity import (
    _radius_index,
    _thumbnails,
    compute_hashes,
    cross_duplicates,
    duplicate_clusters,
    find_near_duplicates,
)


def _scene(seed: int, side: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    bg = Image.fromarray(rng.integers(40, 200, (4, 4), dtype=np.uint8)).resize(
        (side, side), Image.Resampling.BICUBIC
    )
    draw = ImageDraw.Draw(bg)
    for _ in range(4):
        x0, y0 = rng.integers(0, side - 12, 2)
        w, h = rng.integers(8, 36, 2)
        box = (int(x0), int(y0), int(min(side - 1, x0 + w)), int(min(side - 1, y0 + h)))
        draw.ellipse(box, fill=int(rng.integers(0, 256)))
    return np.asarray(bg)


def _copies(img: np.ndarray) -> list[np.ndarray]:
    pil = Image.fromarray(img)
    buf = io.BytesIO()
    pil.save(buf, "JPEG", quality=70)
    s = img.shape[0]
    c = int(0.08 * s)
    return [
        np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L")),
        np.asarray(pil.resize((s * 3 // 4, s * 3 // 4), Image.Resampling.BILINEAR)),
        img[c // 2 : s - c // 2, c // 2 : s - c // 2],
        img[:, ::-1],
    ]


@pytest.fixture(scope="module")
def planted() -> tuple[list[np.ndarray], set[tuple[int, int]]]:
    images = [_scene(k) for k in range(60)]
    expected = set()
    for k in range(0, 12, 2):
        for copy in _copies(images[k]):
            expected.add((k, len(images)))
            images.append(copy)
    return images, expected


NO_FAISS = "faiss-cpu is not installed (pip install 'cxrkit[scale]')"
METHODS = [  # "index" is one of these (tested below and without faiss)
    "kdtree",
    pytest.param(
        "hnsw", marks=pytest.mark.skipif(not _radius_index.faiss_available(), reason=NO_FAISS)
    ),
]


@pytest.mark.parametrize("method", METHODS)
def test_every_method_finds_exactly_the_exhaustive_pairs(planted, method):
    images, expected = planted
    h = compute_hashes(images)
    exhaustive = find_near_duplicates(h, method="exhaustive")
    pd.testing.assert_frame_equal(find_near_duplicates(h, method=method), exhaustive)
    found = {(int(i), int(j)) for i, j in zip(exhaustive["i"], exhaustive["j"])}
    assert expected <= found, f"planted copies missed: {sorted(expected - found)}"
    a = cross_duplicates(h, compute_hashes(images[70:]), method=method)
    pd.testing.assert_frame_equal(
        a, cross_duplicates(h, compute_hashes(images[70:]), method="exhaustive")
    )
    assert len(a) > len(images) - 70  # each test image is also its own copy


def test_without_faiss_index_is_the_kdtree_and_hnsw_says_how_to_install(planted, monkeypatch):
    images, _ = planted
    h = compute_hashes(images[:20] + images[60:64])
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss now raises ImportError
    assert _radius_index.resolve_backend("index") == "kdtree"
    pd.testing.assert_frame_equal(
        find_near_duplicates(h), find_near_duplicates(h, method="exhaustive")
    )
    with pytest.raises(ConfigurationError, match=r'pip install "cxrkit\[scale\]"'):
        find_near_duplicates(h, method="hnsw")
    with pytest.raises(ConfigurationError, match=r"needs the package 'faiss-cpu'"):
        cross_duplicates(h, h, method="hnsw")


def test_index_finds_exactly_the_exhaustive_pairs(planted):
    images, expected = planted
    h = compute_hashes(images)
    index = find_near_duplicates(h)
    exhaustive = find_near_duplicates(h, method="exhaustive")
    pd.testing.assert_frame_equal(index, exhaustive)
    found = {(int(i), int(j)) for i, j in zip(index["i"], index["j"])}
    assert expected <= found, f"planted copies missed: {sorted(expected - found)}"
    mirrored = index[index["j"].isin([j for _, j in expected if (j - 60) % 4 == 3])]
    assert mirrored["flipped"].all() and len(mirrored) >= 6
    flip_off = find_near_duplicates(h, flip=False)
    assert flip_off.equals(find_near_duplicates(h, flip=False, method="exhaustive"))
    assert len(flip_off) < len(index)


def test_cross_index_equals_exhaustive(planted):
    images, _ = planted
    train, test = images[:70], images[70:]
    a = cross_duplicates(train, test)
    b = cross_duplicates(train, test, method="exhaustive")
    pd.testing.assert_frame_equal(a, b)
    assert len(a) > 0


def test_unknown_method_is_rejected():
    imgs = np.zeros((2, 8, 8), np.uint8)
    with pytest.raises(
        DataError,
        match=r"^The 'method' parameter must be a str among \{'index', 'kdtree', 'hnsw', "
        r"'exhaustive'\}\. Got 'brute' instead\.$",
    ):
        find_near_duplicates(imgs, method="brute")  # type: ignore[arg-type]


def test_second_run_reuses_the_cache_without_decoding(tmp_path, monkeypatch):
    paths = []
    for k in range(5):
        p = tmp_path / f"img{k}.png"
        Image.fromarray(_scene(k)).save(p)
        paths.append(str(p))
    calls = []
    real = _thumbnails._small
    monkeypatch.setattr(_thumbnails, "_small", lambda item, i: calls.append(i) or real(item, i))
    cache = tmp_path / "cache"
    first = compute_hashes(paths, cache_dir=cache, chunk_size=2)
    assert len(calls) == 5
    second = compute_hashes(paths, cache_dir=cache)
    assert len(calls) == 5, "cached images were decoded again"
    for name in ("thumbs", "phash", "dhash", "phash_flip"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    # the key is the content: a changed file is decoded again, a renamed one is not
    Image.fromarray(_scene(99)).save(paths[0])
    (tmp_path / "img1.png").rename(tmp_path / "moved.png")
    paths[1] = str(tmp_path / "moved.png")
    third = compute_hashes(paths, cache_dir=cache)
    assert len(calls) == 6
    assert not np.array_equal(third.thumbs[0], first.thumbs[0])
    np.testing.assert_array_equal(third.thumbs[1], first.thumbs[1])


def test_streaming_chunks_give_the_same_hashes(planted):
    images, _ = planted
    a = compute_hashes(images[:20], chunk_size=3)
    b = compute_hashes(images[:20])
    np.testing.assert_array_equal(a.thumbs, b.thumbs)
    np.testing.assert_array_equal(a.phash, b.phash)


def test_duplicate_clusters_are_connected_components():
    pairs = pd.DataFrame({"i": [3, 0, 5], "j": [4, 3, 6]})
    assert duplicate_clusters(pairs, 7).tolist() == [0, 1, 2, 0, 0, 3, 3]
    with pytest.raises(DataError, match=r"^pairs refers to image 6 but n_images has 5 entries\.$"):
        duplicate_clusters(pairs, 5)


@pytest.fixture(scope="module")
def cxr_dev_hashes(cxr_dev):
    root, md = cxr_dev
    return compute_hashes([str(root / p) for p in md["image"]], ids=md["image"])


@pytest.fixture(scope="module")
def cxr_dev_exhaustive(cxr_dev_hashes):
    return find_near_duplicates(cxr_dev_hashes, method="exhaustive")


@pytest.mark.realdata
@pytest.mark.parametrize("method", METHODS)
def test_every_method_equals_exhaustive_on_cxr_dev(cxr_dev_hashes, cxr_dev_exhaustive, method):
    pairs = find_near_duplicates(cxr_dev_hashes, method=method)
    pd.testing.assert_frame_equal(pairs, cxr_dev_exhaustive)
    assert len(pairs) >= 2

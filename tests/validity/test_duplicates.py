from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from cxrkit.errors import DataError, ImageDecodeError
from cxrkit.validity import (
    compute_hashes,
    cross_duplicates,
    find_near_duplicates,
    merge_duplicate_groups,
)

KNOWN_DUPLICATE_PATIENTS = {"192", "193", "195", "196"}  # same picture, different ids


def _jpeg(img: Image.Image, quality: int = 70) -> np.ndarray:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("L"))


def _variants(img: Image.Image) -> dict[str, np.ndarray]:
    w, h = img.size
    return {
        "jpeg70": _jpeg(img),
        "resized": np.asarray(img.resize((w * 3 // 4, h * 3 // 4), Image.Resampling.BILINEAR)),
        "cropped": np.asarray(
            img.crop((int(w * 0.05), int(h * 0.05), int(w * 0.95), int(h * 0.95)))
        ),
        "flipped": np.asarray(img)[:, ::-1],
    }


@pytest.fixture(scope="module")
def distinct(cxr_dev):
    """One image per patient (60 patients), no known duplicates."""
    root, md = cxr_dev
    one = md[~md["patient_id"].astype(str).isin(KNOWN_DUPLICATE_PATIENTS)]
    one = one.drop_duplicates("patient_id").head(60)
    return [Image.open(root / p).convert("L") for p in one["image"]]


@pytest.mark.realdata
def test_planted_copies_are_found_and_distinct_images_are_not(distinct):
    originals = distinct[:6]
    images: list[np.ndarray] = [np.asarray(im) for im in distinct]
    planted: dict[int, tuple[int, str]] = {}
    for k, im in enumerate(originals):
        for kind, arr in _variants(im).items():
            planted[len(images)] = (k, kind)
            images.append(arr)
    pairs = find_near_duplicates(images)
    found = {(int(i), int(j)) for i, j in zip(pairs["i"], pairs["j"])}
    expected = {(k, idx) for idx, (k, _) in planted.items()}
    missing = sorted((planted[j], i) for i, j in expected - found)
    assert not missing, f"planted copies not found: {missing}"
    # distinct images of different patients are never paired with each other
    assert not [p for p in found if p[1] < len(distinct)]
    flips = pairs[
        pairs["j"].isin([i for i, (_, kd) in planted.items() if kd == "flipped"])
        & (pairs["i"] < len(distinct))
    ]
    assert flips["flipped"].all() and len(flips) == len(originals)
    others = pairs[~pairs.index.isin(flips.index) & (pairs["i"] < len(distinct))]
    assert not others["flipped"].any()
    jpeg = pairs[
        pairs["j"].isin([i for i, (_, kd) in planted.items() if kd == "jpeg70"])
        & (pairs["i"] < len(distinct))
    ]
    assert (jpeg["phash_distance"] <= 4).all() and (jpeg["similarity"] > 0.99).all()


@pytest.mark.realdata
def test_flips_can_be_ignored(distinct):
    im = distinct[0]
    images = [np.asarray(im), np.asarray(im)[:, ::-1]] + [np.asarray(x) for x in distinct[1:10]]
    assert len(find_near_duplicates(images, flip=True)) == 1
    assert len(find_near_duplicates(images, flip=False)) == 0


@pytest.mark.realdata
def test_cross_duplicates_between_train_and_test(distinct):
    train = [np.asarray(x) for x in distinct[:30]]
    test = [np.asarray(x) for x in distinct[30:50]] + [_jpeg(distinct[3])]
    pairs = cross_duplicates(train, test, test_ids=[f"t{i}" for i in range(21)])
    assert pairs[["i", "j", "id_b"]].values.tolist() == [[3, 20, "t20"]]


@pytest.mark.realdata
def test_known_duplicates_under_different_patient_ids_in_cxr_dev(cxr_dev):
    root, md = cxr_dev
    paths = [str(root / p) for p in md["image"]]
    start = time.perf_counter()
    hashes = compute_hashes(paths, ids=md["image"])
    elapsed = time.perf_counter() - start
    assert elapsed < 10, f"hashing {len(paths)} images took {elapsed:.1f} s"
    pairs = find_near_duplicates(hashes)
    g = md["patient_id"].astype(str).to_numpy()
    across = {frozenset((g[i], g[j])) for i, j in zip(pairs["i"], pairs["j"]) if g[i] != g[j]}
    assert across == {frozenset({"193", "195"}), frozenset({"192", "196"})}
    merged = merge_duplicate_groups(g, pairs)
    assert len(set(merged)) == len(set(g)) - 2
    assert merged[g == "195"][0] == "193" and merged[g == "196"][0] == "192"


def test_random_images_are_not_duplicates_but_flipped_copy_is():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 255, (20, 48, 48), dtype=np.uint8)
    assert find_near_duplicates(imgs).empty
    imgs[7] = imgs[2][:, ::-1]
    pairs = find_near_duplicates(imgs)
    assert pairs[["i", "j", "flipped"]].values.tolist() == [[2, 7, True]]


def test_hash_hex_and_bad_input(tmp_path):
    rng = np.random.default_rng(1)
    h = compute_hashes(rng.integers(0, 255, (2, 32, 32), dtype=np.uint8))
    assert all(len(x) == 16 for x in h.hex("phash"))
    with pytest.raises(
        DataError,
        match=r"^The 'threshold' parameter must be a float in the "
        r"range \(0, 1\]",
    ):
        find_near_duplicates(rng.integers(0, 255, (2, 8, 8), dtype=np.uint8), threshold=5)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ImageDecodeError, match=r"^1 of 1 images could not be hashed:\n  Image "):
        compute_hashes([str(bad)])


def test_merge_duplicate_groups_unites_chains():
    import pandas as pd

    groups = ["a", "b", "c", "d", "b"]
    pairs = pd.DataFrame({"i": [0, 1], "j": [1, 2]})
    assert merge_duplicate_groups(groups, pairs).tolist() == ["a", "a", "a", "d", "a"]

"""Built-in transforms: registered, picklable, deterministic, on real images."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from cxrkit.errors import ConfigurationError, DataError, UnknownNameError
from cxrkit.io import read_xray
from cxrkit.transforms import create_transform, list_transforms

BUILTINS = [
    "centre_blackout",
    "centre_crop",
    "cxr_light",
    "cxr_strong",
    "gray_to_3ch",
    "hflip",
    "imagenet_normalize",
    "jpeg_recompress",
    "lung_blackout",
    "lung_crop",
    "lung_mask",
    "resize",
]
#: The lung transforms need a fitted segmenter; tests/segmentation covers them.
NO_OPTIONS = [n for n in BUILTINS if not n.startswith("lung_")]


@pytest.fixture(scope="module")
def real_images(shared_data: Path) -> list[np.ndarray]:
    paths = sorted((shared_data / "cxr-dev" / "images").glob("*.png"))[:3]
    return [read_xray(p) for p in paths]


def test_all_builtins_listed() -> None:
    assert list_transforms() == BUILTINS
    assert list_transforms("centre*") == ["centre_blackout", "centre_crop"]


def test_unknown_name_suggests() -> None:
    with pytest.raises(
        UnknownNameError, match=r"^Unknown transform 'hflp'\. Did you mean 'hflip'\?"
    ):
        create_transform("hflp")


@pytest.mark.parametrize("name", NO_OPTIONS)
def test_picklable_and_deterministic(name: str, real_images: list[np.ndarray]) -> None:
    t = create_transform(name)
    t2 = pickle.loads(pickle.dumps(t))
    for img in real_images:
        a, b = t(img), t2(img)
        np.testing.assert_array_equal(a, b)
        assert a.dtype == np.float32
    assert repr(t) == repr(t2)


def test_resize(real_images: list[np.ndarray]) -> None:
    out = create_transform("resize", size=64, interpolation="nearest")(real_images[0])
    assert out.shape == (64, 64)
    assert set(np.unique(out)) <= set(np.unique(real_images[0]))  # nearest copies pixels


def test_gray_to_3ch_and_normalize(real_images: list[np.ndarray]) -> None:
    img = real_images[0]
    three = create_transform("gray_to_3ch")(img)
    assert three.shape == (3, *img.shape)
    np.testing.assert_array_equal(three[2], img)
    norm = create_transform("imagenet_normalize")(three)
    np.testing.assert_allclose(norm[0], (img - 0.485) / 0.229, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(create_transform("imagenet_normalize")(img), norm)
    with pytest.raises(
        DataError, match=r"^ImageNetNormalize expects a \(H, W\) or \(3, H, W\) image"
    ):
        create_transform("imagenet_normalize")(np.zeros((2, 4, 4), np.float32))


def test_hflip(real_images: list[np.ndarray]) -> None:
    img = real_images[0]
    np.testing.assert_array_equal(create_transform("hflip")(img), img[:, ::-1])
    t1 = create_transform("hflip", p=0.5, random_state=3)
    t2 = create_transform("hflip", p=0.5, random_state=3)
    flips1 = [bool(np.array_equal(t1(img), img[:, ::-1])) for _ in range(20)]
    flips2 = [bool(np.array_equal(t2(img), img[:, ::-1])) for _ in range(20)]
    assert flips1 == flips2 and 0 < sum(flips1) < 20


def test_jpeg_recompress(real_images: list[np.ndarray]) -> None:
    img = real_images[1]
    q90 = create_transform("jpeg_recompress")(img)
    q10 = create_transform("jpeg_recompress", quality=10)(img)
    assert q90.shape == img.shape and 0 <= q90.min() and q90.max() <= 1
    err90, err10 = np.abs(q90 - img).mean(), np.abs(q10 - img).mean()
    assert 0 < err90 < err10 < 0.1
    with pytest.raises(
        ConfigurationError,
        match=r"^The 'quality' parameter of JpegRecompress must be an int in the "
        r"range \[1, 95\]\. Got 0 instead\.$",
    ):
        create_transform("jpeg_recompress", quality=0)


def test_centre_crop_and_blackout(real_images: list[np.ndarray]) -> None:
    img = real_images[0]
    h, w = img.shape
    crop = create_transform("centre_crop", fraction=0.5)(img)
    assert crop.shape == (round(h * 0.5), round(w * 0.5))
    np.testing.assert_array_equal(
        crop, img[h // 4 : h // 4 + crop.shape[0], w // 4 : w // 4 + crop.shape[1]]
    )
    black = create_transform("centre_blackout", fraction=0.5)(img)
    assert black.shape == img.shape
    assert (black[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4] == 0).all()
    np.testing.assert_array_equal(black[: h // 4], img[: h // 4])
    assert img[h // 2, w // 2] > 0  # the input is not modified
    with pytest.raises(
        ConfigurationError,
        match=r"^The 'fraction' parameter of CentreBlackout must be a float in the "
        r"range \(0, 1\]\. Got 1\.5 instead\.$",
    ):
        create_transform("centre_blackout", fraction=1.5)


def test_usable_in_classifier_transforms() -> None:
    from cxrkit import CXRClassifier

    rng = np.random.default_rng(0)
    X = rng.integers(0, 255, (8, 24, 24), dtype=np.uint8)
    y = np.array(["a", "b"] * 4)
    clf = CXRClassifier(
        "tiny_cnn",
        input_size=16,
        max_epochs=1,
        random_state=0,
        device="cpu",
        transforms=["jpeg_recompress", create_transform("centre_blackout", fraction=0.3)],
    )
    clf.fit(X, y)
    clf2 = pickle.loads(pickle.dumps(clf))
    np.testing.assert_allclose(clf.predict_proba(X), clf2.predict_proba(X), atol=1e-6)

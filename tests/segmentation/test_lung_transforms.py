"""lung_crop, lung_mask, lung_blackout: registered, cached, fallbacks counted, in CXRClassifier."""

from __future__ import annotations

import copy
import pickle
import warnings

import numpy as np
import pytest

from cxrkit import CXRClassifier
from cxrkit.errors import ConfigurationError
from cxrkit.segmentation import SEGMENTER_ENV, lung_mask_stats
from cxrkit.transforms import ImplausibleLungMaskWarning, LungCrop, LungMask, create_transform


def test_lung_crop_keeps_the_lungs(fitted_segmenter, lung_data) -> None:
    X, masks, _ = lung_data
    img, truth = X[45], masks[45]
    crop = create_transform("lung_crop", segmenter=fitted_segmenter, margin=0.0)
    out = crop(img)
    rows, cols = np.flatnonzero(truth.any(1)), np.flatnonzero(truth.any(0))
    assert out.dtype == np.float32
    assert abs(out.shape[0] - (rows[-1] + 1 - rows[0])) <= 2
    assert abs(out.shape[1] - (cols[-1] + 1 - cols[0])) <= 2
    assert create_transform("lung_crop", segmenter=fitted_segmenter, size=24)(img).shape == (24, 24)
    cropped_mask = crop.transform_mask(img, truth)
    assert cropped_mask.shape == out.shape and cropped_mask.mean() > truth.mean()


def test_lung_mask_and_blackout_fill(fitted_segmenter, lung_data) -> None:
    X, masks, _ = lung_data
    img = X[46]
    pred = fitted_segmenter.predict(img[None])[0]
    kept = create_transform("lung_mask", segmenter=fitted_segmenter)(img)
    np.testing.assert_array_equal(kept[pred], img[pred])
    assert np.all(kept[~pred] == np.float32(np.median(img)))
    hidden = create_transform("lung_blackout", segmenter=fitted_segmenter)(img)
    assert np.all(hidden[pred] == 0) and np.array_equal(hidden[~pred], img[~pred])
    assert np.all(LungMask(fitted_segmenter, fill=0.25)(img)[~pred] == 0.25)
    with pytest.raises(
        ConfigurationError, match=r"^The 'fill' parameter of LungMask must be one of"
    ):
        LungMask(fitted_segmenter, fill="mean")


def test_masks_are_cached_by_content(fitted_segmenter, lung_data) -> None:
    img = lung_data[0][47]
    crop, hide = LungCrop(fitted_segmenter), LungMask(fitted_segmenter, keep="outside")
    crop(img)
    hide(img.copy())
    crop(img)
    stats = lung_mask_stats()
    assert stats["misses"] == 1 and stats["hits"] == 2


def test_implausible_mask_falls_back_counted_and_warned(fitted_segmenter, lung_data) -> None:
    strict = copy.deepcopy(fitted_segmenter)
    strict.lung_fraction_range_ = (0.95, 1.0)
    strict.fingerprint_ = strict._fingerprint()
    X = lung_data[0]
    with pytest.warns(
        ImplausibleLungMaskWarning,
        match=r"^lung_crop: the predicted lung mask of "
        r"a 32x32 image is implausible \(lung fraction .* lies outside the range seen"
        r" in training \[0\.950, 1\.000\]\); the uncropped image was used\. 1 image",
    ):
        out = LungCrop(strict)(X[48])
    np.testing.assert_array_equal(out, X[48])
    with pytest.warns(
        ImplausibleLungMaskWarning, match=r"average training mask was hidden instead"
    ):
        hidden = LungMask(strict, keep="outside")(X[49])
    assert np.all(hidden[strict.prior_mask((32, 32))] == np.float32(np.median(X[49])))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a cached implausible mask does not warn again
        LungCrop(strict)(X[48])
    stats = lung_mask_stats()
    assert stats["n_implausible"] == 2
    assert stats["fallbacks"] == {"lung_crop": 2, "lung_blackout": 1}


def test_picklable_and_loaded_from_a_folder(
    segmenter_dir, fitted_segmenter, lung_data, monkeypatch: pytest.MonkeyPatch
) -> None:
    img = lung_data[0][50]
    by_path = LungCrop(str(segmenter_dir))
    expected = LungCrop(fitted_segmenter)(img)
    np.testing.assert_array_equal(by_path(img), expected)
    clone = pickle.loads(pickle.dumps(by_path))
    assert "_loaded" not in clone.__dict__
    np.testing.assert_array_equal(clone(img), expected)
    monkeypatch.delenv(SEGMENTER_ENV, raising=False)
    with pytest.raises(
        ConfigurationError,
        match=r"^No lung segmenter was given and "
        r"CXRKIT_LUNG_SEGMENTER is not set",
    ):
        LungCrop()(img)
    monkeypatch.setenv(SEGMENTER_ENV, str(segmenter_dir))
    np.testing.assert_array_equal(create_transform("lung_crop")(img), expected)


def test_classifier_trains_on_lung_crops(fitted_segmenter, lung_data) -> None:
    X, _, _ = lung_data
    y = np.array(["a", "b"] * 8)
    clf = CXRClassifier(
        "tiny_cnn",
        input_size=32,
        max_epochs=1,
        batch_size=8,
        transforms=[LungCrop(fitted_segmenter)],
        random_state=0,
    ).fit(X[:16], y)
    assert clf.predict_proba(X[40:44]).shape == (4, 2)
    assert lung_mask_stats()["misses"] == 20


def test_protocol_option_routes_transforms_to_the_classifier() -> None:
    from cxrkit.evaluation.protocols import create_protocol

    proto = create_protocol("hall2020-cv", transforms="lung_crop", estimator_params={"lr": 1e-3})
    assert proto.estimator_params == {"lr": 1e-3, "transforms": ["lung_crop"]}
    est, _ = proto.build()
    assert est.estimator.transforms == ["lung_crop"]

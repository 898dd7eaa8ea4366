"""Training-time augmentation (cxr_light, cxr_strong, v2 pipelines) and test-time flips."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torchvision.transforms import v2

from cxrkit import CXRClassifier, hookimpl
from cxrkit.errors import ConfigurationError
from cxrkit.plugins import register_plugin, unregister_plugin
from cxrkit.transforms import CXRLight, TorchvisionAugment, create_transform, list_transforms

from ..conftest import make_separable


def _image(seed: int = 0, size: int = 32) -> np.ndarray:
    img = np.zeros((size, size), np.float32)
    img[8:24, 10:20] = 0.8
    return img + np.random.default_rng(seed).random((size, size), dtype=np.float32) * 0.1


@pytest.mark.parametrize("name", ["cxr_light", "cxr_strong"])
def test_registered_augmentations_are_seeded_and_random(name: str) -> None:
    assert name in list_transforms()
    img = _image()
    a = [create_transform(name, random_state=3)(img) for _ in range(2)]
    b, c = create_transform(name, random_state=3), create_transform(name, random_state=4)
    first, second = b(img), b(img)
    np.testing.assert_array_equal(a[0], first)  # same seed, same first image
    assert not np.array_equal(first, second)  # a new draw for every call
    assert not np.array_equal(first, c(img))
    assert first.shape == img.shape and first.dtype == np.float32
    assert 0 <= first.min() and first.max() <= 1
    assert b.deterministic is False


def test_augmentation_leaves_the_global_generator_alone() -> None:
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    CXRLight(random_state=1)(_image())
    torch.testing.assert_close(torch.rand(3), expected)


def test_cxr_light_stays_within_its_ranges() -> None:
    # A constant image only sees brightness/contrast: within +-10 % of the value.
    img = np.full((16, 16), 0.5, np.float32)
    aug = CXRLight(random_state=0)
    outs = np.stack([aug(img)[4:12, 4:12] for _ in range(20)])
    assert 0.45 - 1e-6 <= outs.min() and outs.max() <= 0.55 + 1e-6
    assert outs.std() > 0


def test_a_v2_pipeline_trains_and_switches_the_feature_cache_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    X, y = make_separable(16, 16)
    pipe = v2.Compose([v2.RandomAffine(degrees=5), v2.ColorJitter(brightness=0.1)])
    clf = CXRClassifier(
        "tiny_cnn",
        input_size=16,
        freeze="backbone",
        augment=pipe,
        max_epochs=2,
        batch_size=8,
        random_state=0,
    )
    with caplog.at_level(logging.INFO, logger="cxrkit.feature_cache"):
        clf.fit(X, y)
    assert "Feature cache not used: augmentation" in caplog.text
    again = CXRClassifier(**clf.get_params()).fit(X, y)  # seeded by random_state
    np.testing.assert_array_equal(clf.predict_proba(X), again.predict_proba(X))


def test_augment_reaches_the_training_images(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, ...]] = []

    class Spy(TorchvisionAugment):
        def apply(self, img: torch.Tensor) -> torch.Tensor:
            calls.append(tuple(img.shape))
            return img

    X, y = make_separable(8, 16)
    CXRClassifier(
        "tiny_cnn",
        input_size=12,
        augment=Spy(lambda t: t),
        max_epochs=2,
        batch_size=4,
        random_state=0,
    ).fit(X, y)
    assert calls == [(1, 12, 12)] * 16  # every training image, every epoch, after resizing


def test_a_plugin_registers_its_own_augmentation() -> None:
    class Invert(TorchvisionAugment):
        def __init__(self, random_state: int | None = 0) -> None:
            super().__init__(lambda t: 1 - t, random_state)

    class Plugin:
        @hookimpl
        def cxrkit_register_transforms(self, register):  # type: ignore[no-untyped-def]
            register("invert_aug", Invert)

    name = register_plugin(Plugin(), name="aug-plugin")
    try:
        X, y = make_separable(8, 16)
        clf = CXRClassifier(
            "tiny_cnn",
            input_size=16,
            augment="invert_aug",
            max_epochs=1,
            batch_size=8,
            random_state=0,
        ).fit(X, y)
        assert clf.predict_proba(X).shape == (8, 2)
    finally:
        unregister_plugin(name)


def test_unknown_augment_is_refused() -> None:
    X, y = make_separable(8, 16)
    with pytest.raises(
        ConfigurationError,
        match=(
            r"The 'augment' parameter of CXRClassifier must be None, 'hflip', a registered "
            r"transform name \(.*cxr_light.*\) or a torchvision.transforms.v2 pipeline. "
            r"Got 'cxr_lite' instead."
        ),
    ):
        CXRClassifier("tiny_cnn", augment="cxr_lite").fit(X, y)


@pytest.mark.parametrize("freeze", ["none", "backbone"])
def test_tta_hflip_averages_the_probabilities_of_both_views(freeze: str) -> None:
    X, y = make_separable(16, 16)
    clf = CXRClassifier(
        "tiny_cnn", input_size=16, freeze=freeze, max_epochs=2, batch_size=8, random_state=0
    ).fit(X, y)
    plain, flipped = clf.predict_proba(X), clf.predict_proba(X[:, :, ::-1].copy())
    clf.set_params(tta="hflip")
    np.testing.assert_allclose(clf.predict_proba(X), (plain + flipped) / 2, atol=1e-6)
    assert not np.allclose(plain, flipped)

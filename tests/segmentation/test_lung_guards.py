"""outside_lungs_probe and attribution_in_lungs on synthetic images with known lungs."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from cxrkit import CXRClassifier
from cxrkit.errors import ConfigurationError
from cxrkit.segmentation import SEGMENTER_ENV
from cxrkit.transforms import CentreCrop, LungCrop
from cxrkit.validity.lungs import attribution_in_lungs, lung_guards, outside_lungs_probe


def _brightness(X: np.ndarray) -> np.ndarray:
    flat = X.reshape(len(X), -1)
    return np.c_[flat.mean(1), flat.std(1)]


def _probe_model():  # type: ignore[no-untyped-def]
    return make_pipeline(FunctionTransformer(_brightness), LogisticRegression())


@pytest.fixture(scope="module")
def labelled(lung_data):  # type: ignore[no-untyped-def]
    X, masks, groups = lung_data
    y = np.array(["neg", "pos"] * (len(X) // 2))
    return X, masks, groups, y


def test_probe_passes_when_the_signal_is_in_the_lungs(fitted_segmenter, labelled) -> None:
    X, masks, groups, y = labelled
    Xs = X.copy()
    Xs[(y == "pos")[:, None, None] & masks] += 0.3  # brighter lungs in one class only
    guard = outside_lungs_probe(
        _probe_model, Xs, y, groups, GroupKFold(4), segmenter=fitted_segmenter, n_bootstraps=200
    )
    assert guard.status == "PASS", guard.summary
    assert guard.numbers["ci_low"] <= 0.6 and guard.numbers["masks_computed"] == len(X)


def test_probe_warns_when_the_signal_is_outside(fitted_segmenter, labelled) -> None:
    X, _, groups, y = labelled
    Xs = X.copy()
    Xs[y == "pos", -3:, :] = 1.0  # a bright band below the lungs in one class only
    guard = outside_lungs_probe(
        _probe_model,
        Xs,
        y,
        groups,
        GroupKFold(4),
        segmenter=fitted_segmenter,
        n_bootstraps=200,
        reference_auc=0.99,
    )
    assert guard.status == "WARN" and guard.numbers["ci_low"] > 0.6
    assert guard.summary.startswith(
        "With the lung fields hidden, the pipeline separates 'pos' from 'neg' with AUC"
    )
    assert guard.numbers["auc_whole_images"] == 0.99


@pytest.fixture(scope="module")
def small_classifier(labelled):  # type: ignore[no-untyped-def]
    X, _, _, y = labelled
    return CXRClassifier("tiny_cnn", input_size=32, max_epochs=2, batch_size=8, random_state=0).fit(
        X[:40], y[:40]
    )


def test_attribution_in_lungs(fitted_segmenter, labelled, small_classifier) -> None:
    X, masks, groups, y = labelled
    kw = dict(segmenter=fitted_segmenter)
    guard = attribution_in_lungs(small_classifier, X[40:], y[40:], groups[40:], **kw)
    per = guard.numbers["per_class"]
    assert set(per) == {"neg", "pos"}
    scored = sum(v["n"] for v in per.values())
    assert (
        scored + guard.numbers["skipped_empty_cam"] + guard.numbers["skipped_implausible_mask"]
        == 16
    )
    overall = guard.numbers["overall"]
    assert 0 <= overall["share_in_lungs"] <= 1
    assert overall["lung_area_share"] == pytest.approx(masks[40:].mean(), abs=0.05)
    expected = "WARN" if min(v["share_in_lungs"] for v in per.values()) < 0.5 else "PASS"
    assert guard.status == expected
    assert (
        attribution_in_lungs(small_classifier, X[40:], y[40:], warn_share=1.01, **kw).status
        == "WARN"
    )
    assert (
        attribution_in_lungs(small_classifier, X[40:], y[40:], warn_share=0.0, **kw).status
        == "PASS"
    )


def test_attribution_follows_the_lung_crop(fitted_segmenter, labelled, small_classifier) -> None:
    X, _, _, y = labelled
    whole = attribution_in_lungs(small_classifier, X[40:], y[40:], segmenter=fitted_segmenter)
    cropped = small_classifier.set_params(transforms=[LungCrop(fitted_segmenter)])
    guard = attribution_in_lungs(cropped, X[40:], y[40:], segmenter=fitted_segmenter)
    area = guard.numbers["overall"]["lung_area_share"]
    assert area > whole.numbers["overall"]["lung_area_share"] + 0.1  # the crop is mostly lungs
    odd = small_classifier.set_params(transforms=[CentreCrop(0.5)])
    with pytest.raises(
        ConfigurationError,
        match=r"cannot follow the lung mask through transform "
        r"CentreCrop\(fraction=0\.5\)",
    ):
        attribution_in_lungs(odd, X[40:], segmenter=fitted_segmenter)
    small_classifier.set_params(transforms=())


def test_lung_guards_are_on_only_with_a_segmenter(
    monkeypatch: pytest.MonkeyPatch, labelled
) -> None:
    X, _, groups, y = labelled
    monkeypatch.delenv(SEGMENTER_ENV, raising=False)
    assert lung_guards(_probe_model, None, X, y, groups) == []
    monkeypatch.setenv(SEGMENTER_ENV, "/nonexistent")
    assert lung_guards(_probe_model, None, X, y, groups, enabled=False) == []

"""LungSegmenter: the U-Net plugin, training to Dice > 0.9, masks, persistence, CV, loader."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from cxrkit.architectures import create_architecture
from cxrkit.errors import ConfigurationError, DataError, WeightsError
from cxrkit.segmentation import (
    LungSegmenter,
    clean_lung_mask,
    cluster_bootstrap_mean,
    create_segmentation_network,
    cross_validate_segmenter,
    dice_iou,
    judge_lung_mask,
    list_segmentation_networks,
    load_lung_masks,
    load_segmenter,
)


def test_unet_is_a_registered_segmentation_network() -> None:
    assert list_segmentation_networks() == ["lung_unet"]
    net = create_segmentation_network("lung_unet")
    n_params = sum(p.numel() for p in net.parameters())
    assert 1e5 < n_params < 1e6 and 4 * n_params < 4e6  # float32 weights stay under 4 MB
    small = create_segmentation_network("lung_unet", base_channels=2, depth=2)
    assert tuple(small(torch.zeros(3, 1, 32, 32)).shape) == (3, 1, 32, 32)
    with pytest.raises(
        ConfigurationError,
        match=r"^Architecture 'lung_unet' is a segmentation "
        r"network, not a classifier",
    ):
        create_architecture("lung_unet")
    with pytest.raises(
        ConfigurationError,
        match=r"^Architecture 'tiny_cnn' \(plugin .*\) is not a "
        r"segmentation network",
    ):
        create_segmentation_network("tiny_cnn")
    with pytest.raises(ConfigurationError, match=r"needs an input side that is a multiple of 4"):
        small(torch.zeros(1, 1, 30, 30))


def test_synthetic_masks_reach_dice_above_0_9(fitted_segmenter: LungSegmenter, lung_data) -> None:
    X, masks, _ = lung_data
    pred = fitted_segmenter.predict(X[40:])
    assert pred.shape == masks[40:].shape and pred.dtype == bool
    dice = [dice_iou(p, m)[0] for p, m in zip(pred, masks[40:])]
    assert np.mean(dice) > 0.9, dice
    soft = fitted_segmenter.predict_proba(X[40:42])
    assert soft.shape == (2, 32, 32) and 0 <= soft.min() and soft.max() <= 1
    assert fitted_segmenter.net_.history[-1, "valid_dice"] > 0.8
    lo, hi = fitted_segmenter.lung_fraction_range_
    assert lo == pytest.approx(masks[:40].mean(axis=(1, 2)).min())
    assert hi == pytest.approx(masks[:40].mean(axis=(1, 2)).max())


def test_images_of_different_sizes_give_masks_at_their_size(fitted_segmenter, lung_data) -> None:
    X, _, _ = lung_data
    big = np.kron(X[40], np.ones((2, 3), np.float32))  # 64 x 96
    out = fitted_segmenter.predict([X[41], big])
    assert out.dtype == object and out[0].shape == (32, 32) and out[1].shape == (64, 96)


def test_save_load_round_trip(fitted_segmenter, segmenter_dir: Path, lung_data) -> None:
    X = lung_data[0][40:44]
    loaded = load_segmenter(segmenter_dir)
    assert loaded.fingerprint_ == fitted_segmenter.fingerprint_
    np.testing.assert_allclose(
        loaded.predict_proba(X), fitted_segmenter.predict_proba(X), atol=1e-6
    )
    assert (segmenter_dir / "model.safetensors").stat().st_size < 4e6
    net = create_segmentation_network(
        "lung_unet", base_channels=4, depth=2, pretrained=str(segmenter_dir / "model.safetensors")
    )
    assert torch.equal(net.out.weight, loaded.module_.out.weight)
    with pytest.raises(WeightsError, match=r"holds no segmenter\.json"):
        load_segmenter(segmenter_dir / "missing")


def test_fit_rejects_mismatched_masks(lung_data) -> None:
    X, masks, _ = lung_data
    seg = LungSegmenter(input_size=32, max_epochs=1)
    with pytest.raises(DataError, match=r"^fit got 4 images but 3 masks"):
        seg.fit(X[:4], masks[:3])
    with pytest.raises(DataError, match=r"^1 of 2 masks differ in size from their image"):
        seg.fit(list(X[:2]), [masks[0], masks[1][:30]])
    with pytest.raises(ValueError, match=r"The 'max_epochs' parameter of LungSegmenter must be"):
        LungSegmenter(max_epochs=0).fit(X[:4], masks[:4])


def test_mask_cleaning_and_plausibility() -> None:
    m = np.zeros((20, 20), bool)
    m[4:16, 2:8] = m[4:16, 11:18] = True
    m[0, 0] = True  # speck
    m[8, 4] = False  # hole
    clean = clean_lung_mask(m)
    assert not clean[0, 0] and clean[8, 4]
    assert judge_lung_mask(clean, (0.1, 0.6)).plausible
    assert judge_lung_mask(np.zeros((20, 20), bool), (0.1, 0.6)).reason == "the mask is empty"
    assert judge_lung_mask(clean[:, :10], (0.1, 0.9)).reason.startswith("one lung is missing")
    tiny_second = clean.copy()
    tiny_second[:, 11:18] = False
    tiny_second[10, 15] = True
    assert "second region has" in judge_lung_mask(tiny_second, (0.0, 1.0)).reason
    assert "outside the range seen in training" in judge_lung_mask(clean, (0.5, 0.6)).reason


def test_dice_iou_and_cluster_bootstrap() -> None:
    a = np.zeros((4, 4), bool)
    a[:2] = True
    b = np.zeros((4, 4), bool)
    b[:1] = True
    assert dice_iou(a, b) == pytest.approx((2 * 4 / 12, 4 / 8))
    values = np.r_[np.full(10, 0.9), np.full(10, 0.5)]
    m, lo, hi = cluster_bootstrap_mean(values, random_state=0)
    mg, log, hig = cluster_bootstrap_mean(values, groups=np.repeat(["a", "b"], 10), random_state=0)
    assert m == mg == pytest.approx(0.7) and lo < m < hi
    assert hig - log > hi - lo  # two patients: a much wider interval than 20 images


def test_cross_validation_is_patient_grouped(lung_data) -> None:
    X, masks, groups = lung_data
    seg = LungSegmenter(
        input_size=32,
        max_epochs=2,
        batch_size=8,
        validation_fraction=0.0,
        architecture_params={"base_channels": 2, "depth": 2},
    )
    cv = cross_validate_segmenter(seg, X[:16], masks[:16], groups[:16], n_splits=2)
    assert [f["n_images"] for f in cv["folds"]] == [8, 8] and cv["n_patients"] == 8
    folds = {
        g: {r["fold"] for r in cv["per_image"] if groups[r["index"]] == g} for g in groups[:16]
    }
    assert all(len(f) == 1 for f in folds.values())
    d = cv["overall"]["dice"]
    assert d["ci_low"] <= d["mean"] <= d["ci_high"]


@pytest.fixture(scope="module")
def real_masks(shared_data: Path):
    if not (shared_data / "lung-masks" / "metadata.csv").is_file():
        pytest.skip("lung-masks/ not in the shared data folder")
    return load_lung_masks(shared_data / "lung-masks")


def test_real_lung_mask_folder(real_masks) -> None:
    assert len(real_masks) == 419 and len(set(real_masks.groups)) == 255
    assert all(os.path.isfile(p) for p in real_masks.images[:5])
    assert real_masks.summary().startswith("419 images with lung masks from 255 patients")


def test_loader_names_missing_files(tmp_path: Path) -> None:
    (tmp_path / "metadata.csv").write_text("image,mask,patient_id\nimages/a.png,masks/a.png,1\n")
    with pytest.raises(DataError, match=r"^2 of 2 image and mask files listed in .* are missing"):
        load_lung_masks(tmp_path)
    with pytest.raises(DataError, match=r"has no metadata\.csv"):
        load_lung_masks(tmp_path / "nowhere")

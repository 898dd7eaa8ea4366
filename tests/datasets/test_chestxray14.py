"""chestxray14 on Google's real adjudicated label files, with tiny synthetic PNGs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxrkit.datasets import load_dataset
from cxrkit.errors import ConfigurationError, DataError


def test_airspace_opacity_proxy_label(nih_root: Path, labels_dir: Path) -> None:
    ds = load_dataset(
        "chestxray14", root=nih_root, target="airspace_opacity", split="test", labels_dir=labels_dir
    )
    s = ds.summary()
    assert s["labels"] == {"no_opacity": 827, "opacity": 1135}
    assert s["views"] == {"AP": 1126, "PA": 836}
    assert s["excluded"] == {}
    truth = pd.read_csv(labels_dir / "test_labels.csv")
    assert s["n_patients"] == truth["Patient ID"].nunique()
    row = ds.metadata.set_index("image_index").loc["00000013_008.png"]
    assert row["label"] == "opacity" and row["patient_id"] == "13" and row["view"] == "AP"
    assert row["finding"] == "No Finding"  # NIH text label disagrees with the experts
    assert Path(row["image"]).is_file()


def test_hedge_and_missing_images(nih_root: Path, labels_dir: Path, tmp_path: Path) -> None:
    df = pd.read_csv(labels_dir / "test_labels.csv")
    df.loc[:4, "Airspace opacity"] = "HEDGE"
    df.loc[5:6, "Airspace opacity"] = np.nan
    df.to_csv(tmp_path / "test_labels.csv", index=False)
    ds = load_dataset(
        "chestxray14", root=nih_root, target="airspace_opacity", split="test", labels_dir=tmp_path
    )
    assert ds.summary()["excluded"] == {
        "Airspace opacity HEDGE (uncertain)": 5,
        "Airspace opacity not adjudicated (blank)": 2,
    }
    assert len(ds) == 1962 - 7


def test_both_splits_need_all_images(nih_root: Path, labels_dir: Path) -> None:
    ds = load_dataset(
        "chestxray14",
        root=nih_root,
        target="airspace_opacity",
        labels_dir=labels_dir,
        on_error="skip",
    )
    s = ds.summary()
    # validation images were not written: each is counted as unreadable
    assert s["skipped_files"] == 2414 and s["excluded"] == {"unreadable image": 2414}
    assert len(ds) == 1962


def test_no_finding_controls(nih_root: Path, labels_dir: Path) -> None:
    df = pd.read_csv(labels_dir / "test_labels.csv")
    df.iloc[:, :11].to_csv(nih_root / "Data_Entry_2017.csv", index=False)
    try:
        ds = load_dataset("chestxray14", root=nih_root, target="no_finding")
        n_nf = int((df["Finding Labels"] == "No Finding").sum())
        assert ds.summary()["labels"] == {"finding": 1962 - n_nf, "no_finding": n_nf}
        controls = ds.select(["no_finding"])
        assert len(controls) == n_nf
        raw = load_dataset("chestxray14", root=nih_root, check_images=False, min_classes=1)
        assert "Cardiomegaly|Emphysema" in set(raw.y)
    finally:
        (nih_root / "Data_Entry_2017.csv").unlink()


def test_bad_options(nih_root: Path) -> None:
    with pytest.raises(
        ConfigurationError, match=r"^The 'target' parameter of chestxray14 must be one of"
    ):
        load_dataset("chestxray14", root=nih_root, target="opacity")
    with pytest.raises(
        DataError, match=r"^Adjudicated label file 'validation_labels\.csv' not found"
    ):
        load_dataset("chestxray14", root=nih_root, target="airspace_opacity")


@pytest.fixture(scope="module")
def nih_entry_root(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real Data_Entry_2017_v2020.csv.gz (linked, not copied) and official list files."""
    src = shared_data / "public-metadata" / "Data_Entry_2017_v2020.csv.gz"
    if not src.is_file():
        pytest.skip(f"{src} not available")
    root = tmp_path_factory.mktemp("nih-entry")
    (root / src.name).symlink_to(src)
    names = pd.read_csv(src, usecols=["Image Index", "Patient ID"])
    test = names["Patient ID"] % 4 == 0  # patient-wise, like the official lists
    (root / "test_list.txt").write_text("\n".join(names.loc[test, "Image Index"]) + "\n")
    (root / "train_val_list.txt").write_text("\n".join(names.loc[~test, "Image Index"]) + "\n")
    return root


def test_all_fourteen_findings_on_real_labels(nih_entry_root: Path) -> None:
    ds = load_dataset("chestxray14", root=nih_entry_root, check_images=False, min_classes=1)
    raw = pd.read_csv(next(nih_entry_root.glob("Data_Entry*")))
    assert len(ds) == 112_120 and ds.n_patients == 30_805
    assert ds.summary()["views"] == {"AP": 44_810, "PA": 67_310}
    assert len(ds.findings) == 15 and "pleural_thickening" in ds.findings
    counts = ds.label_summary()
    assert (
        counts.loc["hernia", "positive"] == 227 and counts.loc["no_finding", "positive"] == 60_361
    )
    assert counts.loc["infiltration", "positive"] == int(
        raw["Finding Labels"].str.contains("Infiltration").sum()
    )
    assert counts[["uncertain", "missing"]].to_numpy().sum() == 0  # NIH labels are 1/0
    assert ds.metadata["split"].value_counts().to_dict() == {
        "train_val": int((raw["Patient ID"] % 4 != 0).sum()),
        "test": int((raw["Patient ID"] % 4 == 0).sum()),
    }


def test_finding_target_and_official_split(nih_entry_root: Path) -> None:
    ds = load_dataset(
        "chestxray14", root=nih_entry_root, check_images=False, target="Cardiomegaly", split="test"
    )
    raw = pd.read_csv(next(nih_entry_root.glob("Data_Entry*")))
    test = raw[raw["Patient ID"] % 4 == 0]
    assert ds.label_counts()["cardiomegaly"] == int(
        test["Finding Labels"].str.contains("Cardiomegaly").sum()
    )
    assert len(ds) == len(test)
    assert ds.summary()["excluded"] == {"not in the official test list": len(raw) - len(test)}
    with pytest.raises(
        ConfigurationError,
        match=r"^The 'target' parameter of chestxray14 must be "
        r"one of .* Got 'cardiomegally' instead\. Did you "
        r"mean 'cardiomegaly'\?",
    ):
        load_dataset("chestxray14", root=nih_entry_root, target="cardiomegally")
    with pytest.raises(
        ConfigurationError,
        match=r"^The 'split' parameter of chestxray14 must be "
        r"one of \['all', 'train_val', 'test'\] for "
        r"target='cardiomegaly'",
    ):
        load_dataset("chestxray14", root=nih_entry_root, target="cardiomegaly", split="validation")

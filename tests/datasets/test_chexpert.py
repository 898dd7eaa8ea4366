"""chexpert on the real CheXpert-v1.0-small train.csv, with tiny JPEGs under real names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cxrkit.datasets import CXRDataset, load_dataset
from cxrkit.errors import ConfigurationError, DataError


@pytest.fixture(scope="module")
def train_csv(public_metadata: Path) -> Path:
    return public_metadata / "chexpert_train.csv.gz"


@pytest.fixture(scope="module")
def chexpert(train_csv: Path) -> CXRDataset:
    return load_dataset("chexpert", labels_file=train_csv, check_images=False)


def test_real_rows_patients_views_and_codes(chexpert: CXRDataset, train_csv: Path) -> None:
    raw = pd.read_csv(train_csv)
    assert len(chexpert) == len(raw) == 223_414
    assert chexpert.n_patients == 64_540
    assert chexpert.summary()["views"] == {
        "AP": 161_590,
        "LL": 16,
        "Lateral": 32_387,
        "PA": 29_420,
        "RL": 1,
    }
    assert chexpert.metadata["sex"].value_counts(dropna=False).to_dict() == {
        "M": 132_636,
        "F": 90_777,
        np.nan: 1,
    }
    assert len(chexpert.findings) == 14 and "effusion" in chexpert.findings
    counts = chexpert.label_summary()
    for native, vocab in [("Pneumonia", "pneumonia"), ("Pleural Effusion", "effusion")]:
        expected = raw[native].value_counts(dropna=False)
        assert counts.loc[vocab].to_dict() == {
            "positive": expected[1.0],
            "negative": expected[0.0],
            "uncertain": expected[-1.0],
            "missing": expected[np.nan],
        }
    row = chexpert.metadata.iloc[1]
    assert row["patient_id"] == "patient00002" and row["study_id"] == "patient00002/study2"
    assert row["image"].endswith("/train/patient00002/study2/view1_frontal.jpg")
    assert chexpert.labels.iloc[1]["cardiomegaly"] == -1.0  # kept as uncertain


def test_200k_rows_hold_paths_and_metadata_only(chexpert: CXRDataset) -> None:
    assert not chexpert.in_memory and chexpert.X.dtype == object
    assert all(isinstance(x, str) for x in chexpert.X[:1000])
    size = (
        chexpert.metadata.memory_usage(deep=True).sum()
        + chexpert.labels.memory_usage(deep=True).sum()
    )
    assert size < 400 * 2**20  # ~1.5 kB per image: names and labels, no pixels
    sub = chexpert.subset(np.arange(0, len(chexpert), 1000))
    assert len(sub) == 224 and sub.labels.shape == (224, 14)


def test_uncertain_policy(chexpert: CXRDataset, train_csv: Path) -> None:
    pos, neg, unc, blank = 6_039, 2_799, 18_770, 195_806  # the Pneumonia column of train.csv
    for policy, p, n in [("ignore", pos, neg), ("ones", pos + unc, neg), ("zeros", pos, neg + unc)]:
        col = chexpert.label_matrix("pneumonia", uncertain=policy)[:, 0]
        assert ((col == 1).sum(), (col == 0).sum(), np.isnan(col).sum()) == (p, n, len(col) - p - n)
    ds = load_dataset(
        "chexpert", labels_file=train_csv, check_images=False, target="Pneumonia", uncertain="ones"
    )
    assert ds.label_counts() == {"no_pneumonia": neg, "pneumonia": pos + unc}
    assert ds.summary()["excluded"] == {"pneumonia: not labelled": blank}
    assert (ds.labels["pneumonia"] == -1).sum() == unc  # the matrix keeps -1 under every policy


def test_bad_targets_and_codes(train_csv: Path, tmp_path: Path) -> None:
    df = pd.read_csv(train_csv, nrows=50)
    df.to_csv(tmp_path / "train.csv", index=False)
    with pytest.raises(
        ConfigurationError,
        match=r"^Dataset 'chexpert' has no finding 'pnemonia'\. "
        r"Did you mean 'pneumonia'",
    ):
        load_dataset(
            "chexpert", root=tmp_path, split="train", check_images=False, target="pnemonia"
        )
    with pytest.raises(ConfigurationError, match=r"has no finding 'hernia' \(it is in the common"):
        load_dataset("chexpert", root=tmp_path, split="train", check_images=False, target="hernia")
    df.loc[3, "Edema"] = 2.0
    df.loc[0, "Lung Lesion"] = 1.0
    df["Fracture"] = np.nan
    df.to_csv(tmp_path / "train.csv", index=False)
    with pytest.raises(
        DataError,
        match=r"^1 rows of dataset 'chexpert' have label codes other "
        r"than \[1\.0, 0\.0, -1\.0\] or blank \(unknown label "
        r"code in 'Edema': \['2\.0'\]",
    ):
        load_dataset("chexpert", root=tmp_path, split="train", check_images=False)
    with pytest.warns(
        UserWarning, match=r"the label column\(s\) \['fracture'\] are blank in every"
    ):
        ds = load_dataset(
            "chexpert", root=tmp_path, split="train", check_images=False, on_error="skip"
        )
    assert len(ds) == 49 and ds.summary()["excluded"] == {"unknown label code": 1}
    with pytest.raises(
        DataError,
        match=r"^The 'fracture' labels of dataset 'chexpert' are all "
        r"missing",
    ):
        load_dataset(
            "chexpert",
            root=tmp_path,
            split="train",
            check_images=False,
            on_error="skip",
            target="fracture",
        )


def _no_decode(path: object) -> None:
    raise AssertionError(f"{path} was decoded")


def test_pixels_under_real_names_and_missing_files(
    train_csv: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "CheXpert-v1.0-small"
    df = pd.read_csv(train_csv, nrows=40)
    root.mkdir()
    df.iloc[:30].to_csv(root / "train.csv", index=False)
    df.iloc[30:].assign(Path=lambda d: d["Path"].str.replace("/train/", "/valid/")).to_csv(
        root / "valid.csv", index=False
    )
    rng = np.random.default_rng(0)
    for p in (
        df["Path"].iloc[2:30].tolist()
        + df["Path"].iloc[30:].str.replace("/train/", "/valid/").tolist()
    ):
        f = root / p.split("/", 1)[1]
        f.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8)).save(f)
    with pytest.raises(
        DataError,
        match=r"^2 of 40 images listed by dataset 'chexpert' have no "
        r"file under",
    ):
        load_dataset("chexpert", root=root, progress=False)
    with monkeypatch.context() as m:  # the existence check never decodes an image
        m.setattr("cxrkit.datasets._dataset.read_xray", _no_decode)
        ds = load_dataset("chexpert", root=root, on_error="skip")
    assert len(ds) == 38 and ds.summary()["excluded"] == {"missing image file": 2}
    decoded = load_dataset("chexpert", root=root, on_error="skip", check_images="decode")
    assert decoded.summary()["skipped_files"] == 2 and len(decoded) == 38
    assert ds.metadata["split"].value_counts().to_dict() == {"train": 28, "valid": 10}
    assert len(ds.labels) == 38
    frontal = load_dataset("chexpert", root=root, on_error="skip", views=["AP", "PA"])
    assert set(frontal.metadata["view"]) <= {"AP", "PA"}
    assert frontal.summary()["excluded"]["view not selected"] == int(
        (df["Frontal/Lateral"].iloc[2:] == "Lateral").sum()
    )

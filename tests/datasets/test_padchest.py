"""padchest on the real PadChest label file, with tiny 16-bit PNGs under real names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cxrkit.datasets import PADCHEST_MAPPING, CXRDataset, load_dataset
from cxrkit.datasets._padchest import PADCHEST_FILE, parse_labels

_COLS = ["ImageID", "ImageDir", "PatientID", "Projection", "Labels", "PatientSex_DICOM"]


@pytest.fixture(scope="module")
def label_file(public_metadata: Path) -> Path:
    return public_metadata / f"{PADCHEST_FILE}.gz"


@pytest.fixture(scope="module")
def raw(label_file: Path) -> pd.DataFrame:
    return pd.read_csv(label_file, usecols=_COLS, dtype={"ImageID": str, "PatientID": str})


@pytest.fixture(scope="module")
def padchest(label_file: Path) -> CXRDataset:
    return load_dataset("padchest", labels_file=label_file, check_images=False)


def test_real_rows_patients_views(padchest: CXRDataset, raw: pd.DataFrame) -> None:
    assert len(raw) == 160_861
    excluded = raw["Labels"].fillna("").str.contains(r"'\s*exclude\s*'")
    assert int(excluded.sum()) == 1_312
    assert padchest.summary()["excluded"] == {"PadChest label 'exclude'": 1_312}
    kept = raw.loc[~excluded]
    assert len(padchest) == len(kept) and padchest.n_patients == kept["PatientID"].nunique()
    assert padchest.summary()["views"] == kept["Projection"].value_counts().to_dict() | {}
    assert padchest.metadata["patient_id"].tolist() == kept["PatientID"].tolist()
    assert set(padchest.metadata["sex"].dropna()) == {"M", "F", "O"}


def test_real_label_codes(padchest: CXRDataset, raw: pd.DataFrame) -> None:
    kept = raw.loc[~raw["Labels"].fillna("").str.contains(r"'\s*exclude\s*'")]
    unlabelled = kept["Labels"].isna() | (kept["Labels"].str.strip() == "['']")
    counts = padchest.label_summary()
    assert (counts["missing"] == int(unlabelled.sum())).all()  # 103 blank + 777 [''], every column
    assert counts.loc["no_finding", "positive"] == int(
        kept["Labels"].fillna("").str.contains(r"'\s*normal\s*'").sum()
    )
    lists = parse_labels(kept["Labels"].tolist())
    fracture = {
        "fracture",
        "rib fracture",
        "callus rib fracture",
        "clavicle fracture",
        "humeral fracture",
        "vertebral fracture",
    }
    assert counts.loc["fracture", "positive"] == sum(bool(x and fracture & set(x)) for x in lists)
    assert counts["uncertain"].sum() == 0
    assert set(padchest.findings) == set(PADCHEST_MAPPING)


def test_native_labels_and_target(label_file: Path, tmp_path: Path) -> None:
    df = pd.read_csv(label_file, nrows=300, dtype={"ImageID": str})
    (tmp_path / PADCHEST_FILE).write_text(df.to_csv(index=False))
    nat = load_dataset(
        "padchest", root=tmp_path, check_images=False, vocabulary=False, target="COPD signs"
    )
    assert "COPD signs" in nat.findings and nat.classes == ["COPD signs", "no_COPD signs"]
    assert parse_labels(["['normal']", "['']", np.nan, "['a', 'b c']"]) == [
        ["normal"],
        None,
        None,
        ["a", "b c"],
    ]


def test_16_bit_pngs_in_release_folders(label_file: Path, tmp_path: Path) -> None:
    df = pd.read_csv(label_file, nrows=20, dtype={"ImageID": str})
    (tmp_path / PADCHEST_FILE).write_text(df.to_csv(index=False))
    rng = np.random.default_rng(0)
    for d, name in zip(df["ImageDir"].iloc[1:], df["ImageID"].iloc[1:]):
        (tmp_path / str(d)).mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 65535, (24, 24)).astype(np.uint16)).save(
            tmp_path / str(d) / name
        )
    ds = load_dataset(
        "padchest", root=tmp_path, on_error="skip", check_images="decode", views=["PA", "AP"]
    )
    frontal = df["Projection"].iloc[1:].isin(["PA", "AP"])
    assert len(ds) == int(frontal.sum())
    assert ds.summary()["excluded"].get("view not selected", 0) == int((~frontal).sum()) + int(
        df["Projection"].iloc[0] not in ("PA", "AP")
    )

"""mimic-cxr on synthetic files in the documented MIMIC-CXR-JPG 2.0.0 layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxrkit.datasets import load_dataset
from cxrkit.errors import ConfigurationError, DataError

OBS = [
    "Atelectasis",
    "Cardiomegaly",
    "Consolidation",
    "Edema",
    "Enlarged Cardiomediastinum",
    "Fracture",
    "Lung Lesion",
    "Lung Opacity",
    "No Finding",
    "Pleural Effusion",
    "Pleural Other",
    "Pneumonia",
    "Pneumothorax",
    "Support Devices",
]


@pytest.fixture
def mimic(tmp_path: Path, png: object) -> Path:
    images = [
        ("d1", 10000032, 50414267, "PA", "train"),
        ("d2", 10000032, 50414267, "LATERAL", "train"),
        ("d3", 10000032, 53189527, "AP", "validate"),
        ("d4", 11000011, 51234567, "AP", "test"),
        ("d5", 11000011, 59999999, "PA", "test"),
    ]
    meta = pd.DataFrame(
        images, columns=["dicom_id", "subject_id", "study_id", "ViewPosition", "split"]
    )
    meta.assign(
        PerformedProcedureStepDescription="CHEST (PA AND LAT)",
        Rows=32,
        Columns=32,
        StudyDate=21800506,
        StudyTime=213014.5,
    ).drop(columns="split").to_csv(tmp_path / "mimic-cxr-2.0.0-metadata.csv.gz", index=False)
    meta[["dicom_id", "study_id", "subject_id", "split"]].to_csv(
        tmp_path / "mimic-cxr-2.0.0-split.csv.gz", index=False
    )
    lab = pd.DataFrame(np.nan, index=range(3), columns=OBS)
    lab.insert(0, "study_id", [50414267, 53189527, 51234567])
    lab.insert(0, "subject_id", [10000032, 10000032, 11000011])  # study 59999999 has no labels
    lab.loc[0, ["Pneumonia", "Edema"]] = [1.0, -1.0]
    lab.loc[1, ["Pneumonia", "No Finding"]] = [0.0, 1.0]
    lab.loc[2, "Pneumonia"] = -1.0
    lab.to_csv(tmp_path / "mimic-cxr-2.0.0-chexpert.csv.gz", index=False)
    lab.assign(Pneumonia=[1.0, 0.0, 0.0]).to_csv(
        tmp_path / "mimic-cxr-2.0.0-negbio.csv.gz", index=False
    )
    for d, s, st, _, _ in images:  # tiny JPEGs under the release's path scheme
        png(tmp_path / "files" / f"p{str(s)[:2]}" / f"p{s}" / f"s{st}" / f"{d}.jpg")  # type: ignore[operator]
    return tmp_path


def test_layout_labels_split_and_policy(mimic: Path) -> None:
    ds = load_dataset("mimic-cxr", root=mimic, check_images="decode")
    assert len(ds) == 5 and ds.n_patients == 2 and len(ds.findings) == 14
    assert ds.metadata["image"][0].endswith("files/p10/p10000032/s50414267/d1.jpg")
    assert ds.labels["pneumonia"].tolist()[:4] == [1.0, 1.0, 0.0, -1.0]  # per study
    assert ds.labels.iloc[4].isna().all()  # a study without labels: missing, not negative
    assert ds.metadata["split"].tolist() == ["train", "train", "validate", "test", "test"]
    ones = load_dataset("mimic-cxr", root=mimic, target="pneumonia", uncertain="ones")
    assert ones.y.tolist() == ["pneumonia", "pneumonia", "no_pneumonia", "pneumonia"]
    assert ones.summary()["excluded"] == {"pneumonia: not labelled": 1}
    ign = load_dataset("mimic-cxr", root=mimic, target="pneumonia", min_classes=1)
    assert ign.summary()["excluded"] == {
        "pneumonia: not labelled": 1,
        "pneumonia: uncertain (-1), uncertain='ignore'": 1,
    }
    neg = load_dataset("mimic-cxr", root=mimic, labeler="negbio", split="test")
    assert neg.labels["pneumonia"].tolist()[0] == 0.0 and len(neg) == 2
    frontal = load_dataset("mimic-cxr", root=mimic, views=["PA", "AP"], split="train")
    assert frontal.metadata["dicom_id"].tolist() == ["d1"]


def test_bad_input(mimic: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"^The 'labeler' parameter of mimic-cxr must be"):
        load_dataset("mimic-cxr", root=mimic, labeler="chexbert")
    (mimic / "files" / "p11" / "p11000011" / "s59999999" / "d5.jpg").unlink()
    with pytest.raises(
        DataError,
        match=r"^1 of 5 images listed by dataset 'mimic-cxr' have no "
        r"file under (?s:.*)d5\.jpg",
    ):
        load_dataset("mimic-cxr", root=mimic)
    (mimic / "mimic-cxr-2.0.0-chexpert.csv.gz").unlink()
    with pytest.raises(
        DataError,
        match=r"^mimic-cxr: '.*mimic-cxr-2\.0\.0-chexpert\.csv' \(or "
        r"\.csv\.gz\) does not exist",
    ):
        load_dataset("mimic-cxr", root=mimic)

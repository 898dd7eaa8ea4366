"""rsna-pneumonia on the real stage-2 labels and DICOM headers, with tiny DICOMs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cxrkit.datasets import load_dataset


def test_real_labels_and_headers(public_metadata: Path) -> None:
    labels = public_metadata / "kaggle_stage_2_train_labels.csv.zip"
    headers = public_metadata / "kaggle_stage_2_train_images_dicom_headers.csv.gz"
    raw = pd.read_csv(labels)
    ds = load_dataset(
        "rsna-pneumonia",
        labels_file=labels,
        headers_file=headers,
        check_images=False,
        target="pneumonia",
    )
    assert len(raw) == 30_227 and len(ds) == raw["patientId"].nunique() == 26_684
    assert ds.label_counts() == {"no_pneumonia": 20_672, "pneumonia": 6_012}
    assert ds.summary()["views"] == {"AP": 12_173, "PA": 14_511}
    assert ds.metadata["sex"].value_counts().to_dict() == {"M": 15_166, "F": 11_518}
    assert ds.metadata["n_boxes"].sum() == int(raw["x"].notna().sum())
    assert ds.n_patients == len(ds)


def test_class_info_and_headers_from_dicoms(tmp_path: Path, dicom: object) -> None:
    ids = ["p1", "p2", "p3"]
    pd.DataFrame(
        {
            "patientId": ["p1", "p1", "p2", "p3"],
            "x": [1, 5, None, None],
            "y": [1, 5, None, None],
            "width": [2, 2, None, None],
            "height": [2, 2, None, None],
            "Target": [1, 1, 0, 0],
        }
    ).to_csv(tmp_path / "stage_2_train_labels.csv", index=False)
    pd.DataFrame(
        {"patientId": ids, "class": ["Lung Opacity", "No Lung Opacity / Not Normal", "Normal"]}
    ).to_csv(tmp_path / "stage_2_detailed_class_info.csv", index=False)
    for i, (sex, view) in enumerate([("F", "AP"), ("M", "PA"), ("M", "PA")]):
        dicom(
            tmp_path / "stage_2_train_images" / f"{ids[i]}.dcm",
            seed=i,  # type: ignore[operator]
            PatientSex=sex,
            PatientAge=str(30 + i),
            ViewPosition=view,
        )
    ds = load_dataset("rsna-pneumonia", root=tmp_path, check_images="decode", progress=False)
    assert ds.findings == ["pneumonia", "lung_opacity", "no_finding"]
    assert ds.labels.to_numpy().tolist() == [[1, 1, 0], [0, 0, 0], [0, 0, 1]]
    assert ds.metadata["view"].tolist() == ["AP", "PA", "PA"]
    assert ds.metadata["age"].tolist() == [30, 31, 32]
    assert ds.metadata["n_boxes"].tolist() == [2, 0, 0]
    assert ds.y.tolist() == ["pneumonia|lung_opacity", "no_positive_finding", "no_finding"]

"""vindr-cxr on the real VinBigData train.csv (reader rows), and the PhysioNet layout."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cxrkit.datasets import load_dataset
from cxrkit.errors import ConfigurationError


def test_real_reader_aggregation(public_metadata: Path) -> None:
    f = public_metadata / "vinbigdata-train.csv.gz"
    raw = pd.read_csv(f)
    maj = load_dataset("vindr-cxr", labels_file=f, check_images=False)
    anyr = load_dataset("vindr-cxr", labels_file=f, check_images=False, readers="any")
    assert len(maj) == len(anyr) == raw["image_id"].nunique() == 15_000
    assert set(maj.metadata["n_readers"]) == {3} and maj.n_patients == 15_000
    votes = (
        raw.drop_duplicates(["image_id", "rad_id", "class_name"])
        .groupby(["class_name", "image_id"])
        .size()
    )
    for native, vocab in [("Cardiomegaly", "cardiomegaly"), ("Nodule/Mass", "nodule_or_mass")]:
        v = votes.loc[native]
        assert maj.label_summary().loc[vocab, "positive"] == int((v >= 2).sum())
        assert anyr.label_summary().loc[vocab, "positive"] == int((v >= 1).sum())
    assert maj.label_summary()["missing"].sum() == 0
    with pytest.raises(
        ConfigurationError,
        match=r"^The 'readers' parameter of vindr-cxr must be "
        r"one of \['majority', 'any'\]\. Got 'all'",
    ):
        load_dataset("vindr-cxr", labels_file=f, readers="all")


def test_physionet_layout(tmp_path: Path, dicom: object) -> None:
    ann = tmp_path / "annotations"
    ann.mkdir()
    rows = [
        ("a", "R1", 1, 0, 0),
        ("a", "R2", 1, 0, 0),
        ("a", "R3", 0, 1, 0),
        ("b", "R1", 0, 0, 1),
        ("b", "R4", 0, 0, 1),
        ("b", "R5", 1, 0, 0),
    ]
    pd.DataFrame(
        rows, columns=["image_id", "rad_id", "Rib fracture", "Clavicle fracture", "No finding"]
    ).to_csv(ann / "image_labels_train.csv", index=False)
    for i in "ab":
        dicom(tmp_path / "train" / f"{i}.dicom")  # type: ignore[operator]
    ds = load_dataset("vindr-cxr", root=tmp_path, check_images="decode")
    assert ds.labels["fracture"].tolist() == [1.0, 0.0]  # a: 2 of 3 rib; b: 1 of 3
    assert ds.labels["no_finding"].tolist() == [0.0, 1.0]
    anyr = load_dataset("vindr-cxr", root=tmp_path, readers="any", target="fracture", min_classes=1)
    assert anyr.y.tolist() == ["fracture", "fracture"]

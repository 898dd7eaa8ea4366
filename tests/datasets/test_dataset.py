"""CXRDataset, load_dataset/list_datasets, csv and image-folder loaders, bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxrkit import hookimpl
from cxrkit.datasets import CXRDataset, list_datasets, load_dataset
from cxrkit.errors import ConfigurationError, DataError, ImageDecodeError, UnknownNameError
from cxrkit.plugins import register_plugin, unregister_plugin


def _csv(tmp_path: Path, rows: list[dict], name: str = "meta.csv") -> Path:
    p = tmp_path / name
    pd.DataFrame(rows).to_csv(p, index=False)
    return p


@pytest.fixture
def small_csv(tmp_path: Path, png) -> Path:
    rows = []
    for i in range(6):
        png(tmp_path / "img" / f"{i}.png", seed=i)
        rows.append(
            {
                "image": f"img/{i}.png",
                "label": "covid" if i % 2 else "pneumonia",
                "patient_id": f"p{i // 2}",
                "view": "PA",
                "source": "s1",
            }
        )
    return _csv(tmp_path, rows)


def test_builtins_registered() -> None:
    assert list_datasets() == [
        "chestxray14",
        "chexpert",
        "covid-chestxray",
        "csv",
        "image-folder",
        "mimic-cxr",
        "padchest",
        "rsna-pneumonia",
        "synthetic",
        "vindr-cxr",
    ]
    assert list_datasets("c*") == ["chestxray14", "chexpert", "covid-chestxray", "csv"]
    with pytest.raises(UnknownNameError, match=r"^Unknown dataset 'cvs'\. Did you mean 'csv'"):
        load_dataset("cvs")


def test_unknown_loader_option_is_named_with_the_accepted_ones(small_csv: Path) -> None:
    with pytest.raises(
        ConfigurationError,
        match=r"does not take the option\(s\) \['path'\]\. "
        r"The data's location is passed as root=.*label_col",
    ):
        load_dataset("csv", path=small_csv)
    with pytest.raises(ConfigurationError, match=r"\['n_patient'\]\. Did you mean 'n_patients'"):
        load_dataset("synthetic", n_patient=3)
    assert len(load_dataset("csv", root=small_csv, label_col="label").y) > 0


def test_third_party_dataset_plugin() -> None:
    class Plugin:
        @hookimpl
        def cxrkit_register_datasets(self, register):  # type: ignore[no-untyped-def]
            register(
                "toy", lambda root=None, **kw: load_dataset("synthetic", n_patients=2, size=16)
            )

    name = register_plugin(Plugin(), name="toy-plugin")
    try:
        assert "toy" in list_datasets()
        assert len(load_dataset("toy")) == 4
    finally:
        unregister_plugin(name)
    assert "toy" not in list_datasets()


def test_csv_loader(small_csv: Path) -> None:
    ds = load_dataset("csv", root=small_csv)
    assert isinstance(ds, CXRDataset) and len(ds) == 6
    assert all(Path(x).is_absolute() and Path(x).is_file() for x in ds.X)
    assert list(ds.groups) == ["p0", "p0", "p1", "p1", "p2", "p2"]
    assert list(ds.metadata.columns[:8]) == [
        "image",
        "label",
        "patient_id",
        "view",
        "source",
        "sex",
        "age",
        "finding",
    ]
    assert ds.metadata["sex"].isna().all()
    s = ds.summary()
    assert s["labels"] == {"covid": 3, "pneumonia": 3}
    assert s["images_per_patient"] == {2: 3}
    assert s["n_patients"] == 3 and s["excluded"] == {}


def test_subset_and_select(small_csv: Path) -> None:
    ds = load_dataset("csv", root=small_csv)
    sub = ds.subset([0, 2])
    assert len(sub) == 2 and list(sub.y) == ["pneumonia", "pneumonia"]
    assert sub.metadata.index.tolist() == [0, 1]
    sel = ds.select(["covid"])
    assert len(sel) == 3 and set(sel.y) == {"covid"}
    assert sel.summary()["excluded"] == {"label not selected": 3}
    with pytest.raises(
        DataError,
        match=r"^Cannot select label\(s\) \['normal'\] from dataset 'csv': "
        r"no image has them\. Labels present: \['covid', 'pneumonia'\]\.$",
    ):
        ds.select(["covid", "normal"])


def test_label_column_missing(tmp_path: Path) -> None:
    p = _csv(tmp_path, [{"image": "a.png", "diagnosis": "covid"}])
    with pytest.raises(
        DataError,
        match=r"^CSV file '.*meta\.csv' has no label column 'label'\. "
        r"Its columns are: image, diagnosis\. Pass label_col= the right column name\.$",
    ):
        load_dataset("csv", root=p)


def test_nan_and_blank_labels(tmp_path: Path, small_csv: Path) -> None:
    df = pd.read_csv(small_csv)
    df.loc[[1, 4], "label"] = np.nan
    df.loc[2, "label"] = "  "
    df.to_csv(small_csv, index=False)
    with pytest.raises(
        DataError,
        match=r"(?s)^3 of 6 images of dataset 'csv' have no label \(NaN or blank\):"
        r"\n  .*1\.png\n.*Fill in the labels, or pass on_error='skip'",
    ):
        load_dataset("csv", root=small_csv)
    ds = load_dataset("csv", root=small_csv, on_error="skip")
    assert len(ds) == 3 and ds.summary()["excluded"] == {"missing label": 3}


def test_unknown_labels_filtered(small_csv: Path) -> None:
    ds = load_dataset("csv", root=small_csv, labels=["covid", "pneumonia", "normal"])
    assert len(ds) == 6
    with pytest.raises(
        DataError,
        match=r"^Dataset 'csv' has only 1 class\(es\) left \(\['covid'\]\) "
        r"after filtering; at least 2 are needed\.",
    ):
        load_dataset("csv", root=small_csv, labels=["covid"])
    assert len(load_dataset("csv", root=small_csv, labels=["covid"], min_classes=1)) == 3


def test_empty_after_filtering(small_csv: Path) -> None:
    with pytest.raises(
        DataError,
        match=r"^Dataset 'csv' is empty after filtering \(6 rows excluded "
        r"— label not selected: 6\)\. Check the root folder",
    ):
        load_dataset("csv", root=small_csv, labels=["normal"])


def test_bad_files_raise_one_message_or_are_skipped(tmp_path: Path, small_csv: Path) -> None:
    img = tmp_path / "img"
    (img / "0.png").write_bytes(b"")  # zero bytes
    (img / "1.png").write_text("hello, I am text\n")  # text named .png
    (img / "3.png").unlink()  # missing
    data = (img / "5.png").read_bytes()
    (img / "5.png").write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(
        ImageDecodeError,
        match=r"(?s)^4 of 6 images of dataset 'csv' could not be read:\n  Image '.*0\.png' "
        r"is empty.*1\.png' is not an image.*3\.png' does not exist.*"
        r"5\.png' could not be decoded \(truncated file\).*pass on_error='skip'",
    ):
        load_dataset("csv", root=small_csv)
    ds = load_dataset("csv", root=small_csv, on_error="skip", min_classes=1)
    assert len(ds) == 2
    s = ds.summary()
    assert s["skipped_files"] == 4 and s["excluded"] == {"unreadable image": 4}
    assert "Skipped unreadable files: 4" in ds.format_summary()
    with pytest.raises(ConfigurationError, match=r"^The 'on_error' parameter must be one of"):
        load_dataset("csv", root=small_csv, on_error="ignore")


def test_many_bad_files_first_ten_and_count(tmp_path: Path) -> None:
    rows = []
    for i in range(13):
        (tmp_path / f"{i:02d}.png").write_bytes(b"")
        rows.append({"image": f"{i:02d}.png", "label": "a" if i % 2 else "b", "patient_id": i})
    with pytest.raises(
        ImageDecodeError,
        match=r"(?s)^13 of 13 images .*09\.png' is empty[^\n]*\n"
        r"  \.\.\. and 3 more\n",
    ):
        load_dataset("csv", root=_csv(tmp_path, rows))


def test_missing_patient_column_warns(tmp_path: Path, png) -> None:
    png(tmp_path / "a.png", 1)
    png(tmp_path / "b.png", 2)
    p = _csv(tmp_path, [{"image": "a.png", "label": "x"}, {"image": "b.png", "label": "y"}])
    with pytest.warns(UserWarning, match="has no 'patient_id' column; every image is treated"):
        ds = load_dataset("csv", root=p)
    assert ds.n_patients == 2


def test_image_folder(tmp_path: Path, png) -> None:
    for cls, n in (("pneumonia", 2), ("covid", 3)):
        for i in range(n):
            png(tmp_path / cls / f"pat{i}_img{i}.png", seed=i)
    (tmp_path / "covid" / "readme.txt").write_text("x")
    ds = load_dataset("image-folder", root=tmp_path, patient_pattern=r"pat(\d+)_")
    assert ds.classes == ["covid", "pneumonia"]
    assert list(ds.y) == ["covid"] * 3 + ["pneumonia"] * 2  # alphabetical
    assert list(ds.groups) == ["0", "1", "2", "0", "1"]
    assert ds.summary()["excluded"] == {"not an image file": 1}
    with pytest.warns(UserWarning, match="has no patient ids"):
        load_dataset("image-folder", root=tmp_path)


def test_image_folder_one_class(tmp_path: Path, png) -> None:
    png(tmp_path / "covid" / "a.png")
    with pytest.raises(DataError, match=r"^Dataset 'image-folder' has only 1 class\(es\) left"):
        load_dataset("image-folder", root=tmp_path, patient_pattern="a")


def test_cxr_dev_csv_directly(shared_data: Path) -> None:
    ds = load_dataset("csv", root=shared_data / "cxr-dev" / "metadata.csv")
    s = ds.summary()
    assert s["n_images"] == 512 and s["n_patients"] == 301
    assert s["labels"] == {"covid": 419, "normal": 19, "pneumonia": 74}
    assert s["patients_per_label"] == {"covid": 255, "normal": 16, "pneumonia": 39}
    assert s["views"] == {"AP": 102, "AP Supine": 130, "PA": 280}
    assert s["images_per_patient"] == {1: 183, 2: 62, 3: 33, 4: 16, 5: 4, 7: 2, 8: 1}
    sel = ds.select(["covid", "pneumonia"])
    assert len(sel) == 493 and sel.summary()["excluded"] == {"label not selected": 19}

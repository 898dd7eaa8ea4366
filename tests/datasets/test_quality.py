"""Data problems that must not pass silently: repeated rows, look-alike labels,
paths outside the root, unread files, skipped images."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest

from cxrkit.datasets import load_dataset
from cxrkit.errors import DataError


def _table(tmp_path: Path, png, n: int = 12) -> list[dict]:
    rows = []
    for i in range(n):
        png(tmp_path / "data" / "img" / f"{i}.png", seed=i)
        rows.append(
            {
                "image": f"img/{i}.png",
                "label": "covid" if i % 2 else "pneumonia",
                "patient_id": f"p{i}",
            }
        )
    return rows


def _csv(tmp_path: Path, rows: list[dict]) -> Path:
    p = tmp_path / "data" / "meta.csv"
    pd.DataFrame(rows).to_csv(p, index=False)
    return p


def test_repeated_rows_are_used_once_and_counted(tmp_path, png):
    rows = _table(tmp_path, png)
    csv = _csv(tmp_path, rows + rows[:4])  # 12 distinct images, 16 rows
    with pytest.warns(
        UserWarning,
        match=r"4 row\(s\) of dataset 'csv' repeat an earlier row "
        r"for the same image file, label and patient",
    ):
        ds = load_dataset("csv", root=csv)
    assert len(ds) == 12 and ds.summary()["excluded"] == {"duplicate row": 4}
    assert "repeat an earlier row" in ds.format_summary()


def test_one_file_with_conflicting_labels_is_an_error(tmp_path, png):
    rows = _table(tmp_path, png)
    clash = {**rows[0], "label": "covid"}  # img/0.png is 'pneumonia' in its first row
    other_patient = {**rows[1], "patient_id": "p99"}
    csv = _csv(tmp_path, [*rows, clash, other_patient])
    with pytest.raises(
        DataError,
        match=r"2 image file\(s\) of dataset 'csv' are listed more "
        r"than once with different labels or patient ids \(label/patient\): "
        r"'.*0\.png' \(covid/p0, pneumonia/p0\); '.*1\.png' \(covid/p1, covid/p99\)",
    ):
        load_dataset("csv", root=csv)
    with pytest.warns(UserWarning, match="all 4 of their rows were left out"):
        ds = load_dataset("csv", root=csv, on_error="skip")
    assert len(ds) == 10 and ds.summary()["excluded"] == {"same file, conflicting rows": 4}


def test_paths_outside_the_csv_folder_are_announced_or_refused(tmp_path, png):
    rows = _table(tmp_path, png)
    png(tmp_path / "elsewhere" / "x.png", seed=50)
    rows.append({"image": "../elsewhere/x.png", "label": "covid", "patient_id": "px"})
    csv = _csv(tmp_path, rows)
    with pytest.warns(
        UserWarning,
        match=r"1 of 13 image paths of dataset 'csv' lie outside its "
        r"folder '.*data' \(e\.g\. through '\.\./'",
    ):
        ds = load_dataset("csv", root=csv)
    assert len(ds) == 13 and "elsewhere" in ds.summary()["notes"][0]
    with pytest.raises(DataError, match="pass allow_outside_root=True to read them"):
        load_dataset("csv", root=csv, allow_outside_root=False)


def test_labels_differing_only_by_case_or_whitespace_warn(tmp_path, png):
    rows = _table(tmp_path, png)
    rows[1]["label"] = "Covid"
    rows[3]["label"] = "COVID"
    rows[5]["label"] = "covid pneumonia"
    rows[7]["label"] = "covid  pneumonia"
    with pytest.warns(UserWarning) as record:
        ds = load_dataset("csv", root=_csv(tmp_path, rows), min_classes=2)
    messages = [str(w.message) for w in record]
    assert any(
        "differ only by case or whitespace: 'COVID' (1 images), 'Covid' (1 images), "
        "'covid' (2 images)" in m
        for m in messages
    )
    assert any("'covid  pneumonia' (1 images), 'covid pneumonia' (1 images)" in m for m in messages)
    assert len(ds.notes) == 2


def test_image_folder_warns_about_files_it_does_not_read(tmp_path, png):
    for i in range(4):
        png(tmp_path / "covid" / f"{i}.png", seed=i)
        png(tmp_path / "normal" / f"{i}.png", seed=10 + i)
    for name in ("a.webp", "b.gif", "README"):
        (tmp_path / "covid" / name).write_bytes(b"x")
    (tmp_path / "covid" / ".DS_Store").write_bytes(b"x")
    with pytest.warns(
        UserWarning,
        match=r"3 file\(s\) in image-folder '.*' were not read because "
        r"their extension is not an image extension \(\(no extension\) 1, \.gif 1, "
        r"\.webp 1\)",
    ):
        ds = load_dataset("image-folder", root=tmp_path, patient_pattern=r"(\d+)")
    assert len(ds) == 8 and ds.summary()["excluded"] == {"not an image file": 4}


def test_skipped_images_are_announced_on_the_console(tmp_path, png):
    rows = _table(tmp_path, png)
    (tmp_path / "data" / "img" / "3.png").write_text("root:x:0:0:root:/root:/bin/bash\n" * 4)
    with pytest.warns(
        UserWarning,
        match=r"Dataset 'csv': 1 of 12 images could not be decoded and "
        r"were left out \(on_error='skip'\): Image '.*3\.png' is not an image: its "
        r"content is a text file",
    ) as record:
        ds = load_dataset("csv", root=_csv(tmp_path, rows), on_error="skip")
    assert len(ds) == 11 and not any("root:x" in str(w.message) for w in record)


def test_clean_table_gives_no_warning(tmp_path, png):
    csv = _csv(tmp_path, _table(tmp_path, png))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds = load_dataset("csv", root=csv)
    assert ds.notes == [] and "Notes" not in ds.format_summary()

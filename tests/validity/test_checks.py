from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cxrkit.validity import check_dataset, format_guards, run_data_checks


class _DS:
    def __init__(self, X, y, groups, metadata):
        self.X, self.y, self.groups, self.metadata = X, y, groups, metadata


def _synthetic(n=24, seed=0, offset=0):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 255, (n, 32, 32), dtype=np.uint8)
    y = np.array(["covid", "pneumonia"] * (n // 2))
    groups = np.array([f"p{offset + i}" for i in range(n)])
    md = pd.DataFrame(
        {
            "image": [f"img{offset + i}.png" for i in range(n)],
            "label": y,
            "patient_id": groups,
            "view": ["PA", "AP"] * (n // 2),
            "source": "s1",
            "sex": ["F", "F", "M", "M"] * (n // 4),
            "age": 50.0,
        }
    )
    return _DS(X, y, groups, md)


def test_clean_dataset_passes_except_planted_view():
    ds = _synthetic()
    res = {r.name: r for r in check_dataset(ds)}
    assert res["patient_ids"].status == "PASS"
    assert res["near_duplicates"].status == "PASS"
    assert res["confounding:view"].status == "FAIL"  # view == label here
    assert res["confounding:sex"].status == "PASS"
    assert "confounding:view" in format_guards(res.values())


def test_train_test_leakage_and_duplicates_are_fail():
    train, test = _synthetic(), _synthetic(8, seed=1, offset=100)
    res = {r.name: r for r in run_data_checks(train, test)}
    assert res["train_test_leakage"].status == "PASS"
    assert res["train_test_duplicates"].status == "PASS"
    test.X[0] = train.X[5]
    test.groups[1] = train.groups[3]
    res = {r.name: r for r in run_data_checks(train, test)}
    assert res["train_test_leakage"].status == "FAIL"
    assert res["train_test_leakage"].numbers["n_shared_patients"] == 1
    assert res["train_test_duplicates"].status == "FAIL"
    assert res["train_test_duplicates"].numbers["n_test_images_with_copy"] == 1


def test_duplicate_under_other_patient_warns_and_missing_ids_warn():
    ds = _synthetic()
    ds.X[7] = ds.X[2]
    res = {r.name: r for r in run_data_checks(ds, confounding=False)}
    assert res["near_duplicates"].status == "WARN"
    assert res["near_duplicates"].numbers["pairs"][0]["a"] == "img2.png"
    ds.groups = None
    assert run_data_checks(ds, duplicates=False)[0].status == "WARN"


def test_not_a_dataset():
    with pytest.raises(ValueError, match=r"^run_data_checks needs an object with X and y"):
        run_data_checks(object())


def test_image_folder_without_patient_ids_is_a_warning_in_check(tmp_path, capsys):
    """Without patient ids every image is its own patient: WARN with advice, not PASS."""
    from PIL import Image

    from cxrkit.cli import main

    rng = np.random.default_rng(0)
    for label in ("covid", "normal"):
        (tmp_path / label).mkdir()
        for i in range(4):
            Image.fromarray(rng.integers(0, 255, (32, 32), dtype=np.uint8)).save(
                tmp_path / label / f"{i}.png"
            )
    main(["check", "--data", f"image-folder:{tmp_path}", "--quiet"])
    captured = capsys.readouterr()
    out = captured.out
    err = " ".join(captured.err.split())  # wrapped to the terminal's width
    assert "warning: image-folder" in err and "has no patient ids" in err
    line = next(ln for ln in out.splitlines() if "patient_ids" in ln)
    assert "WARN" in line and "PASS" not in line
    results = run_data_checks(load_dataset_quiet(tmp_path))
    guard = next(r for r in results if r.name == "patient_ids")
    assert guard.status == "WARN" and "every image is treated as its own patient" in guard.summary
    assert "patient_pattern=" in guard.advice


def load_dataset_quiet(root):
    import warnings

    from cxrkit.datasets import load_dataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_dataset("image-folder", root=str(root))

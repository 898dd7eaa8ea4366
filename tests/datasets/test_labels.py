"""The per-finding label matrix, the finding vocabulary and the streamed file check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cxrkit.datasets import MISSING_FILE, CXRDataset, finalize_dataset, missing_files
from cxrkit.datasets._vocabulary import (
    apply_uncertain,
    check_label_codes,
    map_to_vocabulary,
    resolve_finding,
)
from cxrkit.errors import ConfigurationError, DataError


def _dataset(tmp_path: Path, png: object, n: int = 6) -> CXRDataset:
    paths = [png(tmp_path / f"img{i}.png", seed=i) for i in range(n)]  # type: ignore[operator]
    table = pd.DataFrame(
        {
            "image": [str(p) for p in paths],
            "label": ["a", "b"] * (n // 2),
            "patient_id": [f"p{i // 2}" for i in range(n)],
        }
    )
    labels = pd.DataFrame(
        {"effusion": [1, 0, -1, np.nan, 1, 0], "edema": [0, 0, 1, 1, np.nan, -1]}, dtype=np.float32
    )
    return finalize_dataset("t", str(tmp_path), table, labels=labels, check="exists")


def test_label_matrix_policies_and_selection(tmp_path: Path, png: object) -> None:
    ds = _dataset(tmp_path, png)
    assert ds.findings == ["effusion", "edema"]
    raw = ds.labels["effusion"].tolist()
    assert raw[:3] == [1.0, 0.0, -1.0] and np.isnan(raw[3])
    ign = ds.label_matrix(uncertain="ignore")
    assert ign.dtype == np.float32 and ign.shape == (6, 2) and np.isnan(ign[2, 0])
    assert ds.label_matrix("effusion", uncertain="ones")[2, 0] == 1.0
    assert ds.label_matrix(["edema"], uncertain="zeros")[:, 0][5] == 0.0
    assert np.isnan(ds.label_matrix(uncertain="ones")[3, 0])  # missing stays missing
    counts = ds.label_summary().loc["effusion"].to_dict()
    assert counts == {"positive": 2, "negative": 2, "uncertain": 1, "missing": 1}
    sub = ds.subset([4, 5]).select(["a"])
    assert sub.labels["effusion"].tolist() == [1.0] and len(sub) == 1
    assert ds.summary()["findings"]["edema"]["uncertain"] == 1
    both = ds.relabel(["edema", "hernia"])
    assert both.findings == ["edema", "hernia"] and both.labels["hernia"].isna().all()
    with pytest.raises(
        DataError,
        match=r"^relabel\(\) takes names of the common vocabulary; "
        r"\['Effusion'\] are not",
    ):
        ds.relabel(["Effusion"])
    with pytest.raises(DataError, match=r"^Dataset 't' has no finding\(s\) \['hernia'\]"):
        ds.label_matrix(["hernia"])


def test_single_label_dataset_has_no_matrix(tmp_path: Path, png: object) -> None:
    ds = _dataset(tmp_path, png)
    ds.labels = None
    assert ds.findings == [] and "findings" not in ds.summary()
    with pytest.raises(DataError, match=r"^Dataset 't' has no per-finding label matrix"):
        ds.label_matrix()


def test_vocabulary_mapping_combines_sources() -> None:
    native = pd.DataFrame(
        {"rib fracture": [1, 0, 0, np.nan, np.nan], "clavicle fracture": [0, -1, 0, 0, np.nan]},
        dtype=np.float32,
    )
    out = map_to_vocabulary(
        native, {"fracture": ["rib fracture", "clavicle fracture"], "hernia": ["hiatal hernia"]}
    )
    assert list(out.columns) == ["fracture"]
    got = out["fracture"].tolist()
    assert got[:4] == [1.0, -1.0, 0.0, 0.0] and np.isnan(got[4])
    assert apply_uncertain(np.array([-1.0, 1.0]), "zeros").tolist() == [0.0, 1.0]
    with pytest.raises(
        ConfigurationError,
        match=r"^The 'uncertain' parameter must be one of "
        r"\['ignore', 'ones', 'zeros'\]\. Got 'maybe'",
    ):
        apply_uncertain(np.zeros(1), "maybe")


def test_finding_names_and_did_you_mean() -> None:
    avail = {"Pleural Effusion": "effusion", "Pneumonia": "pneumonia"}
    assert resolve_finding("pleural_effusion", avail, "d") == "effusion"
    assert resolve_finding("EFFUSION", avail, "d") == "effusion"
    with pytest.raises(
        ConfigurationError,
        match=r"^Dataset 'd' has no finding 'pneumonai'\. "
        r"Did you mean 'pneumonia'\? Its findings: "
        r"effusion, pneumonia\.$",
    ):
        resolve_finding("pneumonai", avail, "d")
    with pytest.raises(
        ConfigurationError,
        match=r"has no finding 'hernia' \(it is in the common "
        r"vocabulary, but this dataset does not label",
    ):
        resolve_finding("hernia", avail, "d")


def test_unknown_label_codes_are_found() -> None:
    df = pd.DataFrame({"A": [1.0, 0.0, 2.0, np.nan], "B": ["1", "yes", "", None]})
    reasons = check_label_codes(df, ["A", "B"], "d")
    assert sorted(reasons.index) == [1, 2]
    assert "unknown label code in 'A': ['2.0']" in reasons[2]
    assert reasons.attrs["message"].startswith(
        "2 rows of dataset 'd' have label codes other than [1.0, 0.0, -1.0] or blank"
    )


def test_missing_files_counted_not_listed(tmp_path: Path, png: object) -> None:
    present = [str(png(tmp_path / "a" / f"{i}.png")) for i in range(3)]  # type: ignore[operator]
    absent = [str(tmp_path / "a" / "x.png"), str(tmp_path / "nodir" / "y.png")]
    mask = missing_files(present + absent, progress=False)
    assert mask.tolist() == [False, False, False, True, True]
    names = [f"{i}.png" for i in range(3)] + ["x.png", "y.png"]
    table = pd.DataFrame({"image": present + absent, "label": ["a"] * 5, "patient_id": names})
    labels = pd.DataFrame({"edema": np.arange(5, dtype=np.float32)})
    with pytest.raises(DataError, match=r"^2 of 5 images listed by dataset 't' have no file") as e:
        finalize_dataset("t", None, table, check="exists", min_classes=1)
    assert "x.png" in str(e.value) and "on_error='skip'" in str(e.value)
    ds = finalize_dataset(
        "t", None, table, check="exists", on_error="skip", min_classes=1, labels=labels
    )
    assert len(ds) == 3 and ds.summary()["excluded"] == {MISSING_FILE: 2}
    assert ds.labels["edema"].tolist() == [0.0, 1.0, 2.0]  # rows kept in step with labels
    with pytest.raises(ConfigurationError, match=r"^The 'check_images' parameter must be"):
        finalize_dataset("t", None, table, check="stat")

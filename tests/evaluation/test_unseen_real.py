"""hall2020-unseen on real images through the CLI: a patient-disjoint external set made
from cxr-dev (covid images of held-out patients plus the `normal` images, a class the
training never saw), the 21-model ensemble, and the JPEG-q90 re-encoding."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from cxrkit.cli import main


def _external_split(shared_data, tmp_path, n_train=12, n_test=6):
    root = shared_data / "cxr-dev"
    meta = pd.read_csv(root / "metadata.csv")
    meta["image"] = [str(root / p) for p in meta["image"]]
    pid = meta["patient_id"].astype(str)
    normal = meta[meta["label"] == "normal"].head(n_test)
    covid_pat = sorted(set(pid[meta["label"] == "covid"]) - set(pid[meta["label"] != "covid"]))
    rng = np.random.default_rng(0)
    held = set(rng.choice(covid_pat, size=n_test, replace=False))
    test = pd.concat([meta[(meta["label"] == "covid") & pid.isin(held)].head(n_test), normal])
    out = set(pid[test.index]) | held
    train = meta[meta["label"].isin(["covid", "pneumonia"]) & ~pid.isin(out)]
    train = train.groupby("label").head(n_train)
    train.to_csv(tmp_path / "train.csv", index=False)
    test.to_csv(tmp_path / "test.csv", index=False)
    return train, test


def test_unseen_on_an_external_set_made_from_cxr_dev(shared_data, shared_weights, tmp_path, capsys):
    train, test = _external_split(shared_data, tmp_path)
    hed = shared_weights / "vgg16_features_from_hed_bsds500.pth"
    args = ["run", "hall2020-unseen", "--data", f"csv:{tmp_path / 'train.csv'}"]
    args += ["--labels", "covid,pneumonia", "--test-data", f"csv:{tmp_path / 'test.csv'}"]
    args += ["--test-labels", "covid,normal", "--out", str(tmp_path / "rep"), "--quiet"]
    if hed.is_file():
        args += ["--pretrained", f"vgg16={hed}", "--pretrained-partial"]
    for opt in ("n_snapshots=7", "interval=1", "max_epochs=7", "validation=4"):
        args += ["--set", opt]
    args += ["--set", "probes=false", "--set", "n_bootstraps=50"]
    assert main(args) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "never saw in training" in out
    m = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert m["classes"] == ["normal", "covid"] and m["n_images"] == len(test)
    members = m["extra"]["members"]
    assert set(members) == {"resnet50", "vgg16", "hall2020_cnn"}
    assert sum(len(v) for v in members.values()) == 21
    assert m["data_summary"]["jpeg_recompressed_labels"] == ["normal", "pneumonia"]
    checks = {v["name"]: v for v in m["validity"]}
    assert checks["train_test_leakage"]["status"] == "PASS"
    # No test image is a copy of a training image (they were mixed up before).
    assert checks["train_test_duplicates"]["numbers"]["n_pairs"] == 0, checks[
        "train_test_duplicates"
    ]
    assert 0.0 <= m["metrics"]["auc"]["value"] <= 1.0

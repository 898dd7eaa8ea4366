"""The multilabel-cv protocol and its report, from the command line and from Python."""

from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cxrkit import load_dataset, load_model
from cxrkit.cli import main
from cxrkit.datasets import CXRDataset
from cxrkit.errors import ConfigurationError, DataError
from cxrkit.evaluation import (
    RunResult,
    compute_multilabel_metrics,
    format_summary_table,
    write_report,
)
from cxrkit.evaluation.protocols import MultilabelCV, create_protocol
from cxrkit.evaluation.protocols._multilabel import finding_frame, label_policy

from ..conftest import make_findings

FINDINGS = ["effusion", "nodule", "opacity"]


def _write_csv_dataset(root, n_patients: int = 30, per: int = 2, seed: int = 0):
    """PNG images with 3 findings, a CSV with one column per finding (some -1 and empty)."""
    X, Y = make_findings(n_patients * per, size=16, k=3, seed=seed)
    rng = np.random.default_rng(seed)
    Y = Y.copy()
    Y[rng.random(Y.shape) < 0.08] = np.nan
    Y[rng.random(Y.shape) < 0.08] = -1
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, img in enumerate(X):
        Image.fromarray(img).save(root / f"{i}.png")
        labels = {f: ("" if np.isnan(v) else int(v)) for f, v in zip(FINDINGS, Y[i])}
        any_pos = bool(np.nansum(Y[i] == 1))
        rows.append(
            {
                "image": f"{i}.png",
                "label": "finding" if any_pos else "no_finding",
                "patient_id": f"p{i // per}",
                **labels,
            }
        )
    with (root / "metadata.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return root / "metadata.csv", Y


def test_cli_multilabel_cv_writes_a_report_with_per_finding_cis(tmp_path, capsys):
    meta, Y = _write_csv_dataset(tmp_path / "data")
    out = tmp_path / "rep"
    code = main(
        [
            "run",
            "multilabel-cv",
            "--data",
            f"csv:{meta}",
            "--labels",
            ",".join(FINDINGS),
            "--arch",
            "tiny_cnn",
            "--set",
            "input_size=16",
            "--set",
            "n_splits=3",
            "--set",
            "max_epochs=2",
            "--set",
            "n_bootstraps=50",
            "--set",
            "lr=3e-3",
            "--out",
            str(out),
            "--save",
            str(tmp_path / "model"),
            "--quiet",
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    model = load_model(tmp_path / "model")
    assert model.task_ == "multilabel-indicator" and model.labels_ == FINDINGS
    assert model.predict_proba(make_findings(4, size=16, k=3)[0]).shape == (4, 3)
    assert "Macro AUC" in printed and "opacity" in printed
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["task"] == "multilabel-indicator" and doc["protocol"] == "multilabel-cv"
    for f in FINDINGS:
        entry = doc["metrics"]["findings"][f]
        assert entry["defined"] is True
        auc = entry["auc"]
        assert auc["ci_low"] <= auc["value"] <= auc["ci_high"] and auc["ci_high"] > auc["ci_low"]
        for m in ("auc", "sensitivity", "specificity", "ppv", "npv"):
            e = entry[m]
            assert "patients" in e["method"]
            if e["value"] is not None:  # PPV/NPV are undefined when nothing is called +/-
                assert e["ci_low"] <= e["value"] <= e["ci_high"], (f, m, e)
    policy = doc["extra"]["label_policy"]
    assert policy["uncertain"] == "ignore"
    for j, f in enumerate(FINDINGS):
        assert policy["findings"][f]["missing"] == int(np.isnan(Y[:, j]).sum())
        assert policy["findings"][f]["uncertain"] == int((Y[:, j] == -1).sum())
        n_eval = int(((Y[:, j] == 0) | (Y[:, j] == 1)).sum())
        assert doc["metrics"]["findings"][f]["settings"]["n_images"] == n_eval
    assert doc["validity"][0]["name"] == "patient_leakage"
    assert doc["validity"][0]["status"] == "PASS"
    assert len(doc["per_fold"]) == 3 and "macro_auc" in doc["per_fold"][0]
    html = (out / "report.html").read_text()
    for text in ("Metrics per finding", "Label policy", "Uncertain (-1)", "Macro AUC", "Micro AUC"):
        assert text in html
    assert html.count("data:image/png;base64") >= 1
    pred = pd.read_csv(out / "predictions.csv")
    assert list(pred.columns[-3:]) == [f"probability_{f}" for f in FINDINGS]
    assert len(pred) == len(Y) and pred["fold"].nunique() == 3
    assert (out / "roc.png").is_file() and not (out / "per_fold.png").exists()


def test_finding_frame_from_label_matrix_or_metadata_and_errors(tmp_path):
    meta, Y = _write_csv_dataset(tmp_path / "data", n_patients=6)
    ds = load_dataset("csv", root=str(meta))
    frame = finding_frame(ds, FINDINGS)
    np.testing.assert_array_equal(frame.to_numpy(), Y)
    with pytest.raises(DataError, match="no finding or metadata column \\['nope'\\]"):
        finding_frame(ds, ["effusion", "nope"])
    with pytest.raises(DataError, match="no label matrix"):
        finding_frame(ds, None)
    ds.labels = pd.DataFrame(np.nan_to_num(Y, nan=0.0), columns=FINDINGS)
    assert not np.isnan(finding_frame(ds, None).to_numpy()).any()
    ds.metadata["effusion"] = "yes"
    ds.labels = None
    with pytest.raises(DataError, match="must hold numbers"):
        finding_frame(ds, FINDINGS)
    policy = label_policy(pd.DataFrame({"a": [1, 0, -1, np.nan]}), "ones")
    assert policy["findings"]["a"] == {
        "positive": 1,
        "negative": 1,
        "uncertain": 1,
        "missing": 1,
        "evaluated": 3,
    }


def test_protocol_is_registered_and_builds_grouped_multilabel_folds():
    p = create_protocol("multilabel-cv", architecture="tiny_cnn", n_snapshots=2, interval=1)
    est, cv = p.build()
    assert type(cv).__name__ == "PatientMultilabelStratifiedKFold"
    assert type(est).__name__ == "SnapshotEnsembleClassifier" and est.policy == "last"
    assert isinstance(MultilabelCV().build()[0].uncertain, str)


def test_report_of_a_multilabel_result_with_an_undefined_finding(tmp_path):
    rng = np.random.default_rng(0)
    Y = (rng.random((40, 2)) < 0.5).astype(float)
    Y[:, 1] = 0.0
    S = rng.random((40, 2))
    r = RunResult(
        "multilabel-cv",
        {"n_bootstraps": 20},
        "a, b",
        ["a", "b"],
        [f"i{i}" for i in range(40)],
        Y,
        S,
        groups=np.repeat(np.arange(20), 2),
    )
    r.metrics = compute_multilabel_metrics(Y, S, names=["a", "b"], groups=r.groups, n_bootstraps=20)
    files = write_report(r, tmp_path)
    html = files["html"].read_text()
    assert "undefined: no positive image" in html
    doc = json.loads(files["metrics"].read_text())
    assert doc["metrics"]["undefined"] == {
        "b": "no positive image among the 40 with an observed label"
    }


def _in_memory(n_patients: int = 24, per: int = 2) -> CXRDataset:
    X, Y = make_findings(n_patients * per, size=16, k=3, seed=2)
    Y = Y.copy()
    Y[::7, 0] = -1
    ds = load_dataset("synthetic", n_patients=n_patients, images_per_patient=per, size=16)
    ds.X = X
    ds.labels = pd.DataFrame(Y, columns=FINDINGS).astype(np.float32)
    return ds


def test_snapshot_ensemble_per_fold_on_a_label_matrix_with_u_ones():
    ds = _in_memory()
    p = MultilabelCV(
        architecture="tiny_cnn",
        input_size=16,
        n_splits=2,
        max_epochs=3,
        n_snapshots=2,
        interval=1,
        uncertain="ones",
        n_bootstraps=30,
        validity_checks=False,
    )
    r = p.run(ds, progress=False)
    assert r.task == "multilabel-indicator" and r.classes == FINDINGS
    assert r.y_score.shape == (48, 3) and np.isfinite(r.y_score).all()
    assert not np.isnan(r.y_true).any()  # U-Ones: -1 became 1, nothing left out
    assert (r.y_true[::7, 0] == 1).all()
    assert r.extra["label_policy"]["findings"]["effusion"]["evaluated"] == 48
    assert r.metrics["findings"]["effusion"]["settings"]["n_positive"] == int(
        (ds.labels["effusion"] != 0).sum()
    )
    assert "Macro AUC" in format_summary_table(r)


def test_multilabel_cv_refuses_binary_only_options_and_unknown_policy():
    ds = _in_memory(6, 1)
    with pytest.raises(ConfigurationError, match="binary protocols only"):
        MultilabelCV(calibration="sigmoid").run(ds, progress=False)
    with pytest.raises(ConfigurationError, match="uncertain='maybe'"):
        MultilabelCV(uncertain="maybe").build()


def test_run_result_checks_multi_output_shapes():
    with pytest.raises(DataError, match="one column per class or finding"):
        RunResult("x", {}, "a", ["a", "b", "c"], ["i", "j"], ["a", "b"], np.ones((2, 2)))
    with pytest.raises(DataError, match="must have the shape of"):
        RunResult("x", {}, "a", ["a", "b"], ["i", "j"], np.ones((2, 3)), np.ones((2, 2)))
    ok = RunResult("x", {}, "a", ["a", "b", "c"], ["i", "j"], ["a", "b"], np.ones((2, 3)) / 3)
    assert ok.task == "multiclass"


def test_report_has_grad_cam_of_the_chosen_finding(tmp_path):
    from cxrkit.evaluation.protocols import create_protocol

    meta, Y = _write_csv_dataset(tmp_path / "data")
    ds = load_dataset("csv", root=str(meta))
    p = create_protocol(
        "multilabel-cv",
        labels=tuple(FINDINGS),
        architecture="tiny_cnn",
        input_size=16,
        n_splits=3,
        max_epochs=2,
        n_bootstraps=20,
        gradcam_finding="nodule",
    )
    r = p.run(ds, progress=False)
    sec = next(s for s in r.sections if s.key == "gradcam-finding")
    assert sec.data["finding"] == "nodule" and sec.data["images"]
    assert {e["kind"] for e in sec.data["images"]} <= {"TP", "FP", "TN", "FN"}
    assert "data:image/png;base64" in sec.html and "gradcam-finding.png" in sec.figures
    files = write_report(r, tmp_path / "rep")
    assert "Grad-CAM: nodule" in files["html"].read_text()
    bad = create_protocol("multilabel-cv", labels=tuple(FINDINGS), gradcam_finding="none")
    with pytest.raises(ConfigurationError, match="gradcam_finding='none' is not one"):
        bad.run(ds, progress=False)  # refused before any training


def test_multilabel_cv_scores_the_refit_model_on_a_held_out_test_set(tmp_path):
    meta, _ = _write_csv_dataset(tmp_path / "train", n_patients=24, seed=0)
    meta_test, _ = _write_csv_dataset(tmp_path / "test", n_patients=10, seed=3)
    ds, test = load_dataset("csv", root=str(meta)), load_dataset("csv", root=str(meta_test))
    opts = dict(labels=tuple(FINDINGS), architecture="tiny_cnn", input_size=16, n_splits=3)
    p = create_protocol("multilabel-cv", max_epochs=2, n_bootstraps=20, **opts)
    r = p.run(ds, test=test, progress=False)
    sec = next(s for s in r.sections if s.key == "held-out")
    assert sec.data["n_images"] == len(test)
    frame = finding_frame(test, list(FINDINGS)).to_numpy()
    truth = np.where(frame == -1, np.nan, frame)
    expected = compute_multilabel_metrics(
        truth,
        p.fitted_.predict_proba(test.X),
        names=list(FINDINGS),
        groups=np.asarray(test.groups).astype(str),
        n_bootstraps=20,
    )
    for f in FINDINGS:
        assert sec.data["metrics"]["findings"][f]["auc"]["value"] == pytest.approx(
            expected["findings"][f]["auc"]["value"]
        )
    assert r.extra["final_model"]["trained_on"] == len(ds)
    assert "train_test_leakage" in {v["name"] for v in r.validity}
    missing = load_dataset("csv", root=str(meta_test))
    missing.metadata = missing.metadata.drop(columns=["opacity"])
    with pytest.raises(DataError):
        create_protocol("multilabel-cv", max_epochs=1, **opts).run(ds, test=missing, progress=False)

"""hall2020-cv with three labels: a multi-class run, its metrics and its report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

from cxrkit.cli import main
from cxrkit.errors import ConfigurationError
from cxrkit.evaluation.protocols import Hall2020CV

from ..conftest import make_findings

CLASSES = ["covid", "normal", "pneumonia"]


def _folder(root, n: int = 48):
    """An image-folder dataset of 3 classes, each a bright square in its own place."""
    X, cls = make_findings(n, size=16, k=3, seed=0, multiclass=True)
    for i, (img, c) in enumerate(zip(X, cls)):
        d = root / CLASSES[c]
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(d / f"{i}.png")
    return root


def test_hall2020_cv_with_three_labels_is_multiclass(tmp_path, capsys):
    root = _folder(tmp_path / "data")
    out = tmp_path / "rep"
    args = ["run", "hall2020-cv", "--data", f"image-folder:{root}"]
    args += ["--labels", "covid,pneumonia,normal", "--arch", "tiny_cnn", "--quiet"]
    for kv in (
        "input_size=16",
        "n_splits=3",
        "n_snapshots=2",
        "interval=1",
        "max_epochs=3",
        "n_bootstraps=50",
        "if_threshold_not_reached=last",
        "lr=3e-3",
    ):
        args += ["--set", kv]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Macro AUC" in printed and "Accuracy" in printed
    doc = json.loads((out / "metrics.json").read_text())
    assert doc["task"] == "multiclass" and doc["classes"] == CLASSES
    m = doc["metrics"]
    pred = pd.read_csv(out / "predictions.csv")
    proba = pred[[f"probability_{c}" for c in CLASSES]].to_numpy()
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-5)
    codes = np.searchsorted(CLASSES, pred["label"].to_numpy())
    assert m["macro_auc"]["value"] == pytest.approx(
        roc_auc_score(codes, proba, multi_class="ovr"), abs=1e-6
    )
    for c in CLASSES:
        e = m["classes"][c]["auc"]
        assert e["ci_low"] <= e["value"] <= e["ci_high"] and "patients" in e["method"]
    acc = m["accuracy"]
    assert acc["ci_low"] <= acc["value"] <= acc["ci_high"]
    cm = np.array(m["confusion_matrix"]["matrix"])
    assert cm.shape == (3, 3) and cm.sum() == len(pred)
    assert (cm.sum(1) == np.bincount(codes, minlength=3)).all()
    assert (out / "confusion_matrix.png").is_file()
    html = (out / "report.html").read_text()
    assert "Metrics per class" in html and "Confusion matrix" in html
    assert "Clinical validation" not in html
    assert len(doc["per_fold"]) == 3 and "snapshot_rule" in doc["per_fold"][0]
    assert doc["validity"][0]["status"] == "PASS"


def test_multiclass_refuses_binary_only_options():
    p = Hall2020CV(labels=("covid", "pneumonia", "normal"), calibration="sigmoid")
    with pytest.raises(ConfigurationError, match="multi-class"):
        p.check_clinical_options()
    assert not Hall2020CV(labels=("covid", "pneumonia")).is_multiclass()


def test_multiclass_refuses_a_test_set_before_training():
    import numpy as np

    from cxrkit.datasets import load_dataset

    ds = load_dataset("synthetic", n_patients=6, size=16, random_state=0)
    ds.y = np.array(["covid", "pneumonia", "normal"] * 4)[: len(ds)]
    p = Hall2020CV(labels=("covid", "pneumonia", "normal"), architecture="tiny_cnn")
    with pytest.raises(ConfigurationError, match="--test-data is scored for two-label runs"):
        p.run(ds, test=ds, progress=False)

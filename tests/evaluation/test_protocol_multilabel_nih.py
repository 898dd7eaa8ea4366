"""multilabel-cv on Google's four adjudicated findings for ChestX-ray14 (real label file, tiny images)."""

from __future__ import annotations

import json

from cxrkit.cli import main
from cxrkit.datasets import load_dataset

FOUR = ["lung_opacity", "pneumothorax", "nodule_or_mass", "fracture"]


def test_multilabel_cv_on_the_four_adjudicated_findings(nih_root, labels_dir, tmp_path, capsys):
    ds = load_dataset(
        "chestxray14", root=nih_root, target="airspace_opacity", split="test", labels_dir=labels_dir
    )
    assert ds.findings == FOUR
    counts = ds.label_summary()
    out = tmp_path / "rep"
    sets = ["input_size=16", "n_splits=3", "max_epochs=2", "n_bootstraps=50", "probes=false"]
    code = main(
        ["run", "multilabel-cv", "--data", f"chestxray14:{nih_root}"]
        + ["--data-option", "target=airspace_opacity", "--data-option", "split=test"]
        + ["--data-option", f"labels_dir={labels_dir}", "--labels", ",".join(FOUR)]
        + ["--arch", "tiny_cnn", *[x for s in sets for x in ("--set", s)]]
        + ["--out", str(out), "--quiet"]
    )
    assert code == 0, capsys.readouterr().err
    doc = json.loads((out / "metrics.json").read_text())
    policy = doc["extra"]["label_policy"]["findings"]
    for f in FOUR:
        entry = doc["metrics"]["findings"][f]
        assert entry["defined"] is True, (f, entry)
        auc = entry["auc"]
        assert auc["ci_low"] <= auc["value"] <= auc["ci_high"] and "patients" in auc["method"]
        n_observed = int(counts.loc[f, "positive"] + counts.loc[f, "negative"])
        assert entry["settings"]["n_images"] == n_observed
        assert policy[f]["uncertain"] == int(counts.loc[f, "uncertain"])
    html = (out / "report.html").read_text()
    assert "Metrics per finding" in html and "fracture" in html

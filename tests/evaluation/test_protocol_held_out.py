"""A cross-validating protocol with a held-out test set: internal and external figures in one report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cxrkit.cli import main
from cxrkit.datasets import load_dataset
from cxrkit.errors import DataError
from cxrkit.evaluation import compute_metrics, write_report
from cxrkit.evaluation.protocols import create_protocol

TINY = {
    "architecture": "tiny_cnn",
    "input_size": 32,
    "n_splits": 3,
    "n_snapshots": 2,
    "interval": 1,
    "max_epochs": 3,
    "n_per_class": None,
    "n_bootstraps": 30,
    "probes": False,
    "lung_guards": False,
    "compare_last_epoch": False,
    "estimator_params": {"lr": 3e-3, "lr_schedule": None, "optimizer": "adam"},
}


def _synth(seed: int, n_patients: int = 16):
    return load_dataset(
        "synthetic", n_patients=n_patients, images_per_patient=2, size=32, random_state=seed
    )


def test_cv_with_test_data_scores_the_refit_model_on_the_test_set(tmp_path):
    train, test = _synth(0), _synth(1)
    p = create_protocol("hall2020-cv", **TINY)
    r = p.run(train, test=test, progress=False)
    assert len(r.y_true) == len(train)  # the main figures stay the cross-validation's
    section = next(s for s in r.sections if s.key == "held-out")
    cv_row, test_row = section.data["rows"]
    assert cv_row["n_images"] == len(train) and test_row["n_images"] == len(test)
    assert cv_row["auc"]["value"] == pytest.approx(r.metrics["auc"]["value"])
    # the test row is exactly the final model's scores on the test images
    pos = r.positive_label
    proba = p.fitted_.predict_proba(test.X)[:, list(p.fitted_.classes_).index(pos)]
    np.testing.assert_allclose(section.data["y_score"], proba, rtol=1e-6)
    expected = compute_metrics(
        np.asarray(test.y).astype(str),
        proba,
        positive_label=pos,
        groups=np.asarray(test.groups).astype(str),
        n_bootstraps=30,
    )
    assert test_row["auc"]["value"] == pytest.approx(expected["auc"]["value"])
    assert r.extra["final_model"]["trained_on"] == len(train)
    # the data guards compared the two sets
    names = {v["name"] for v in r.validity}
    assert {"train_test_leakage", "train_test_duplicates"} <= names
    files = write_report(r, tmp_path / "rep")
    assert "Held-out test set" in (tmp_path / "rep" / "report.html").read_text()
    m = json.loads(files["metrics"].read_text())
    assert m["sections"]["held-out"]["rows"][1]["n_images"] == len(test)


def test_held_out_threshold_is_fitted_without_test_labels():
    train, test = _synth(2), _synth(3)
    rng = np.random.default_rng(0)
    shuffled = test.subset(np.arange(len(test)))
    shuffled.y = rng.permutation(np.asarray(test.y))
    got = []
    for t in (test, shuffled):
        r = create_protocol("hall2020-cv", operating_point="youden", **TINY).run(
            train, test=t, progress=False
        )
        got.append(next(s for s in r.sections if s.key == "held-out").data["threshold"])
    assert got[0] == got[1]


def test_test_set_without_the_models_classes_is_refused():
    train, test = _synth(4), _synth(5)
    only_one = test.select([sorted(set(map(str, test.y)))[0]])
    with pytest.raises(DataError, match="--test-data has no"):
        create_protocol("hall2020-cv", **TINY).run(train, test=only_one, progress=False)


def test_cli_takes_test_data_for_cross_validation(tmp_path, capsys):
    args = ["--data-option", "n_patients=12", "--data-option", "size=32"]
    sets = [f"{k}={json.dumps(v) if isinstance(v, dict) else v}" for k, v in TINY.items()]
    code = main(
        ["run", "hall2020-cv", "--data", "synthetic:", *args, "--test-data", "synthetic:"]
        + ["--test-option", "n_patients=10", "--test-option", "random_state=7"]
        + ["--test-option", "size=32"]
        + [x for s in sets if not s.startswith("estimator_params") for x in ("--set", s)]
        + ["--out", str(tmp_path / "rep"), "--quiet"]
    )
    assert code == 0, capsys.readouterr().err
    m = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert m["sections"]["held-out"]["rows"][1]["n_images"] == 20

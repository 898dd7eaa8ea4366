"""The external-validation protocol end to end on tiny synthetic data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cxrkit.datasets import load_dataset
from cxrkit.errors import ConfigurationError
from cxrkit.evaluation import write_report
from cxrkit.evaluation.protocols import create_protocol, list_protocols

TINY = {
    "architecture": "tiny_cnn",
    "input_size": 32,
    "max_epochs": 3,
    "n_bootstraps": 30,
    "probes": False,
    "lung_guards": False,
    "estimator_params": {"lr": 3e-3, "lr_schedule": None, "optimizer": "adam"},
}


def _synth(seed: int, n_patients: int = 20):
    return load_dataset(
        "synthetic", n_patients=n_patients, images_per_patient=2, size=32, random_state=seed
    )


def test_external_per_site_and_pooled(tmp_path):
    assert "external" in list_protocols()
    train, test = _synth(0), _synth(1)
    p = create_protocol("external", operating_point="youden", **TINY)
    r = p.run(train, test=test, progress=False)
    sites = r.extra["sites"]
    assert {s["site"] for s in sites} == set(map(str, test.metadata["source"]))
    assert sum(s["n_images"] for s in sites) == len(r.y_true) == len(test)
    for s in sites:
        assert "view" in s["test_covariates"] and "view" in s["train_covariates"]
    keys = [s.key for s in r.sections]
    assert sorted(keys) == ["checklist", "clinical", "external"]
    clinical = next(s for s in r.sections if s.key == "clinical")
    assert clinical.data["operating_point"]["fitted"]["rule"] == "youden"
    files = write_report(r, tmp_path / "rep")
    m = json.loads(files["metrics"].read_text())
    assert m["sections"]["external"]["sites"][0]["site"] == sites[0]["site"]
    assert "External validation by site" in (tmp_path / "rep" / "report.html").read_text()


def test_leave_one_source_out_holds_each_source_out():
    ds = _synth(2, n_patients=24)
    p = create_protocol("external", leave_one_source_out=True, **TINY)
    r = p.run(ds, progress=False)
    sources = sorted(set(map(str, ds.metadata["source"])))
    assert [s["site"] for s in r.extra["sites"]] == sources
    assert len(r.y_true) == len(ds) and not np.isnan(r.y_score).any()
    for s in r.extra["sites"]:
        assert s["site"] not in s["train_covariates"]["source"]
    with pytest.raises(ConfigurationError, match=r"needs --test-data NAME:ROOT"):
        create_protocol("external", **TINY).run(ds, progress=False)

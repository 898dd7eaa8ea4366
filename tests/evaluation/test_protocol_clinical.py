"""The clinical-validation options of every protocol, end to end on tiny synthetic data."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cxrkit.datasets import load_dataset
from cxrkit.errors import ConfigurationError
from cxrkit.evaluation import write_report
from cxrkit.evaluation.protocols import (
    Hall2020CV,
    Hall2020Published,
    parse_option,
    protocol_options,
)

TINY = {
    "architecture": "tiny_cnn",
    "input_size": 32,
    "n_bootstraps": 30,
    "probes": False,
    "lung_guards": False,
    "n_splits": 2,
    "n_snapshots": 2,
    "interval": 1,
    "max_epochs": 3,
    "estimator_params": {"lr": 3e-3, "lr_schedule": None, "optimizer": "adam"},
}


@pytest.fixture(scope="module")
def synth():
    ds = load_dataset("synthetic", n_patients=24, images_per_patient=2, size=32)
    rng = np.random.default_rng(0)
    ds.metadata["age"] = rng.choice([8, 30, 50, 70], len(ds))
    ds.metadata["sex"] = rng.choice(["F", "M"], len(ds))
    return ds


def test_defaults_leave_the_main_figures_unchanged(synth):
    plain = Hall2020CV(**TINY).run(synth, progress=False)
    assert [s.key for s in plain.sections] == ["clinical", "checklist"]
    data = plain.sections[0].data
    assert "fitted" not in data["operating_point"]
    assert data["operating_point"]["default"]["threshold"] == 0.5
    with_options = Hall2020CV(**TINY, subgroups=("sex", "age_band"), prevalence=(0.05, 0.3))
    r = with_options.run(synth, progress=False)
    np.testing.assert_allclose(r.y_score, plain.y_score)
    assert r.metrics["auc"]["value"] == plain.metrics["auc"]["value"]
    sub = r.sections[0].data["subgroups"]
    assert {row["level"] for row in sub if row["column"] == "age_band"} >= {"<18 (paediatric)"}
    assert [row["prevalence"] for row in r.sections[0].data["operating_point"]["prevalence"]] == [
        0.05,
        0.3,
    ]


def test_recalibration_threshold_and_conformal_are_fitted_in_training_folds(synth, tmp_path):
    p = Hall2020CV(**TINY, calibration="sigmoid", operating_point="youden", conformal_alpha=0.2)
    r = p.run(synth, progress=False)
    data = r.sections[0].data
    assert set(data["calibration"]) == {"before recalibration", "recalibrated"}
    fitted = data["operating_point"]["fitted"]
    assert fitted["rule"] == "youden" and 1 <= len(fitted["thresholds"]) <= 2
    assert 0 <= data["conformal"]["lac"]["coverage"]["value"] <= 1
    assert (
        data["conformal"]["aps"]["mean_set_size"] >= 1
        or data["conformal"]["aps"]["mean_set_size"] > 0
    )
    files = write_report(r, tmp_path / "rep")
    m = json.loads(files["metrics"].read_text())
    assert "recalibrated" in m["sections"]["clinical"]["calibration"]
    html = (tmp_path / "rep" / "report.html").read_text()
    assert "Clinical validation" in html and "clinical-reliability.png" in html
    assert (tmp_path / "rep" / "clinical-decision-curve.png").stat().st_size > 1000


def test_options_are_set_keys_and_refused_where_not_fitted():
    names = {o.name: o for o in protocol_options(Hall2020CV)}
    for key in ("calibration", "operating_point", "prevalence", "subgroups", "conformal_alpha"):
        assert key in names
    assert parse_option(names["prevalence"], "0.0257") == 0.0257
    assert parse_option(names["subgroups"], "view,sex") == ("view", "sex")
    with pytest.raises(ConfigurationError, match=r"does not fit calibration on its training data"):
        Hall2020Published(calibration="sigmoid").check_clinical_options()
    with pytest.raises(ConfigurationError, match=r"The operating-point rule 'sens:1' is not valid"):
        Hall2020CV(operating_point="sens:1").check_clinical_options()


def test_checklist_and_model_card_use_the_run_facts(synth, tmp_path):
    from cxrkit.evaluation.clinical.checklist import TODO, checklist_items, write_model_card

    r = Hall2020CV(**TINY, operating_point="youden", subgroups=("sex",)).run(synth, progress=False)
    items = {(i["item"], i["topic"]): i for i in checklist_items(r)}
    assert items[("10", "Sample size")]["answer"].startswith(
        f"{len(r.y_true)} images of 24 patients"
    )
    assert "youden" in items[("15", "Model output and threshold")]["answer"]
    assert items[("17", "Ethical approval")]["answer"] == TODO
    assert all("TRIPOD+AI" in i["checklist"] or "CLAIM" in i["checklist"] for i in items.values())
    card = write_model_card(r, tmp_path / "model").read_text()
    for heading in ("## Intended use", "## Metrics", "## Training data", "## Caveats"):
        assert heading in card
    assert "patient_leakage: **PASS**" in card

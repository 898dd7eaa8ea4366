"""The protocol contract: declared inputs, one run signature, typed CLI options,
third-party protocols through entry points, and the unseen protocol end to end."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
from PIL import Image

from cxrkit import plugins
from cxrkit.cli import main
from cxrkit.datasets import load_dataset
from cxrkit.ensembles import load_voting_ensemble, save_voting_ensemble
from cxrkit.errors import ConfigurationError
from cxrkit.evaluation import write_report
from cxrkit.evaluation.protocols import (
    Hall2020Unseen,
    Opacity2020,
    ProtocolOption,
    parse_option,
)

TINY = {
    "input_size": 32,
    "n_bootstraps": 50,
    "probe_epochs": 1,
    "probe_splits": 2,
    "estimator_params": {"lr": 3e-3, "lr_schedule": None, "optimizer": "adam"},
}


def _relabel(ds, labels):
    ds.y = np.asarray(labels)
    ds.metadata["label"] = ds.y
    return ds


def test_inputs_are_checked_against_the_declaration():
    train = load_dataset("synthetic", n_patients=4, images_per_patient=1, size=24)
    with pytest.raises(
        ConfigurationError,
        match=r"Protocol 'opacity2020' needs --test-data "
        r"NAME:ROOT \(the COVID-19 images\); "
        r"--controls NAME:ROOT",
    ):
        Opacity2020().run(train)
    with pytest.raises(
        ConfigurationError,
        match=r"Protocol 'hall2020-unseen' takes no "
        r"--controls dataset; it takes: --data, "
        r"--test-data\.",
    ):
        Hall2020Unseen().run(train, controls=train)
    with pytest.raises(ConfigurationError, match="'test' must be a CXRDataset"):
        Hall2020Unseen().run(train, test={"X": []})


@pytest.mark.parametrize(
    "tp, text, expected",
    [
        (int, "3", 3),
        (bool, "false", False),
        (int | str | None, "balanced", "balanced"),
        (int | str | None, "none", None),
        (int | str | None, "12", 12),
        (tuple[str, ...], "hall2020_cnn", ("hall2020_cnn",)),
        (float | None, "0.1", 0.1),
    ],
)
def test_cli_values_are_typed_by_the_field(tp, text, expected):
    assert parse_option(ProtocolOption("x", tp, None), text) == expected


def test_bad_cli_values_name_option_type_and_default(capsys):
    with pytest.raises(
        ConfigurationError,
        match=r"--set n_splits=two: expected integer "
        r"\(default: 10\)\.",
    ):
        parse_option(ProtocolOption("n_splits", int, 10), "two")
    assert main(["run", "hall2020-cv", "--data", "synthetic:", "--set", "n_splits=two"]) == 2
    assert "expected integer (default: 10)" in capsys.readouterr().err
    assert main(["run", "hall2020-cv", "--data", "synthetic:", "--set", "n_split=3"]) == 2
    assert "did you mean 'n_splits'?" in capsys.readouterr().err
    assert main(["run", "hall2020-cv", "--data", "/data/metadata.csv"]) == 2
    assert "NAME:ROOT" in capsys.readouterr().err


def test_run_help_lists_every_protocols_inputs_and_options(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert "hall2020-unseen: --data, --test-data (optional)" in out
    assert "n_splits=integer [10]" in out and "test_labels=comma-separated list" in out
    for flag in (
        "--out",
        "--device",
        "--seed",
        "--quiet",
        "--test-option",
        "--controls-option",
        "--pretrained",
        "--pretrained-partial",
        "--interpolation",
    ):
        assert f"\n  {flag}" in out


def test_unseen_end_to_end_with_test_labels_the_model_never_saw(tmp_path, capsys):
    data = load_dataset("synthetic", n_patients=30, images_per_patient=1, size=32, random_state=1)
    labels = np.where(np.asarray(data.y) == "covid", "covid", "pneumonia")
    labels[:6] = "pneumonia"  # an imbalance the protocol must balance
    data = _relabel(data, labels)
    test = load_dataset("synthetic", n_patients=10, images_per_patient=1, size=32, random_state=2)
    test = _relabel(test, np.where(np.asarray(test.y) == "covid", "covid", "normal"))
    test.groups = np.asarray([f"ext-{g}" for g in test.groups])
    p = Hall2020Unseen(
        architectures=("tiny_cnn",),
        pretrained=None,
        n_snapshots=2,
        interval=1,
        max_epochs=3,
        validation=2,
        test_labels=("covid", "normal"),
        **TINY,
    )
    r = p.run(data, test=test, progress=False)
    assert r.classes == ["normal", "covid"] and r.positive_label == "covid"
    assert len(r.y_true) == len(test) and np.isfinite(r.y_score).all()
    assert any("Class-balanced training data" in w for w in r.warnings), r.warnings
    assert any("'normal' are a class the model never saw" in w for w in r.warnings)
    names = {v["name"] for v in r.validity}
    assert {"train_test_leakage", "train_test_duplicates"} <= names
    rule = r.extra["snapshot_rule"]["tiny_cnn"]
    assert rule in ("threshold", "last (threshold not met)")
    if rule != "threshold":  # the fallback is reported in words, not only as a Python warning
        assert any("Snapshot rule: valid_acc > 0.8 was met in 0 of 1 fits" in w for w in r.warnings)
        assert any("Snapshot threshold not met" in w for w in r.warnings)
    write_report(r, tmp_path / "rep")
    assert "never saw" in (tmp_path / "rep" / "report.html").read_text()

    # The saved ensemble keeps its class names (members are fitted on encoded labels).
    save_voting_ensemble(p.fitted_, tmp_path / "model")
    loaded = load_voting_ensemble(tmp_path / "model")
    assert list(loaded.classes_) == ["covid", "pneumonia"]
    pos = list(loaded.classes_).index("covid")
    covid = np.asarray(test.y) == "covid"  # the normal images were scored re-encoded as JPEG
    np.testing.assert_allclose(
        loaded.predict_proba(test.X[covid])[:, pos], r.y_score[covid], atol=1e-6
    )
    img = tmp_path / "one.png"
    Image.fromarray(np.asarray(test.X[0], dtype=np.uint8)).save(img)
    assert main(["predict", str(tmp_path / "model"), str(img)]) == 0
    out = capsys.readouterr().out
    assert "p(covid)\tp(pneumonia)" in out and ("\tcovid" in out or "\tpneumonia" in out)


def _install_protocol_plugin(tmp_path, monkeypatch):
    pkg = tmp_path / "src" / "cxrkit_mean_protocol"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        textwrap.dedent('''
        from dataclasses import dataclass
        import numpy as np
        from cxrkit.evaluation import RunResult
        from cxrkit.evaluation.protocols import Evaluation, Protocol
        from cxrkit.hookspecs import hookimpl

        @dataclass
        class MeanIntensity(Protocol):
            """Score every image by its mean intensity (a baseline)."""
            invert: bool = False
            name: str = "mean-intensity"

            def evaluate(self, inputs, *, progress=True):
                ds = inputs["data"]
                X = np.asarray(ds.X, dtype=float).reshape(len(ds), -1).mean(axis=1) / 255
                score = 1 - X if self.invert else X
                r = RunResult(protocol=self.name, config=self.config(), positive_label="covid",
                              classes=["pneumonia", "covid"], images=[str(i) for i in range(len(ds))],
                              y_true=np.asarray(ds.y), y_score=score, groups=ds.groups)
                r.data_summary = ds.summary()
                return Evaluation(result=r, data=ds)

        @hookimpl
        def cxrkit_register_protocols(register):
            register("mean-intensity", MeanIntensity, description=MeanIntensity.__doc__)
    ''')
    )
    dist = tmp_path / "cxrkit_mean_protocol-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: cxrkit-mean-protocol\nVersion: 0.1.0\n"
    )
    (dist / "entry_points.txt").write_text("[cxrkit]\nmean_protocol = cxrkit_mean_protocol\n")
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    monkeypatch.syspath_prepend(str(tmp_path))


def test_third_party_protocol_through_entry_points_and_the_cli(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(plugins.AUTOLOAD_ENV, raising=False)
    _install_protocol_plugin(tmp_path, monkeypatch)
    plugins.reset()
    try:
        code = main(
            [
                "run",
                "mean-intensity",
                "--data",
                "synthetic:",
                "--data-option",
                "n_patients=12",
                "--data-option",
                "size=32",
                "--set",
                "invert=true",
                "--set",
                "n_bootstraps=20",
                "--set",
                "probes=false",
                "--out",
                str(tmp_path / "rep"),
                "--quiet",
            ]
        )
        assert code == 0, capsys.readouterr().err
        metrics = json.loads((tmp_path / "rep" / "metrics.json").read_text())
        assert metrics["config"]["invert"] is True
        assert "ci_low" in json.dumps(metrics)
        assert (tmp_path / "rep" / "report.html").is_file()
        assert "patient_ids" in (tmp_path / "rep" / "report.html").read_text()
    finally:
        monkeypatch.undo()
        plugins.reset()

"""Protocols end to end on tiny synthetic data, and the command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cxrkit.cli import main
from cxrkit.datasets import CXRDataset, load_dataset, make_synthetic_cxr
from cxrkit.errors import ConfigurationError
from cxrkit.evaluation import write_report
from cxrkit.evaluation.protocols import Hall2020CV, Opacity2020, create_protocol, list_protocols

TINY = {
    "architecture": "tiny_cnn",
    "input_size": 32,
    "n_bootstraps": 50,
    "probe_epochs": 2,
    "probe_splits": 2,
    "estimator_params": {"lr": 3e-3, "lr_schedule": None, "optimizer": "adam"},
}


@pytest.fixture(scope="module")
def synth():
    return load_dataset("synthetic", n_patients=16, images_per_patient=2, size=48)


def test_registered_protocols():
    assert list_protocols() == [
        "external",
        "hall2020-cv",
        "hall2020-published",
        "hall2020-unseen",
        "linear-probe-cv",
        "multilabel-cv",
        "opacity2020",
    ]
    with pytest.raises(
        ConfigurationError,
        match=r"Protocol 'hall2020-cv' has no option\(s\) "
        r"\['folds'\]\. Options: \[",
    ):
        create_protocol("hall2020-cv", folds=3)


def test_hall2020_cv_grouped_vs_ungrouped(synth, tmp_path):
    p = Hall2020CV(
        n_splits=2, n_snapshots=2, interval=1, max_epochs=4, if_threshold_not_reached="last", **TINY
    )
    est, cv = p.build()
    assert type(cv).__name__ == "StratifiedGroupKFold" and est.n_snapshots == 2
    r = p.run(synth, progress=False)
    assert not np.isnan(r.y_score).any() and set(r.folds) == {0, 1}
    for tr_patient in set(r.groups[r.folds == 0]):
        assert tr_patient not in set(r.groups[r.folds == 1])
    assert {v["name"]: v["status"] for v in r.validity}["patient_leakage"] == "PASS"
    assert r.metrics["auc"]["ci_low"] <= r.metrics["auc"]["value"] <= r.metrics["auc"]["ci_high"]
    assert "last_epoch_network" in r.extra and r.efficiency["images_per_minute"] > 0
    files = write_report(r, tmp_path / "rep")
    m = json.loads(files["metrics"].read_text())
    assert m["protocol"] == "hall2020-cv" if "protocol" in m else True
    assert pd.read_csv(files["predictions"]).shape[0] == len(r.y_true)

    guards = {v["name"]: v for v in r.validity}
    assert guards["shortcut_probe"]["numbers"]["probe_epochs"] == 2
    assert guards["shortcut_probe"]["numbers"]["auc_whole_images"] == pytest.approx(
        r.metrics["auc"]["value"], abs=1e-4
    )
    assert "source_probe" in guards  # synthetic metadata names its source

    p.grouped = False
    r2 = p.run(synth, progress=False)
    assert any("NOT grouped" in w for w in r2.warnings)
    assert {v["name"]: v["status"] for v in r2.validity}["patient_leakage"] == "FAIL"


def _write_images(folder: Path, names, imgs) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for name, img in zip(names, imgs):
        Image.fromarray(img).save(folder / name)
        out.append(str(folder / name))
    return out


def test_opacity2020_end_to_end_with_real_google_labels(shared_data, tmp_path):
    labels = pd.read_csv(shared_data / "google-four-findings" / "test_labels.csv")
    labels = labels[labels["Airspace opacity"].isin(["YES", "NO"])]
    pick = pd.concat(
        [
            labels[labels["Airspace opacity"] == "YES"].head(24),
            labels[labels["Airspace opacity"] == "NO"].head(24),
        ]
    )
    imgs, meta = make_synthetic_cxr(n_patients=48, images_per_patient=1, size=32)
    covid_like = imgs[meta["label"].to_numpy() == "covid"][:24]
    clear = imgs[meta["label"].to_numpy() == "pneumonia"][:24]
    root = tmp_path / "nih"
    _write_images(root / "images", pick["Image Index"], np.concatenate([covid_like, clear]))
    train = load_dataset(
        "chestxray14",
        root=root,
        target="airspace_opacity",
        labels_dir=shared_data / "google-four-findings",
        on_error="skip",
    )
    assert set(train.y) == {"opacity", "no_opacity"} and len(train.y) == 48

    t_imgs, t_meta = make_synthetic_cxr(
        n_patients=120, images_per_patient=1, size=32, random_state=5
    )

    def as_ds(idx, label, prefix):
        md = pd.DataFrame(
            {
                "image": [f"{prefix}{i}" for i in idx],
                "label": label,
                "patient_id": [f"{prefix}{i}" for i in idx],
            }
        )
        for col in ("view", "source", "sex", "age", "finding"):
            md[col] = np.nan
        return CXRDataset(
            X=t_imgs[idx],
            y=np.array([label] * len(idx), dtype=object),
            groups=md["patient_id"].to_numpy(dtype=object),
            metadata=md,
            name=prefix,
        )

    covid = as_ds(np.flatnonzero(t_meta["label"] == "covid")[:2], "covid", "c")
    controls = as_ds(np.arange(120), "no_finding", "n")
    p = Opacity2020(
        architecture="tiny_cnn", pretrained=None, input_size=32, max_epochs=2, n_bootstraps=50
    )
    r = p.run(train, test=covid, controls=controls, progress=False)
    assert r.extra["test_sampling"]["n_covid"] == 2
    assert r.extra["test_sampling"]["n_no_finding"] == round(2 * (1 - 0.0257) / 0.0257)
    assert len(r.extra["training"]) == 2 and r.extra["training"][0]["valid_acc"] is not None
    ppv = r.metrics["ppv"]["value"]
    assert 0 <= ppv <= 1 and r.metrics["settings"]["prevalence"] == pytest.approx(0.0257)
    assert r.efficiency["ratio"] == pytest.approx(r.efficiency["images_per_minute"] / 1.75)


def test_cli_exit_codes(tmp_path, capsys, shared_data):
    assert main(["list", "architectures"]) == 0
    assert "hall2020_cnn" in capsys.readouterr().out
    assert main(["run", "nope", "--data", "synthetic:"]) == 2
    assert "Unknown protocol 'nope'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["run"])
    assert exc.value.code == 2
    code = main(
        [
            "check",
            "--data",
            f"csv:{shared_data / 'cxr-dev' / 'metadata.csv'}",
            "--labels",
            "covid,pneumonia",
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "confounding:view" in out and "WARN" in out


def test_cli_run_save_predict(tmp_path, capsys):
    root = tmp_path / "data"
    imgs, meta = make_synthetic_cxr(n_patients=12, images_per_patient=2, size=32)
    for label in ("covid", "pneumonia"):
        sel = meta["label"].to_numpy() == label
        _write_images(root / label, [f"{i}.png" for i in np.flatnonzero(sel)], imgs[sel])
    code = main(
        [
            "run",
            "hall2020-cv",
            "--data",
            f"image-folder:{root}",
            "--arch",
            "tiny_cnn",
            "--set",
            "n_splits=2",
            "--set",
            "n_snapshots=2",
            "--set",
            "interval=1",
            "--set",
            "max_epochs=3",
            "--set",
            "input_size=32",
            "--set",
            "n_bootstraps=20",
            "--set",
            "if_threshold_not_reached=last",
            "--out",
            str(tmp_path / "rep"),
            "--save",
            str(tmp_path / "model"),
            "--quiet",
        ]
    )
    assert code == 0
    assert (tmp_path / "rep" / "report.html").is_file()
    out = capsys.readouterr().out
    assert "AUC" in out and "Model saved" in out
    img = str(next((root / "covid").iterdir()))
    assert main(["predict", str(tmp_path / "model"), img, "--gradcam", str(tmp_path / "cams")]) == 0
    out = capsys.readouterr().out
    assert "p(covid)" in out and len(list((tmp_path / "cams").iterdir())) == 1
    shutil.rmtree(tmp_path / "model")
    assert main(["predict", str(tmp_path / "model"), img]) == 2


def _three_label(n_per_label: dict[str, int]) -> CXRDataset:
    ys = np.asarray([k for k, n in n_per_label.items() for _ in range(n)])
    ds = load_dataset("synthetic", n_patients=len(ys), images_per_patient=1, size=24)
    ds.y = ys
    ds.metadata["label"] = ys
    return ds


def test_hall2020_cv_defaults_covid_vs_pneumonia_balanced():
    ds = _three_label({"covid": 12, "pneumonia": 6, "normal": 4})
    p = Hall2020CV(
        n_splits=2,
        n_snapshots=1,
        interval=1,
        max_epochs=1,
        probes=False,
        compare_last_epoch=False,
        if_threshold_not_reached="last",
        **TINY,
    )
    r = p.run(ds, progress=False)
    assert sorted(r.classes) == ["covid", "pneumonia"]
    assert (r.y_true == "covid").sum() == 6 and (r.y_true == "pneumonia").sum() == 6
    assert any("used 6 of 12 'covid', 6 of 6 'pneumonia'" in w for w in r.warnings)
    rows = r.per_fold
    assert all(row["snapshot_rule"] == "last (threshold not met)" for row in rows)
    assert all(row["threshold_epoch"] is None for row in rows)

    p.n_per_class = None
    r = p.run(ds, progress=False)
    assert (r.y_true == "covid").sum() == 12 and not any("used" in w for w in r.warnings)
    with pytest.raises(ConfigurationError, match="n_per_class must be a positive integer"):
        Hall2020CV(n_per_class="half", **TINY).run(ds, progress=False)


def test_epoch_progress_bar(synth, capsys):
    from cxrkit import CXRClassifier, EpochProgress

    clf = CXRClassifier(
        "tiny_cnn",
        input_size=16,
        max_epochs=3,
        random_state=0,
        callbacks=[("progress", EpochProgress(desc="training", leave=True))],
    )
    clf.fit(synth.X[:8], synth.y[:8])
    err = capsys.readouterr().err
    assert "training" in err and "3/3" in err and "train_loss=" in err
    import pickle

    pickle.loads(pickle.dumps(clf))  # the bar itself is not pickled


def test_cli_save_writes_the_fitted_operating_point_and_predict_decides_at_it(tmp_path, capsys):
    root = tmp_path / "data"
    imgs, meta = make_synthetic_cxr(n_patients=12, images_per_patient=2, size=32)
    for label in ("covid", "pneumonia"):
        sel = meta["label"].to_numpy() == label
        _write_images(root / label, [f"{i}.png" for i in np.flatnonzero(sel)], imgs[sel])
    sets = ["n_splits=2", "n_snapshots=2", "interval=1", "max_epochs=3", "input_size=32"]
    sets += ["n_bootstraps=20", "operating_point=youden", "probes=false"]
    code = main(
        ["run", "hall2020-cv", "--data", f"image-folder:{root}", "--arch", "tiny_cnn"]
        + [x for s in sets for x in ("--set", s)]
        + ["--out", str(tmp_path / "rep"), "--save", str(tmp_path / "model"), "--quiet"]
    )
    assert code == 0, capsys.readouterr().err
    assert "Operating point" in capsys.readouterr().out
    point = json.loads((tmp_path / "model" / "operating_point.json").read_text())
    metrics = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    folds = metrics["sections"]["clinical"]["operating_point"]["fitted"]["thresholds"]
    assert point["threshold"] == pytest.approx(float(np.median(folds)))
    assert "youden" in point["name"]
    imgs = [str(p) for p in sorted((root / "covid").iterdir())[:4]]

    def decisions(*extra: str) -> list[str]:
        assert main(["predict", str(tmp_path / "model"), *imgs, *extra]) == 0
        lines = capsys.readouterr().out.splitlines()
        return [ln.split("\t")[-1] for ln in lines if not ln.startswith(("#", "image"))]

    probs = []
    assert main(["predict", str(tmp_path / "model"), *imgs]) == 0
    out = capsys.readouterr().out
    assert f"p(pneumonia) >= {point['threshold']:.4f}" in out
    for ln in out.splitlines()[2:]:
        probs.append(float(ln.split("\t")[2]))
    expected = ["pneumonia" if p >= point["threshold"] else "covid" for p in probs]
    assert decisions() == expected
    assert decisions("--threshold", "0.999") == ["covid"] * 4 or max(probs) >= 0.999

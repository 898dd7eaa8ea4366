"""The report folder: files exist, parse, and show what they must."""

from __future__ import annotations

import csv
import json
import re

import numpy as np
import pytest
from PIL import Image

from cxrkit.errors import DataError
from cxrkit.evaluation.metrics import compute_metrics, per_fold_metrics
from cxrkit.evaluation.report import format_summary_table, write_report
from cxrkit.evaluation.results import RunResult, describe_hardware, model_efficiency


def _result(folds: bool = True, extras: bool = True) -> RunResult:
    rng = np.random.default_rng(0)
    n = 80
    y = np.array(["normal", "covid"] * (n // 2))
    score = 1 / (1 + np.exp(-rng.normal((y == "covid") * 2.0 - 1.0, 1.0)))
    groups = np.array([f"p{i // 2:03d}" for i in range(n)])
    fold = (np.arange(n) // 2) % 4 if folds else None
    gc = []
    if extras:
        for kind, i in (("TP", 1), ("FP", 2), ("TN", 4), ("FN", 5)):
            img = rng.random((24, 24))
            heat = np.zeros((24, 24))
            heat[8:16, 8:16] = 1.0
            gc.append(
                {
                    "id": f"img{i}.png",
                    "label": y[i],
                    "score": float(score[i]),
                    "kind": kind,
                    "image": img,
                    "heatmap": heat,
                }
            )
    return RunResult(
        protocol="hall2020-cv",
        config={"seed": 3, "threshold": 0.5, "prevalence": 0.0257, "arch": "tiny_cnn"},
        positive_label="covid",
        classes=["normal", "covid"],
        images=[f"img{i}.png" for i in range(n)],
        y_true=y,
        y_score=score,
        groups=groups,
        folds=fold,
        per_fold=per_fold_metrics(y, score, fold, positive_label="covid") if folds else [],
        metrics=compute_metrics(
            y,
            score,
            positive_label="covid",
            groups=groups,
            prevalence=0.0257,
            n_bootstraps=200,
            random_state=3,
        ),
        data_summary={"covid": 40, "normal": 40, "patients": 40},
        validity=[
            {
                "name": "patient leakage",
                "status": "PASS",
                "summary": "no shared patients",
                "numbers": {"shared": 0},
                "advice": "",
            },
            {
                "name": "source confound",
                "status": "WARN",
                "summary": "sources differ",
                "numbers": {"auc": 0.9},
                "advice": "Check a background-only model.",
            },
            {
                "name": "duplicates",
                "status": "FAIL",
                "summary": "2 duplicates across folds",
                "numbers": {"pairs": 2},
                "advice": "Remove them.",
            },
        ]
        if extras
        else [],
        efficiency=model_efficiency(80, 4.0, device="cpu") if extras else None,
        gradcam=gc,
        warnings=["folds were not grouped by patient"] if extras else [],
    )


def test_model_efficiency_definition():
    eff = model_efficiency(350, 60.0, device="cpu")
    assert eff == {
        "images_per_minute": 350.0,
        "radiologist_images_per_minute": 1.75,
        "ratio": 200.0,
        "device": "cpu",
        "threads": None,
        "processes": 1,
        "n_images": 350,
        "seconds": 60.0,
    }
    with pytest.raises(
        DataError,
        match=r"seconds must be a positive number \(the measured "
        r"time\); got 0\.0\.",
    ):
        model_efficiency(10, 0.0)


def test_model_efficiency_states_threads_and_processes():
    """A CPU figure depends on the thread count; parallel folds predict one thread each."""
    eff = model_efficiency(100, 6.0, device="cpu", threads=1, processes=2)
    assert eff["images_per_minute"] == 1000.0
    assert describe_hardware(eff) == (
        "cpu, 1 torch thread per process, 2 worker processes, figure per process"
    )
    assert (
        describe_hardware(model_efficiency(1, 1.0, device="cpu", threads=2))
        == "cpu, 2 torch threads"
    )
    assert describe_hardware(model_efficiency(1, 1.0)) == "this machine"
    with pytest.raises(DataError, match=r"threads must be None or a positive int; got 0\."):
        model_efficiency(1, 1.0, threads=0)
    with pytest.raises(DataError, match=r"processes must be a positive int; got 0\."):
        model_efficiency(1, 1.0, processes=0)


def test_run_result_checks_lengths_and_statuses():
    with pytest.raises(
        DataError,
        match=r"RunResult: y_score has 2 entries but y_true has 3; "
        r"every per-image array must have one entry per prediction\.",
    ):
        RunResult(
            "p",
            {},
            "a",
            ["a", "b"],
            ["1", "2", "3"],
            np.array(["a", "b", "a"]),
            np.array([0.1, 0.2]),
        )
    with pytest.raises(
        DataError,
        match=r"RunResult: validity result 'x' has status 'OK'; "
        r"expected one of \('PASS', 'WARN', 'FAIL'\)\.",
    ):
        RunResult(
            "p",
            {},
            "a",
            ["a", "b"],
            ["1"],
            np.array(["a"]),
            np.array([0.1]),
            validity=[{"name": "x", "status": "OK"}],
        )


def test_report_files_exist_and_parse(tmp_path):
    res = _result()
    paths = write_report(res, tmp_path / "out", n_roc_bootstraps=50)
    assert set(paths) == {
        "html",
        "metrics",
        "predictions",
        "roc",
        "confusion_matrix",
        "per_fold",
        "gradcam",
        "efficiency",
    }
    for p in paths.values():
        assert p.is_file() and p.parent == tmp_path / "out"

    doc = json.loads(paths["metrics"].read_text())
    assert doc["protocol"] == "hall2020-cv" and doc["seed"] == 3
    assert doc["config"]["prevalence"] == 0.0257
    assert doc["n_images"] == 80 and doc["n_patients"] == 40
    for name in ("auc", "sensitivity", "specificity", "accuracy", "ppv", "npv"):
        e = doc["metrics"][name]
        assert e["ci_low"] <= e["value"] <= e["ci_high"]
        assert e["method"]
    assert doc["metrics"]["auc"]["value"] == pytest.approx(res.metrics["auc"]["value"])
    assert len(doc["per_fold"]) == 4 and doc["per_fold_summary"]["auc"]["n_folds"] == 4
    assert [v["status"] for v in doc["validity"]] == ["PASS", "WARN", "FAIL"]
    assert doc["warnings"] == ["folds were not grouped by patient"]
    assert doc["efficiency"]["ratio"] == pytest.approx(80 / 4 * 60 / 1.75)
    for lib in ("torch", "torchvision", "skorch", "scikit-learn", "numpy", "cxrkit"):
        assert doc["versions"][lib]
    assert "image" not in doc["gradcam"][0] or isinstance(doc["gradcam"][0]["image"], str)

    with paths["predictions"].open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["image", "patient", "fold", "label", "probability"]
    assert len(rows) == 80
    assert rows[3] == {
        "image": "img3.png",
        "patient": "p001",
        "fold": "1",
        "label": "covid",
        "probability": repr(float(res.y_score[3])),
    }

    for key in ("roc", "confusion_matrix", "per_fold", "gradcam", "efficiency"):
        with Image.open(paths[key]) as im:
            im.verify()
        with Image.open(paths[key]) as im:
            assert im.format == "PNG" and im.size[0] > 200 and im.size[1] > 150


def test_html_is_self_contained_and_shows_sections(tmp_path):
    paths = write_report(_result(), tmp_path, n_roc_bootstraps=20)
    text = paths["html"].read_text()
    for section in (
        "id='metrics'",
        "id='roc'",
        "id='confusion'",
        "id='per-fold'",
        "id='validity'",
        "id='gradcam'",
        "id='efficiency'",
        "id='configuration'",
        "id='versions'",
        ">Validity<",
    ):
        assert section in text
    assert re.search(r"class='warning'>folds were not grouped by patient<", text)
    assert ".warning{color:#b00000" in text  # red
    for status in ("PASS", "WARN", "FAIL"):
        assert f"<td class='{status}'>{status}</td>" in text
    assert text.count("src='data:image/png;base64,") == 4  # per-fold is an HTML table
    assert not re.search(r"(src|href)=['\"]?(https?:|//)", text)
    assert "<script" not in text and "<link" not in text


def test_single_split_without_extras(tmp_path):
    res = _result(folds=False, extras=False)
    paths = write_report(res, tmp_path, n_roc_bootstraps=20)
    assert "gradcam" not in paths and "efficiency" not in paths
    text = paths["html"].read_text()
    assert "single train/test split" in text and "No validity checks were run" in text
    with paths["predictions"].open(newline="") as fh:
        assert next(csv.DictReader(fh))["fold"] == ""
    table = format_summary_table(res)
    assert "Mean over folds" not in table and "WARNING" not in table


def test_summary_table(tmp_path):
    res = _result()
    table = format_summary_table(res)
    lines = table.splitlines()
    assert lines[0] == "hall2020-cv: 80 images, 40 patients; positive = covid"
    assert lines[1] == "threshold 0.5; PPV/NPV at prevalence 0.0257"
    assert lines[2].split() == ["Metric", "Pooled", "95%", "CI", "Mean", "over", "folds", "(SD)"]
    auc = res.metrics["auc"]
    row = next(line for line in lines if line.startswith("AUC"))
    assert (f"{auc['value']:.3f}  [{auc['ci_low']:.3f}, {auc['ci_high']:.3f}]") in row
    folds_auc = np.mean([f["auc"] for f in res.per_fold])
    assert f"{folds_auc:.3f} (" in row
    assert (
        sum(
            line.startswith(("AUC", "Sensitivity", "Specificity", "Accuracy", "PPV", "NPV"))
            for line in lines
        )
        == 6
    )
    assert lines[-1] == "WARNING: folds were not grouped by patient"


def test_dollar_signs_in_user_strings_are_drawn_as_text(tmp_path):
    from cxrkit.evaluation.metrics import compute_metrics, per_fold_metrics

    r = _result()
    pos, neg = r"$\undefinedmacro$", "$a$ and $b"
    y = np.where(r.y_true == "covid", pos, neg)
    r.y_true, r.positive_label, r.classes = y, pos, [neg, pos]
    r.metrics = compute_metrics(
        y, r.y_score, positive_label=pos, groups=r.groups, n_bootstraps=50, random_state=0
    )
    r.per_fold = per_fold_metrics(y, r.y_score, r.folds, positive_label=pos)
    for g in r.gradcam:
        g["id"] = "$x^{$.png"
        g["label"] = pos if g["label"] == "covid" else neg
    files = write_report(r, tmp_path / "rep")
    for name in ("roc", "confusion_matrix", "gradcam"):
        assert Image.open(files[name]).size[0] > 100
    assert r"$\undefinedmacro$" in files["html"].read_text()


def test_report_sections_extend_html_json_and_figures(tmp_path):
    import io as _io

    from matplotlib.figure import Figure

    from cxrkit import ReportSection

    buf = _io.BytesIO()
    Figure(figsize=(1, 1)).savefig(buf, format="png")
    sec = ReportSection(
        key="extra-check",
        title="Extra <check>",
        html="<p>body &amp; more</p><img src='extra-check-fig.png'>",
        data={"value": 0.5},
        figures={"extra-check-fig.png": buf.getvalue()},
    )
    r = _result()
    r.sections.append(sec)
    paths = write_report(r, tmp_path)
    html = (tmp_path / "report.html").read_text()
    assert "<h2 id='extra-check'>Extra &lt;check&gt;</h2>" in html
    assert "<p>body &amp; more</p>" in html
    assert (tmp_path / "extra-check-fig.png").read_bytes() == buf.getvalue()
    assert paths["extra-check:extra-check-fig.png"] == tmp_path / "extra-check-fig.png"
    doc = json.loads((tmp_path / "metrics.json").read_text())
    assert doc["sections"]["extra-check"] == {"title": "Extra <check>", "value": 0.5}


def test_report_section_rejects_bad_keys_and_figure_names():
    from cxrkit import ReportSection

    with pytest.raises(DataError, match="valid identifier"):
        ReportSection(key="Bad Key", title="x")
    with pytest.raises(DataError, match="must start with"):
        ReportSection(key="ok", title="x", figures={"../evil.png": b""})
    r = _result()
    r.sections = [ReportSection(key="a", title="x"), ReportSection(key="a", title="y")]
    with pytest.raises(DataError, match="unique"):
        r.__post_init__()


def test_validity_numbers_are_readable_in_html(tmp_path):
    """Nested lists of dicts are summarised, long lists truncated, empties and floats readable."""
    import dataclasses

    res = _result()
    pairs = [{"a": f"img{i}.png", "b": f"img{i + 1}.png", "distance": 0.0123456} for i in range(40)]
    v = [
        {
            "name": "near duplicates",
            "status": "WARN",
            "summary": "40 near-duplicate pairs",
            "numbers": {
                "pairs": pairs,
                "top_level": "",
                "age_auc_pair": [None, float("nan")],
                "auc": 0.987654,
            },
            "advice": "Drop one image of each pair.",
        }
    ]
    res = dataclasses.replace(res, validity=v)
    text = (write_report(res, tmp_path / "out", n_roc_bootstraps=20)["html"]).read_text()
    assert "(+36 more)" in text and "img20.png" not in text
    assert "top_level=(empty)" in text and "age_auc_pair=[n/a, n/a]" in text
    assert "auc=0.988" in text and "Drop one image of each pair." in text

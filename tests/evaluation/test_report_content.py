"""What report.html and metrics.json show: advice, the last-epoch comparison, escaping."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from cxrkit.evaluation._bootstrap import bootstrap_weights, cluster_index
from cxrkit.evaluation.metrics import compute_metrics
from cxrkit.evaluation.report import write_report
from cxrkit.evaluation.results import RunResult


def _run(n: int = 60, **kw: object) -> RunResult:
    rng = np.random.default_rng(1)
    y = np.array(["normal", "covid"] * (n // 2))
    score = 1 / (1 + np.exp(-rng.normal((y == "covid") * 2.0 - 1.0, 1.0)))
    groups = np.array([f"p{i // 2:03d}" for i in range(n)])
    metrics = compute_metrics(y, score, positive_label="covid", groups=groups, n_bootstraps=100)
    args: dict[str, Any] = dict(
        protocol="hall2020-cv",
        config={"seed": 0},
        positive_label="covid",
        classes=["normal", "covid"],
        images=[f"img{i}.png" for i in range(n)],
        y_true=y,
        y_score=score,
        groups=groups,
        metrics=metrics,
    )
    args.update(kw)
    return RunResult(**args)


def _advice_cells(html: str) -> dict[str, str]:
    rows = re.findall(
        r"<tr><td>([^<]*)</td><td class='(?:PASS|WARN|FAIL)'>[^<]*</td><td>[^<]*</td>"
        r"<td class='small'>[^<]*</td><td>([^<]*)</td></tr>",
        html,
    )
    return dict(rows)


def test_every_guard_that_is_not_pass_shows_advice(tmp_path: Path) -> None:
    validity: list[dict[str, Any]] = [
        {"name": "patient_leakage", "status": "PASS", "summary": "ok", "numbers": {}},
        {"name": "confounding:view", "status": "WARN", "summary": "view differs", "numbers": {}},
        {"name": "near_duplicates", "status": "FAIL", "summary": "2 pairs", "advice": ""},
        {"name": "my_plugin_guard", "status": "WARN", "summary": "odd", "advice": None},
        {"name": "source_probe", "status": "WARN", "summary": "s", "advice": "Own advice."},
    ]
    html = write_report(_run(validity=validity), tmp_path, n_roc_bootstraps=0)["html"]
    cells = _advice_cells(html.read_text())
    assert set(cells) == {v["name"] for v in validity}
    assert cells["patient_leakage"] == ""
    assert "Balance this variable" in cells["confounding:view"]
    assert "duplicat" in cells["near_duplicates"]
    assert cells["my_plugin_guard"].strip()  # unknown guard: a generic line, never empty
    assert cells["source_probe"] == "Own advice."


def test_last_epoch_comparison_in_html_and_json(tmp_path: Path) -> None:
    r = _run()
    rng = np.random.default_rng(5)
    last_scores = np.clip(r.y_score + rng.normal(0, 0.2, r.n_images), 0, 1)
    last = compute_metrics(
        r.y_true, last_scores, positive_label="covid", groups=r.groups, n_bootstraps=50
    )
    r.extra["last_epoch_network"] = last
    paths = write_report(r, tmp_path, n_roc_bootstraps=0)
    doc = json.loads(paths["metrics"].read_text())
    comp = doc["last_epoch_comparison"]
    assert comp["auc"]["last_epoch"]["value"] == pytest.approx(last["auc"]["value"])
    assert comp["auc"]["ensemble"]["value"] == pytest.approx(r.metrics["auc"]["value"])
    assert comp["auc"]["difference"] == pytest.approx(
        r.metrics["auc"]["value"] - last["auc"]["value"]
    )
    html = paths["html"].read_text()
    assert "<h2 id='last-epoch'>Snapshot ensemble vs its last-epoch network</h2>" in html
    section = html[html.index("id='last-epoch'") : html.index("id='roc'")]
    assert f"{last['auc']['value']:.3f}" in section
    assert f"{r.metrics['auc']['value'] - last['auc']['value']:+.3f}" in section


def test_no_last_epoch_section_without_the_comparison(tmp_path: Path) -> None:
    paths = write_report(_run(), tmp_path, n_roc_bootstraps=0)
    assert "id='last-epoch'" not in paths["html"].read_text()
    assert json.loads(paths["metrics"].read_text())["last_epoch_comparison"] is None


def test_user_strings_are_escaped_everywhere(tmp_path: Path) -> None:
    evil = "<img src=x onerror=alert(1)>"
    r = _run(
        protocol=f"p{evil}",
        classes=[f"n{evil}", "covid"],
        data_summary={evil: evil},
        config={"seed": 0, "name": evil},
        validity=[{"name": evil, "status": "WARN", "summary": evil, "advice": evil}],
        warnings=[evil],
    )
    html = write_report(r, tmp_path, n_roc_bootstraps=0)["html"].read_text()
    assert evil not in html and "onerror=alert(1)&gt;" in html


def test_template_ships_as_package_data() -> None:
    root = resources.files("cxrkit.evaluation").joinpath("templates")
    assert root.joinpath("report.html.j2").is_file() and root.joinpath("report.css").is_file()
    pyproject = Path(__file__).parents[2] / "pyproject.toml"
    line = next(x for x in pyproject.read_text().splitlines() if x.startswith("cxrkit = ["))
    assert '"evaluation/templates/*"' in line


def test_roc_band_and_metric_intervals_share_one_bootstrap() -> None:
    """The AUC interval is reproduced from the shared resampler's weights."""
    r = _run(n=40)
    t = r.y_true == "covid"
    m = compute_metrics(
        r.y_true,
        r.y_score,
        positive_label="covid",
        groups=r.groups,
        n_bootstraps=80,
        random_state=4,
    )
    aucs = []
    for weights in bootstrap_weights(cluster_index(r.groups, len(t)), 80, 4):
        for w in weights:
            if w[t].sum() and w[~t].sum():
                aucs.append(roc_auc_score(t, r.y_score, sample_weight=w))
    lo, hi = np.percentile(aucs, [2.5, 97.5])
    assert (m["auc"]["ci_low"], m["auc"]["ci_high"]) == pytest.approx((lo, hi))

"""The "Clinical validation" report section: figures, tables and ``metrics.json`` data."""

from __future__ import annotations

import io
from typing import Any

import jinja2
import numpy as np

from ..results import ReportSection

__all__ = ["clinical_section", "reliability_figure", "decision_curve_figure"]

_TEMPLATE = jinja2.Environment(autoescape=True).from_string(
    """
{% macro ci(e, d=3) %}{% if e %}{{ "%.*f"|format(d, e.value) }} [{{ "%.*f"|format(d, e.ci_low) }}, {{ "%.*f"|format(d, e.ci_high) }}]{% else %}n/a{% endif %}{% endmacro %}
<p>Everything fitted here (recalibration: <b>{{ cfg.calibration or "none" }}</b>; operating point:
<b>{{ cfg.rule }}</b>) was fitted on a patient-grouped inner split of each training fold, never on
test data. Intervals: 95 % percentile bootstrap over patients.</p>
<h3>Calibration</h3>
<img src="clinical-reliability.png" alt="reliability diagram" style="max-width:100%">
<table><tr><th>Probabilities</th><th>ECE (10 bins)</th><th>ECE (adaptive)</th><th>Brier</th>
<th>Intercept</th><th>Slope</th></tr>
{% for name, c in calibration.items() %}<tr><td>{{ name }}</td><td>{{ ci(c.ece) }}</td>
<td>{{ ci(c.ece_adaptive) }}</td><td>{{ ci(c.brier) }}</td><td>{{ ci(c.intercept) }}</td>
<td>{{ ci(c.slope) }}</td></tr>{% endfor %}</table>
<h3>Operating point</h3>
<table><tr><th>Threshold</th><th>Sensitivity</th><th>Specificity</th><th>PPV</th><th>NPV</th></tr>
{% if op.fitted %}<tr><td>{{ op.fitted.rule }} (fitted on training folds:
{{ op.fitted.thresholds|map("round", 3)|join(", ") }})</td>
{% for k in ("sensitivity", "specificity", "ppv", "npv") %}<td>{{ ci(op.fitted[k]) }}</td>{% endfor %}</tr>{% endif %}
<tr><td>0.5 (the default, not chosen on data)</td>
{% for k in ("sensitivity", "specificity", "ppv", "npv") %}<td>{{ ci(op.default[k]) }}</td>{% endfor %}</tr>
</table>
{% if op.prevalence %}<p>PPV and NPV at stated prevalences (at the {{ op.basis }} threshold):</p>
<table><tr><th>Prevalence</th><th>PPV</th><th>NPV</th></tr>
{% for r in op.prevalence %}<tr><td>{{ "%.4g"|format(r.prevalence) }}</td><td>{{ ci(r.ppv) }}</td>
<td>{{ ci(r.npv) }}</td></tr>{% endfor %}</table>{% endif %}
<h3>Decision curve</h3>
<img src="clinical-decision-curve.png" alt="decision curve" style="max-width:100%">
<p>{% if dca.useful_range %}The model's net benefit exceeds treat-all and treat-none for threshold
probabilities {{ "%.2f"|format(dca.useful_range[0]) }} to {{ "%.2f"|format(dca.useful_range[1]) }}.
{% else %}The model's net benefit never exceeds both treat-all and treat-none.{% endif %}</p>
<table><tr><th>Threshold probability</th><th>Model [95 % CI]</th><th>Treat all</th><th>Treat none</th></tr>
{% for i in dca_rows %}<tr><td>{{ "%.2f"|format(dca.threshold[i]) }}</td>
<td>{{ "%.3f"|format(dca.model[i]) }} [{{ "%.3f"|format(dca.model_ci_low[i]) }}, {{ "%.3f"|format(dca.model_ci_high[i]) }}]</td>
<td>{{ "%.3f"|format(dca.treat_all[i]) }}</td><td>0</td></tr>{% endfor %}</table>
{% if subgroups %}<h3>Subgroups</h3>
<table><tr><th>Column</th><th>Level</th><th>Images (patients)</th><th>Pos / neg</th><th>AUC</th>
<th>AUC minus rest</th><th>Sensitivity</th><th>Specificity</th><th>Status</th></tr>
{% for r in subgroups %}<tr><td>{{ r.column }}</td><td>{{ r.level }}</td>
<td>{{ r.n_images }} ({{ r.n_patients }})</td><td>{{ r.n_positive }} / {{ r.n_negative }}</td>
<td>{{ ci(r.auc) }}</td><td>{{ ci(r.auc_difference) }}</td><td>{{ ci(r.sensitivity) }}</td>
<td>{{ ci(r.specificity) }}</td><td><b>{{ r.status }}</b> {{ r.note }}</td></tr>{% endfor %}</table>{% endif %}
{% if conformal %}<h3>Conformal prediction sets (alpha = {{ conformal.alpha }})</h3>
<table><tr><th>Method</th><th>Coverage [95 % CI] (target {{ "%.2f"|format(conformal.target_coverage) }})</th>
<th>Mean set size</th><th>Calibration images</th></tr>
{% for m in ("lac", "aps") %}<tr><td>{{ m|upper }}</td><td>{{ ci(conformal[m].coverage) }}</td>
<td>{{ "%.2f"|format(conformal[m].mean_set_size) }}</td><td>{{ conformal[m].n_calibration }}</td></tr>{% endfor %}
</table>{% endif %}
"""
)


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return buf.getvalue()


def reliability_figure(calibration: dict[str, dict[str, Any]]) -> bytes:
    """Return a PNG reliability diagram (observed vs predicted, 95 % band) per probability set."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5 * len(calibration), 4.5))
    for k, (name, c) in enumerate(calibration.items()):
        ax = fig.add_subplot(1, len(calibration), k + 1)
        rel = c["reliability"]
        x = [r["mean_predicted"] for r in rel]
        ax.fill_between(
            x, [r["ci_low"] for r in rel], [r["ci_high"] for r in rel], alpha=0.25, label="95 % CI"
        )
        ax.plot(x, [r["observed"] for r in rel], "o-", label="observed")
        ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect")
        ax.set(
            xlim=(0, 1),
            ylim=(0, 1),
            xlabel="mean predicted probability",
            ylabel="observed fraction positive",
            title=f"{name}: slope {c['slope']['value']:.2f}, ECE {c['ece']['value']:.3f}",
        )
        ax.legend(loc="upper left", fontsize=8)
    return _png(fig)


def decision_curve_figure(dca: dict[str, Any]) -> bytes:
    """Return a PNG decision curve: net benefit of model (with band), treat-all, treat-none."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.add_subplot(1, 1, 1)
    t = np.asarray(dca["threshold"])
    ax.fill_between(t, dca["model_ci_low"], dca["model_ci_high"], alpha=0.25, label="model 95 % CI")
    ax.plot(t, dca["model"], label="model")
    ax.plot(t, dca["treat_all"], label="treat all")
    ax.plot(t, dca["treat_none"], "k-", lw=1, label="treat none")
    top = max(max(dca["model"]), max(dca["treat_all"]), 0.05)
    ax.set(
        xlim=(0, 1),
        ylim=(-0.05 * top - 0.02, top * 1.1),
        xlabel="threshold probability",
        ylabel="net benefit",
        title="Decision curve (Vickers & Elkin 2006)",
    )
    ax.legend(fontsize=8)
    return _png(fig)


def clinical_section(data: dict[str, Any]) -> ReportSection:
    """Build the "Clinical validation" :class:`ReportSection` from the computed figures.

    Parameters
    ----------
    data : dict
        ``config`` (``calibration``, ``rule``), ``calibration`` (name to
        :func:`calibration_summary`), ``operating_point``, ``decision_curve``,
        ``subgroups`` and optionally ``conformal``.

    Returns
    -------
    ReportSection
    """
    dca = data["decision_curve"]
    rows = [i for i, t in enumerate(dca["threshold"]) if round(t * 100) % 5 == 0]
    html = _TEMPLATE.render(
        cfg=data["config"],
        calibration=data["calibration"],
        op=data["operating_point"],
        dca=dca,
        dca_rows=rows,
        subgroups=data.get("subgroups") or [],
        conformal=data.get("conformal"),
    )
    figures = {
        "clinical-reliability.png": reliability_figure(data["calibration"]),
        "clinical-decision-curve.png": decision_curve_figure(dca),
    }
    return ReportSection("clinical", "Clinical validation", html=html, data=data, figures=figures)

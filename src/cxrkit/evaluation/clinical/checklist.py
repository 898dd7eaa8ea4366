"""A TRIPOD+AI / CLAIM reporting checklist filled in from a run's own facts, and a model card."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from ..results import ReportSection, RunResult

__all__ = ["checklist_items", "checklist_section", "model_card", "write_model_card", "TODO"]

#: The answer of an item the run cannot answer.
TODO = "to be completed by the authors"
TRIPOD = "TRIPOD+AI (Collins et al., BMJ 2024;385:e078378)"
CLAIM = "CLAIM 2024 update (Tejani et al., Radiol Artif Intell 2024)"


def _fmt(e: Any) -> str:
    if not isinstance(e, dict) or "value" not in e:
        return "n/a"
    return f"{e['value']:.3f} (95% CI {e.get('ci_low', float('nan')):.3f}-{e.get('ci_high', float('nan')):.3f})"


def _section(r: RunResult, key: str) -> dict[str, Any]:
    return next((s.data for s in r.sections if s.key == key), {})


def _facts(r: RunResult) -> dict[str, str]:
    """Plain-sentence answers keyed by topic, from the run's own records."""
    from ... import __version__

    d, cfg = r.data_summary or {}, r.config or {}
    guards = {v.get("name"): v for v in r.validity}
    clin, ext = _section(r, "clinical"), _section(r, "external")
    facts = {
        "sources": f"Sources: {d.get('sources', TODO)}; dataset {d.get('name', TODO)}.",
        "eligibility": (
            f"Labels compared: {', '.join(r.classes)} (positive: {r.positive_label}); "
            f"{d.get('n_excluded', 0)} images excluded at loading ({d.get('excluded', {})})."
        ),
        "sample_size": (
            f"{r.n_images} images of {d.get('n_patients', 'n/a')} patients; per class "
            f"{d.get('labels', {})}; patients per class {d.get('patients_per_label', {})}."
        ),
        "missing": "Images that could not be read are counted: "
        f"{d.get('skipped_files', 0)} skipped. Missing metadata appear as 'unknown' in subgroups.",
        "split": (
            f"Protocol {r.protocol}: "
            + (
                f"{cfg.get('n_splits')}-fold cross-validation, "
                f"{'patient-grouped' if cfg.get('grouped', True) else 'NOT patient-grouped'}"
                if "n_splits" in cfg
                else "train/test split"
            )
            + f"; seed {r.seed}."
        ),
        "leakage": "Patient-leakage check: "
        + (guards["patient_leakage"]["status"] if "patient_leakage" in guards else "not run")
        + ".",
        "model": (
            f"Architecture {cfg.get('architecture', cfg.get('architectures', 'n/a'))}; initial "
            f"weights {cfg.get('pretrained') or 'random'}; input size {cfg.get('input_size') or 'default'}; "
            f"estimator parameters {cfg.get('estimator_params', {})}."
        ),
        "performance": f"AUC {_fmt(r.metrics.get('auc'))}; sensitivity "
        f"{_fmt(r.metrics.get('sensitivity'))}; specificity {_fmt(r.metrics.get('specificity'))}.",
        "calibration": "",
        "threshold": "",
        "subgroups": "",
        "external": "",
        "code": f"cxrkit {__version__}; configuration in metrics.json ('config').",
        "predictors": "The image pixels only (after the preprocessing in 'config'); no "
        "clinical or demographic variables enter the model.",
        "specification": "The full model is the saved model folder (cxrkit run --save: "
        "weights, preprocessing, classes, operating point) with MODEL_CARD.md.",
        "imbalance": f"Class counts {d.get('labels', {})}; see the data summary.",
    }
    if clin:
        last = list(clin["calibration"])[-1]
        c = clin["calibration"][last]
        facts["calibration"] = (
            f"Calibration ({last}): slope {_fmt(c['slope'])}, intercept {_fmt(c['intercept'])}, "
            f"ECE {_fmt(c['ece'])}, Brier {_fmt(c['brier'])}; recalibration "
            f"{clin['config']['calibration'] or 'none'} (Clinical validation section)."
        )
        op = clin["operating_point"]
        facts["threshold"] = (
            f"Threshold rule {clin['config']['rule']}, fitted on a patient-grouped inner split "
            f"of the training data: {op['fitted']['thresholds']}."
            if "fitted" in op
            else "Default threshold 0.5, not chosen on data."
        )
        if clin.get("subgroups"):
            facts["subgroups"] = (
                f"{len(clin['subgroups'])} subgroups by "
                f"{sorted({s['column'] for s in clin['subgroups']})}; "
                f"{sum(s['status'] == 'WARN' for s in clin['subgroups'])} flagged WARN "
                "(Clinical validation section, Subgroups)."
            )
    if ext:
        facts["external"] = f"External validation at {len(ext['sites'])} site(s): " + "; ".join(
            f"{s['site']} AUC {_fmt(s.get('auc'))}" for s in ext["sites"]
        )
    return {k: (v or TODO) for k, v in facts.items()}


#: (checklist, item, topic, fact key or None). TRIPOD+AI numbers are its 27 main items.
_ITEMS: list[tuple[str, str, str, str | None]] = [
    (TRIPOD, "1", "Title", None),
    (TRIPOD, "2", "Abstract", None),
    (TRIPOD, "3", "Background", None),
    (TRIPOD, "4", "Objectives", None),
    (TRIPOD, "5", "Data sources", "sources"),
    (TRIPOD, "6", "Participants and eligibility", "eligibility"),
    (TRIPOD, "7", "Data preparation", "model"),
    (TRIPOD, "8", "Outcome", None),
    (TRIPOD, "9", "Predictors", "predictors"),
    (TRIPOD, "10", "Sample size", "sample_size"),
    (TRIPOD, "11", "Missing data", "missing"),
    (TRIPOD, "12", "Analytical methods: data splitting", "split"),
    (TRIPOD, "12", "Analytical methods: model and training", "model"),
    (TRIPOD, "12", "Analytical methods: calibration and recalibration", "calibration"),
    (TRIPOD, "13", "Class imbalance", "imbalance"),
    (TRIPOD, "14", "Fairness (subgroups)", "subgroups"),
    (TRIPOD, "15", "Model output and threshold", "threshold"),
    (TRIPOD, "16", "Training versus evaluation data", "external"),
    (TRIPOD, "17", "Ethical approval", None),
    (TRIPOD, "18", "Open science: code", "code"),
    (TRIPOD, "19", "Patient and public involvement", None),
    (TRIPOD, "20", "Participants (results)", "sample_size"),
    (TRIPOD, "21", "Model development", "split"),
    (TRIPOD, "22", "Model specification", "specification"),
    (TRIPOD, "23", "Model performance with CIs", "performance"),
    (TRIPOD, "23", "Performance in subgroups", "subgroups"),
    (TRIPOD, "24", "Model updating", None),
    (TRIPOD, "25", "Interpretation", None),
    (TRIPOD, "26", "Limitations", None),
    (TRIPOD, "27", "Usability of the model", None),
    (CLAIM, "topic", "Data sources and eligibility", "sources"),
    (CLAIM, "topic", "Data partitions and patient-level separation", "leakage"),
    (CLAIM, "topic", "Reference standard (ground truth)", None),
    (CLAIM, "topic", "Model, initialisation and training details", "model"),
    (CLAIM, "topic", "Performance metrics and statistical measures of uncertainty", "performance"),
    (CLAIM, "topic", "Calibration and operating point", "threshold"),
    (CLAIM, "topic", "Robustness / external testing", "external"),
]


def checklist_items(result: RunResult) -> list[dict[str, str]]:
    """Each checklist item with the run's answer (or :data:`TODO`) and where it is shown.

    TRIPOD+AI items are numbered by its main items (1-27); CLAIM items are
    named by topic only (look their numbers up in the published 2024 list).
    """
    facts = _facts(result)
    return [
        {
            "checklist": cl,
            "item": item,
            "topic": topic,
            "answer": facts.get(key, TODO) if key else TODO,
            "auto": "yes" if key and facts.get(key, TODO) != TODO else "no",
        }
        for cl, item, topic, key in _ITEMS
    ]


def checklist_section(result: RunResult) -> ReportSection:
    """Build the "Reporting checklist" :class:`ReportSection` of ``result``."""
    items = checklist_items(result)
    rows = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(i[k])}</td>" for k in ("checklist", "item", "topic", "answer"))
        + "</tr>"
        for i in items
    )
    body = (
        f"<p>Answered from this run where it can be ({sum(i['auto'] == 'yes' for i in items)} of "
        f"{len(items)} items); the rest are marked '{TODO}'. Item numbers of {html.escape(TRIPOD)} "
        f"are its main items; {html.escape(CLAIM)} items are named by topic.</p><table>"
        "<tr><th>Checklist</th><th>Item</th><th>Topic</th><th>Answer</th></tr>" + rows + "</table>"
    )
    return ReportSection(
        "checklist", "Reporting checklist (TRIPOD+AI, CLAIM)", body, {"items": items}
    )


def model_card(result: RunResult) -> str:
    """Return a model card (Mitchell et al. 2019 fields) in markdown."""
    f = _facts(result)
    guards = "\n".join(
        f"- {v.get('name')}: **{v.get('status')}**: {v.get('summary', '')}" for v in result.validity
    )
    warn = "\n".join(f"- {w}" for w in result.warnings) or "- none"
    return f"""# Model card: {result.protocol} ({result.positive_label} vs {[c for c in result.classes if c != result.positive_label][0]})

## Model details
{f["model"]}
{f["code"]}

## Intended use
Research use: classifying chest X-rays as {result.positive_label} vs the other label above.
Not a medical device; clinical use: {TODO}.

## Factors
Subgroups evaluated: {f["subgroups"]}

## Metrics
{f["performance"]}
{f["threshold"]}

## Evaluation data
{f["split"]} {f["external"]}

## Training data
{f["sources"]} {f["sample_size"]}

## Quantitative analyses
{f["calibration"]}

## Ethical considerations
{TODO}.

## Caveats and recommendations
Validity guards:
{guards or "- not run"}

Warnings of the run:
{warn}
"""


def write_model_card(result: RunResult, folder: str | Path) -> Path:
    """Write ``MODEL_CARD.md`` into ``folder`` (e.g. the folder of a saved model) and return it."""
    path = Path(folder) / "MODEL_CARD.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(model_card(result), encoding="utf-8")
    return path

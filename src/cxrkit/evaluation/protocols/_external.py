"""External validation: train on one dataset, test on other sites, each and pooled."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from sklearn.base import clone

from ...datasets import CXRDataset
from ...errors import ConfigurationError, DataError
from .._format import with_ci
from ..metrics import compute_metrics
from ..results import ReportSection, RunResult
from ._base import Evaluation, InputSlot, Protocol
from ._common import ClinicalFolds, clinical_outputs, two_labels, with_epoch_progress

__all__ = ["ExternalValidation", "covariates"]


def covariates(md: pd.DataFrame) -> dict[str, Any]:
    """Summarise the view, sex, age and source mix of a metadata table.

    Returns
    -------
    dict
        ``n_images``, ``view`` / ``sex`` / ``source`` (fraction per level,
        ``"unknown"`` for missing), ``age_mean``, ``age_missing``.
    """
    out: dict[str, Any] = {"n_images": int(len(md))}
    for col in ("view", "sex", "source"):
        if col in md.columns:
            v = md[col].fillna("unknown").astype(str).value_counts(normalize=True)
            out[col] = {str(k): round(float(x), 3) for k, x in v.items()}
    if "age" in md.columns:
        age = pd.to_numeric(md["age"], errors="coerce")
        out["age_mean"] = None if age.isna().all() else round(float(age.mean()), 1)
        out["age_missing"] = round(float(age.isna().mean()), 3)
    return out


@dataclass
class ExternalValidation(Protocol):
    """External validation: train on ``data``, test on ``test`` per site and pooled.

    One network (``architecture``, ``max_epochs`` epochs, with the run's
    clinical options: recalibration and operating point fitted on a
    patient-grouped inner split of the training data) is trained on ``data``
    and tested on every site of ``test`` (its ``site_column``, ``source`` by
    default) and on all of them pooled; the report puts each site's metrics
    beside its covariate differences from the training data (view, sex, age,
    source mix). With ``leave_one_source_out=True`` no ``test`` is needed:
    each source of ``data`` is held out in turn and the model trained on the
    others is tested on it (the pooled figures are those of the held-out
    sources together).
    """

    inputs: ClassVar[tuple[InputSlot, ...]] = (
        InputSlot("data", "the training images"),
        InputSlot(
            "test",
            "the external test set, one or more sites (not needed with leave_one_source_out)",
            required=False,
        ),
    )
    supports_clinical_fit: ClassVar[bool] = True

    architecture: str = "resnet50"
    max_epochs: int = 10
    site_column: str = "source"
    leave_one_source_out: bool = False
    name: str = "external"

    def build(self) -> Any:
        """Build the estimator trained on each training set (a ClinicalClassifier when asked)."""
        from ...estimators import CXRClassifier

        est = CXRClassifier(
            architecture=self.architecture, max_epochs=self.max_epochs, **self.estimator_options()
        )
        return self.clinical_estimator(est) if self.wants_clinical_fit() else est

    def _jobs(
        self, inputs: dict[str, CXRDataset]
    ) -> tuple[CXRDataset, list[tuple[str, np.ndarray, np.ndarray]], str, str]:
        """Return the pooled data and, per site, its training and test rows."""
        data, test = inputs["data"], inputs.get("test")
        if self.leave_one_source_out:
            if test is not None:
                raise ConfigurationError(
                    "external: leave_one_source_out=True holds out the sources of --data; "
                    "drop --test-data or set leave_one_source_out=false."
                )
            ds, pos, neg = two_labels(data, self.labels, self.positive_label)
            sites = self._sites(ds)
            jobs = [
                (s, np.flatnonzero(sites != s), np.flatnonzero(sites == s)) for s in _levels(sites)
            ]
            if len(jobs) < 2:
                raise DataError(
                    f"external: leave_one_source_out needs at least two values of "
                    f"{self.site_column!r} in --data; found {list(_levels(sites))}."
                )
            return ds, jobs, pos, neg
        if test is None:
            raise ConfigurationError(
                "Protocol 'external' needs --test-data NAME:ROOT (the external sites), or "
                "--set leave_one_source_out=true."
            )
        tr, pos, neg = two_labels(data, self.labels, self.positive_label)
        te, _, _ = two_labels(test, [neg, pos], pos)
        pooled = _concat(tr, te)
        n_tr = len(tr)
        sites = self._sites(te)
        jobs = [(s, np.arange(n_tr), n_tr + np.flatnonzero(sites == s)) for s in _levels(sites)]
        return pooled, jobs, pos, neg

    def _sites(self, ds: CXRDataset) -> np.ndarray:
        md = ds.metadata
        if self.site_column not in md.columns:
            return np.full(len(ds), "all", dtype=object)
        return md[self.site_column].fillna("unknown").astype(str).to_numpy()

    def evaluate(self, inputs: dict[str, CXRDataset], *, progress: bool = True) -> Evaluation:
        ds, jobs, pos, neg = self._jobs(inputs)
        X, y, groups = ds.X, np.asarray(ds.y).astype(str), np.asarray(ds.groups).astype(str)
        est = with_epoch_progress(self.build(), progress)
        clin = ClinicalFolds(len(y))
        scores = np.full(len(y), np.nan)
        site_of = np.full(len(y), -1)
        fitted = None
        fit_once = not self.leave_one_source_out
        for k, (_site, tr, te) in enumerate(jobs):
            if fitted is None or not fit_once:
                fitted = clone(est).fit(X[tr], y[tr], groups=groups[tr])
            pos_idx = int(np.flatnonzero(fitted.classes_ == pos)[0])
            scores[te] = fitted.predict_proba(X[te])[:, pos_idx]
            site_of[te] = k
            out = clinical_outputs(fitted, X[te], pos_idx)
            out.pop("inner", None)
            clin.add(out, te)
        rows = np.flatnonzero(site_of >= 0)
        ev_ds = ds.subset(rows)
        result = RunResult(
            protocol=self.name,
            config=self.config(),
            positive_label=pos,
            classes=[neg, pos],
            images=[str(v) for v in (X[rows] if X.dtype == object else rows)],
            y_true=y[rows],
            y_score=scores[rows],
            groups=groups[rows],
            folds=site_of[rows],
        )
        result.data_summary = ev_ds.summary()
        self._site_rows = (jobs, ds, rows)
        fields = _reindex(clin, rows, self)
        self.fitted_ = getattr(fitted, "estimator_", fitted)
        return Evaluation(
            result=result,
            data=ds if self.leave_one_source_out else ds.subset(jobs[0][1]),
            test=None if self.leave_one_source_out else ev_ds,
            prevalence=self.prevalence,
            metadata=ev_ds.metadata.reset_index(drop=True),
            **fields,
        )

    def score(self, ev: Evaluation) -> None:
        """Pooled metrics, then per-site metrics beside the covariate differences."""
        super().score(ev)
        jobs, ds, rows = self._site_rows
        r = ev.result
        pos_of = {int(v): i for i, v in enumerate(rows)}
        sites = []
        for site, tr, te in jobs:
            idx = np.array([pos_of[int(i)] for i in te])
            row: dict[str, Any] = {"site": site, "n_images": int(len(idx))}
            if len(set(r.y_true[idx])) == 2:
                m = compute_metrics(
                    r.y_true[idx],
                    r.y_score[idx],
                    positive_label=r.positive_label,
                    groups=None if r.groups is None else r.groups[idx],
                    n_bootstraps=self.n_bootstraps,
                    random_state=self.random_state,
                )
                row.update({k2: m[k2] for k2 in ("auc", "sensitivity", "specificity")})
            else:
                row["note"] = "one class only: AUC undefined"
            row["test_covariates"] = covariates(ds.metadata.iloc[te])
            row["train_covariates"] = covariates(ds.metadata.iloc[tr])
            sites.append(row)
        r.extra["sites"] = sites
        r.sections.append(_site_section(sites, r.metrics))


def _levels(values: np.ndarray) -> list[str]:
    return sorted(set(map(str, values)))


def _concat(a: CXRDataset, b: CXRDataset) -> CXRDataset:
    """Join ``a`` then ``b`` into one dataset (patient ids of ``b`` prefixed ``test:``)."""
    if (a.X.dtype == object) != (b.X.dtype == object):
        raise DataError(
            "external: --data and --test-data must both be file datasets or both in memory."
        )
    md = pd.concat([a.metadata, b.metadata], ignore_index=True)
    groups = np.concatenate(
        [np.asarray(a.groups).astype(str), np.char.add("test:", np.asarray(b.groups).astype(str))]
    )
    return CXRDataset(
        X=np.concatenate([a.X, b.X]),
        y=np.concatenate([np.asarray(a.y).astype(str), np.asarray(b.y).astype(str)]),
        groups=groups,
        metadata=md,
        name=f"{a.name}+{b.name}",
    )


def _reindex(clin: ClinicalFolds, rows: np.ndarray, p: Protocol) -> dict[str, Any]:
    """Restrict the clinical fields to the evaluation rows."""
    fields = clin.evaluation_fields(p.calibration is not None, p.operating_point is not None)
    if not fields:
        return {}
    where = {int(v): i for i, v in enumerate(rows)}
    for key in ("y_score_uncalibrated", "thresholds"):
        if fields.get(key) is not None:
            fields[key] = fields[key][rows]
    for f in fields["conformal_folds"]:
        f["test_index"] = np.array([where[int(i)] for i in f["test_index"]])
    return fields


def _mix(d: dict[str, float] | None) -> str:
    return ", ".join(f"{k} {v:.0%}" for k, v in (d or {}).items()) or "n/a"


def _site_section(sites: list[dict[str, Any]], pooled: dict[str, Any]) -> ReportSection:
    """Build the per-site table with the covariates of each test site and its training data."""
    head = (
        "<tr><th>Site</th><th>Images</th><th>AUC</th><th>Sensitivity</th><th>Specificity</th>"
        "<th>View (test / train)</th><th>Sex (test / train)</th><th>Mean age (test / train)</th>"
        "<th>Source mix of training</th></tr>"
    )
    body = []
    for s in sites:
        t, tr = s["test_covariates"], s["train_covariates"]
        cells = [
            s["site"],
            str(s["n_images"]),
            with_ci(s.get("auc")) if "auc" in s else s.get("note", ""),
            with_ci(s.get("sensitivity")),
            with_ci(s.get("specificity")),
            f"{_mix(t.get('view'))} / {_mix(tr.get('view'))}",
            f"{_mix(t.get('sex'))} / {_mix(tr.get('sex'))}",
            f"{t.get('age_mean')} / {tr.get('age_mean')}",
            _mix(tr.get("source")),
        ]
        body.append("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in cells) + "</tr>")
    body.append(
        "<tr><td><b>pooled</b></td><td></td>"
        + "".join(
            f"<td>{html.escape(with_ci(pooled.get(k)))}</td>"
            for k in ("auc", "sensitivity", "specificity")
        )
        + "<td></td>" * 4
        + "</tr>"
    )
    return ReportSection(
        "external",
        "External validation by site",
        html="<table>" + head + "".join(body) + "</table>",
        data={"sites": sites},
    )

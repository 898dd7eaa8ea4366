"""The ``covid-chestxray`` dataset: the COVID-19 image data collection, native layout."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import pandas as pd

from ..errors import DataError
from ._dataset import CXRDataset
from ._finalize import finalize_dataset

__all__ = ["load_covid_chestxray", "COVID_FINDINGS", "COVID_SECONDARY_FINDINGS", "FRONTAL_VIEWS"]

#: Default mapping from a finding (one comma-separated part of the ``finding``
#: column, compared case-insensitively) to a label; ``None`` excludes it.
COVID_FINDINGS: dict[str, str | None] = {
    "covid-19": "covid",
    # viral
    "sars": "pneumonia",
    "mers": "pneumonia",
    "influenza": "pneumonia",
    "varicella": "pneumonia",
    "herpes": "pneumonia",
    # bacterial
    "streptococcus": "pneumonia",
    "klebsiella": "pneumonia",
    "legionella": "pneumonia",
    "e.coli": "pneumonia",
    "mycoplasma bacterial pneumonia": "pneumonia",
    "chlamydophila": "pneumonia",
    "staphylococcus": "pneumonia",
    "bacterial": "pneumonia",
    "mycoplasma": "pneumonia",
    "nocardia": "pneumonia",
    "tuberculosis": "pneumonia",
    # fungal
    "pneumocystis": "pneumonia",
    "aspergillosis": "pneumonia",
    # unspecified
    "pneumonia": "pneumonia",
    "no finding": "normal",
    # excluded
    "lipoid": None,
    "todo": None,
}

#: Findings that describe a complication rather than a cause: ignored when
#: another finding is present (``COVID-19, ARDS`` -> covid), excluded when alone.
COVID_SECONDARY_FINDINGS: tuple[str, ...] = ("ards",)

FRONTAL_VIEWS: tuple[str, ...] = ("PA", "AP", "AP Supine")


def _source(url: object) -> object:
    if not isinstance(url, str) or not url.strip():
        return np.nan
    host = urlparse(url.strip()).netloc.lower()
    return host[4:] if host.startswith("www.") else (host or np.nan)


def _map_finding(
    finding: object, mapping: Mapping[str, str | None], secondary: Sequence[str]
) -> tuple[str | None, str | None]:
    """(label, exclusion reason) for one ``finding`` cell."""
    if not isinstance(finding, str) or not finding.strip():
        return None, "blank finding"
    parts = [p.strip().lower() for p in finding.split(",") if p.strip()]
    if parts == ["todo"]:
        return None, "finding not yet labelled ('todo')"
    causes = [p for p in parts if p not in secondary]
    if not causes:
        return None, f"finding {finding.strip()!r} alone (a complication, not a cause)"
    unknown = [p for p in causes if p not in mapping]
    if unknown:
        return None, f"finding {finding.strip()!r} not in the label mapping"
    labels = {mapping[p] for p in causes}
    if None in labels:
        return None, f"finding {finding.strip()!r} excluded by the label mapping"
    if len(labels) > 1:
        return (
            None,
            f"finding {finding.strip()!r} maps to several labels {sorted(map(str, labels))}",
        )
    return labels.pop(), None


def load_covid_chestxray(
    root: str | os.PathLike[str] | None = None,
    *,
    findings: Mapping[str, str | None] | None = None,
    secondary_findings: Sequence[str] = COVID_SECONDARY_FINDINGS,
    views: Sequence[str] | None = FRONTAL_VIEWS,
    modality: str | None = "X-ray",
    metadata: str | None = None,
    on_error: str = "raise",
    check_images: bool = True,
    min_classes: int = 2,
) -> CXRDataset:
    """Return the COVID-19 image data collection (Cohen et al. 2020) in its native layout.

    ``root`` is a clone of ``github.com/ieee8023/covid-chestxray-dataset``:
    ``metadata.csv`` plus the ``images/`` (and ``volumes/``) folders named in its
    ``folder`` column, with the file in ``filename``.

    Parameters
    ----------
    root : path
        The repository folder.
    findings : mapping, optional
        Finding -> label (or ``None`` to exclude), case-insensitive, merged over
        :data:`COVID_FINDINGS`. A ``finding`` cell with several comma-separated
        findings is mapped part by part; all parts must agree.
    secondary_findings : sequence of str, default=("ards",)
        Ignored beside another finding; excluded when alone.
    views : sequence of str or None, default=("PA", "AP", "AP Supine")
        Views kept (``None`` keeps all, including unknown views).
    modality : str or None, default="X-ray"
        Modality kept (``None`` keeps CT too, which cxrkit cannot read as volumes).
    metadata : path, optional
        Use this metadata file instead of ``root/metadata.csv``.
    on_error : {"raise", "skip"}, default="raise"
    check_images : bool, default=True
    min_classes : int, default=2

    Notes
    -----
    Each excluded row gets the first reason that applies, checked in this
    order: modality, view, finding, duplicate file (the same ``folder/filename``
    listed again, which in this collection happens under different patient ids).
    ``source`` is the host name of the ``url`` column (the publication or site
    the image came from).
    """
    if root is None and metadata is None:
        raise DataError(
            "The covid-chestxray dataset needs root= the folder holding metadata.csv "
            "and images/ (a clone of github.com/ieee8023/covid-chestxray-dataset)."
        )
    base = Path(root).expanduser().resolve() if root is not None else Path(metadata).parent  # type: ignore[arg-type]
    meta = Path(metadata) if metadata else base / "metadata.csv"
    if not meta.is_file():
        raise DataError(
            f"'{meta}' does not exist; the covid-chestxray loader expects root= the "
            "folder with the collection's metadata.csv."
        )
    df = pd.read_csv(meta, dtype={"patientid": str, "filename": str, "folder": str})
    df = df.loc[:, [c for c in df.columns if not str(c).startswith("Unnamed")]]
    needed = ("patientid", "finding", "view", "modality", "folder", "filename")
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise DataError(
            f"'{meta}' lacks the column(s) {missing} of the covid-chestxray metadata; "
            f"its columns are {list(df.columns)}."
        )
    mapping = {k.lower(): v for k, v in COVID_FINDINGS.items()}
    mapping.update({str(k).lower(): v for k, v in (findings or {}).items()})
    secondary = tuple(s.lower() for s in secondary_findings)

    reasons: list[str | None] = []
    labels: list[str | None] = []
    seen: set[str] = set()
    for row in df.itertuples(index=False):
        label, reason = None, None
        mod = row.modality
        view = row.view
        if modality is not None and (not isinstance(mod, str) or mod.strip() != modality):
            reason = f"modality {mod if isinstance(mod, str) else 'unknown'}"
        elif views is not None and (not isinstance(view, str) or view.strip() not in views):
            reason = f"view {view if isinstance(view, str) else 'unknown'} not selected"
        else:
            label, reason = _map_finding(row.finding, mapping, secondary)
        key = f"{row.folder}/{row.filename}"
        if reason is None:
            if key in seen:
                label, reason = None, "duplicate file (listed again, under another patient id)"
            seen.add(key)
        labels.append(label)
        reasons.append(reason)
    df["_label"] = labels
    df["_reason"] = reasons
    table = pd.DataFrame(
        {
            "image": [str(base / str(f) / str(n)) for f, n in zip(df["folder"], df["filename"])],
            "label": df["_label"],
            "patient_id": df["patientid"],
            "view": df["view"],
            "source": df["url"].map(_source) if "url" in df.columns else np.nan,
            "sex": df.get("sex", np.nan),
            "age": df.get("age", np.nan),
            "finding": df["finding"],
            "modality": df["modality"],
            "license": df.get("license", np.nan),
            "date": df.get("date", np.nan),
            "doi": df.get("doi", np.nan),
        }
    )
    excl = table.loc[df["_reason"].notna()].copy()
    excl["reason"] = df.loc[df["_reason"].notna(), "_reason"].to_numpy()
    kept = table.loc[df["_reason"].isna()]
    return finalize_dataset(
        "covid-chestxray",
        str(base),
        kept,
        excl,
        on_error=on_error,
        check=check_images,
        min_classes=min_classes,
    )

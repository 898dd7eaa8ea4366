"""A common vocabulary of chest X-ray findings, and the label codes every loader shares.

Every multi-label loader maps its dataset's own label names to these lowercase
names, so that one model can train on several datasets (the idea of
torchxrayvision's ``relabel_dataset``). Label values, whatever the source's
coding, become ``1.0`` (positive), ``0.0`` (negative), ``-1.0`` (uncertain,
as the CheXpert labeller writes it) and ``NaN`` (not labelled).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import ConfigurationError, DataError

__all__ = [
    "FINDINGS",
    "UNCERTAIN_POLICIES",
    "POSITIVE",
    "NEGATIVE",
    "UNCERTAIN",
    "map_to_vocabulary",
    "resolve_finding",
    "apply_uncertain",
    "check_label_codes",
    "finding_counts",
]

POSITIVE, NEGATIVE, UNCERTAIN = 1.0, 0.0, -1.0

#: What each ``uncertain=`` policy does with a ``-1`` (Irvin et al. 2019).
UNCERTAIN_POLICIES: dict[str, str] = {
    "ignore": "uncertain labels are treated as missing (NaN; masked from losses and metrics)",
    "ones": "uncertain labels count as positive (U-Ones)",
    "zeros": "uncertain labels count as negative (U-Zeros)",
}

#: The common vocabulary: name -> what it means.
FINDINGS: dict[str, str] = {
    "no_finding": "no finding / normal study",
    "atelectasis": "atelectasis (any type)",
    "cardiomegaly": "cardiomegaly",
    "consolidation": "consolidation",
    "edema": "pulmonary edema",
    "effusion": "pleural effusion",
    "emphysema": "emphysema",
    "fibrosis": "pulmonary fibrosis",
    "hernia": "hiatal hernia",
    "infiltration": "infiltration / infiltrates",
    "mass": "mass",
    "nodule": "nodule(s)",
    "nodule_or_mass": "nodule or mass (sources that do not separate them)",
    "pleural_thickening": "pleural thickening",
    "pneumonia": "pneumonia",
    "pneumothorax": "pneumothorax",
    "enlarged_cardiomediastinum": "enlarged cardiomediastinum",
    "lung_opacity": "lung / airspace opacity",
    "lung_lesion": "lung lesion",
    "pleural_other": "other pleural finding",
    "fracture": "fracture (any bone)",
    "support_devices": "support devices (tubes, lines, pacemakers)",
    "aortic_enlargement": "aortic enlargement",
    "calcification": "calcification",
    "ild": "interstitial lung disease",
    "other_lesion": "other lesion",
    "copd": "chronic obstructive pulmonary disease (signs)",
    "tuberculosis": "tuberculosis",
    "lung_tumor": "lung tumour",
    "lung_cavity": "lung cavity / cavitation",
    "lung_cyst": "lung cyst",
    "mediastinal_shift": "mediastinal shift",
    "enlarged_pa": "enlarged pulmonary artery",
    "other_disease": "other disease",
}


def _norm(name: str) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def resolve_finding(name: str, available: Mapping[str, str] | Sequence[str], dataset: str) -> str:
    """Return the column of ``available`` that ``name`` means (vocabulary or native name).

    Matching ignores case, spaces and punctuation (``"Pleural Effusion"``,
    ``"pleural_effusion"`` and ``"effusion"`` when the dataset maps it so).

    Parameters
    ----------
    name : str
        A vocabulary name or the dataset's own name for a finding.
    available : mapping (native name -> vocabulary name) or sequence of names
        The findings the dataset has.
    dataset : str
        Used in the error message.

    Raises
    ------
    ConfigurationError
        The dataset does not have that finding; the message suggests the
        closest names and lists them all.
    """
    native = dict(available) if isinstance(available, Mapping) else {a: a for a in available}
    lookup = {_norm(v): v for v in native.values()}
    lookup.update({_norm(k): v for k, v in native.items() if _norm(k) not in lookup})
    key = _norm(name)
    if key in lookup:
        return lookup[key]
    names = sorted(set(native.values()))
    close = difflib.get_close_matches(str(name).lower().replace(" ", "_"), names, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    other = (
        " (it is in the common vocabulary, but this dataset does not label it)"
        if key in {_norm(f) for f in FINDINGS}
        else ""
    )
    raise ConfigurationError(
        f"Dataset {dataset!r} has no finding {name!r}{other}.{hint} Its findings: "
        f"{', '.join(names)}."
    )


def map_to_vocabulary(native: pd.DataFrame, mapping: Mapping[str, Iterable[str]]) -> pd.DataFrame:
    """Combine native label columns into vocabulary findings.

    Parameters
    ----------
    native : DataFrame
        One column per native finding, values 1 / 0 / -1 / NaN.
    mapping : mapping
        Vocabulary name -> native column names. Several native columns are
        combined row by row: positive if any is positive, else uncertain if
        any is uncertain, else negative if any is negative, else NaN.
        Native names absent from ``native`` are ignored.

    Returns
    -------
    DataFrame of float32, one column per vocabulary finding that has at least
    one native column, in the order of ``mapping``.
    """
    out: dict[str, np.ndarray] = {}
    for vocab, cols in mapping.items():
        cols = [c for c in cols if c in native.columns]
        if not cols:
            continue
        block = native[cols].to_numpy(dtype=np.float32)
        if block.shape[1] == 1:
            out[vocab] = block[:, 0]
            continue
        known = ~np.isnan(block)
        pos = (block == POSITIVE).any(1)
        unc = (block == UNCERTAIN).any(1)
        col = np.where(known.any(1), NEGATIVE, np.nan).astype(np.float32)
        col[unc] = UNCERTAIN
        col[pos] = POSITIVE
        out[vocab] = col
    return pd.DataFrame(out, index=native.index)


def apply_uncertain(values: np.ndarray, uncertain: str) -> np.ndarray:
    """Apply an ``uncertain=`` policy to label values (a copy; NaN stays NaN).

    Examples
    --------
    >>> apply_uncertain(np.array([1.0, 0.0, -1.0, np.nan]), "ones").tolist()[:3]
    [1.0, 0.0, 1.0]
    """
    if uncertain not in UNCERTAIN_POLICIES:
        raise ConfigurationError(
            f"The 'uncertain' parameter must be one of {list(UNCERTAIN_POLICIES)}. "
            f"Got {uncertain!r} instead."
        )
    out = np.array(values, dtype=np.float32, copy=True)
    out[out == UNCERTAIN] = {"ignore": np.nan, "ones": POSITIVE, "zeros": NEGATIVE}[uncertain]
    return out


def check_label_codes(
    table: pd.DataFrame,
    columns: Sequence[str],
    dataset: str,
    allowed: Sequence[float] = (POSITIVE, NEGATIVE, UNCERTAIN),
) -> pd.Series:
    """Rows whose label columns hold a code outside ``allowed`` (blank is always allowed).

    Returns
    -------
    Series of str (index of ``table``)
        A reason per offending row (empty Series when all codes are known).

    Raises
    ------
    DataError
        A column is not numeric at all (e.g. ``"yes"``/``"no"`` text).
    """
    reasons = pd.Series(dtype=object)
    for col in columns:
        raw = table[col]
        if pd.api.types.is_numeric_dtype(raw):
            v = raw.to_numpy(dtype=np.float64)
            bad = pd.Series(~np.isnan(v) & ~np.isin(v, allowed), index=table.index)
        else:
            values = pd.to_numeric(raw, errors="coerce")
            text = raw.notna() & values.isna() & (raw.astype(str).str.strip() != "")
            bad = text | (values.notna() & ~values.isin(allowed))
        if bad.any():
            shown = raw[bad].astype(str).value_counts().head(5).to_dict()
            why = f"unknown label code in {col!r}: {list(shown)}"
            new = pd.Series(why, index=table.index[bad])
            reasons = pd.concat([reasons, new[~new.index.isin(reasons.index)]])
    if len(reasons):
        reasons.attrs["message"] = (
            f"{len(reasons)} rows of dataset {dataset!r} have label codes other than "
            f"{sorted(allowed, reverse=True)} or blank ({reasons.iloc[0]}; first row "
            f"{reasons.index[0]!r}). Fix the file, or pass on_error='skip' to leave those rows "
            "out (counted in the summary)."
        )
    return reasons


def finding_counts(labels: pd.DataFrame) -> pd.DataFrame:
    """Per finding: how many images are positive, negative, uncertain and missing.

    Returns
    -------
    DataFrame indexed by finding with integer columns
    ``positive, negative, uncertain, missing``.
    """
    v = labels.to_numpy(dtype=np.float32)
    return pd.DataFrame(
        {
            "positive": (v == POSITIVE).sum(0),
            "negative": (v == NEGATIVE).sum(0),
            "uncertain": (v == UNCERTAIN).sum(0),
            "missing": np.isnan(v).sum(0),
        },
        index=pd.Index(labels.columns, name="finding"),
    ).astype(int)


def require_labels(labels: pd.DataFrame | None, dataset: str) -> pd.DataFrame:
    """``labels`` itself, or a DataError saying the dataset has no label matrix."""
    if labels is None:
        raise DataError(
            f"Dataset {dataset!r} has no per-finding label matrix (its loader gives one "
            "label per image). Use a multi-label loader (chestxray14, chexpert, mimic-cxr, "
            "padchest, rsna-pneumonia, vindr-cxr)."
        )
    return labels

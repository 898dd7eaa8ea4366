"""The dataset type every loader returns, and the checks every loader shares."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import ConfigurationError, DataError

# read_xray lives here for check_images (datasets/_finalize.py) and for tests that patch it.
from ..io import read_xray  # noqa: F401
from ._vocabulary import FINDINGS, apply_uncertain, finding_counts, require_labels

__all__ = ["CXRDataset", "METADATA_COLUMNS", "UNREADABLE"]

#: Columns every dataset's ``metadata`` table has (NaN where unknown).
METADATA_COLUMNS = ("image", "label", "patient_id", "view", "source", "sex", "age", "finding")

#: The exclusion reason recorded for files that could not be decoded.
UNREADABLE = "unreadable image"

_ON_ERROR = ("raise", "skip")


def _check_on_error(on_error: str) -> None:
    if on_error not in _ON_ERROR:
        raise ConfigurationError(
            f"The 'on_error' parameter must be one of {_ON_ERROR}. Got {on_error!r} instead."
        )


@dataclass(eq=False)
class CXRDataset:
    """Chest X-ray images with labels, patient ids and per-image metadata.

    Attributes
    ----------
    X : ndarray
        Either a 1-D object array of absolute image paths, or a ``uint8`` array
        of shape ``(n, H, W)`` for in-memory images (the ``synthetic`` dataset
        without a root). Either form can be passed to ``CXRClassifier.fit``.
    y : ndarray of str, shape (n,)
        Labels.
    groups : ndarray of str, shape (n,)
        Patient ids (pass as ``groups=`` to patient-aware splits).
    metadata : pandas.DataFrame
        One row per image, in the order of ``X``; at least the columns
        :data:`METADATA_COLUMNS` (``image, label, patient_id, view, source, sex,
        age, finding``), NaN where unknown.
    excluded : pandas.DataFrame
        Rows of the source that were left out, with a ``reason`` column
        (``"unreadable image"`` rows also have an ``error`` column).
    name : str
        The dataset name it was loaded with.
    root : str or None
        The folder (or file) it was loaded from.
    labels : pandas.DataFrame or None
        Multi-label loaders only: one row per image (order of ``X``), one
        ``float32`` column per finding of the common vocabulary
        (:data:`cxrkit.datasets.FINDINGS`), values ``1`` positive, ``0``
        negative, ``-1`` uncertain and ``NaN`` not labelled, as in the source.
        :meth:`label_matrix` applies an ``uncertain=`` policy; ``y`` stays the
        one label per image that binary estimators take.
    notes : list of str
        Data problems found while loading that did not stop it (repeated rows,
        labels that differ only by case, paths outside the root, files left
        out); each was also issued as a warning.
    """

    X: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    metadata: pd.DataFrame
    excluded: pd.DataFrame = field(default_factory=lambda: pd.DataFrame({"reason": []}))
    name: str = "dataset"
    root: str | None = None
    labels: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.X)
        for attr in ("y", "groups"):
            if len(getattr(self, attr)) != n:
                raise DataError(
                    f"CXRDataset {attr} has {len(getattr(self, attr))} entries but X has {n} images."
                )
        if len(self.metadata) != n:
            raise DataError(
                f"CXRDataset metadata has {len(self.metadata)} rows but X has {n} images."
            )
        if "reason" not in self.excluded.columns:
            raise DataError("CXRDataset.excluded must have a 'reason' column.")
        if self.labels is not None and len(self.labels) != n:
            raise DataError(f"CXRDataset labels has {len(self.labels)} rows but X has {n} images.")

    def __len__(self) -> int:
        return len(self.y)

    def __repr__(self) -> str:
        counts = list(self.label_counts().items())
        labels = ", ".join(f"{k}={v}" for k, v in counts[:8])
        if len(counts) > 8:
            labels += f", ... {len(counts) - 8} more labels"
        kind = "in-memory" if self.in_memory else "files"
        return (
            f"CXRDataset(name={self.name!r}, n={len(self)}, patients={self.n_patients}, "
            f"{labels}, excluded={len(self.excluded)}, {kind})"
        )

    # -- properties -------------------------------------------------------
    @property
    def in_memory(self) -> bool:
        """True when ``X`` holds pixel arrays rather than paths."""
        return isinstance(self.X, np.ndarray) and self.X.dtype != object

    @property
    def classes(self) -> list[str]:
        """Sorted distinct labels."""
        return sorted(pd.unique(self.y).tolist())

    @property
    def n_patients(self) -> int:
        return int(pd.Series(self.groups).nunique())

    def label_counts(self) -> dict[str, int]:
        return {str(k): int(v) for k, v in pd.Series(self.y).value_counts().sort_index().items()}

    # -- multi-label view ---------------------------------------------------
    @property
    def findings(self) -> list[str]:
        """The columns of :attr:`labels` (empty for single-label datasets)."""
        return [] if self.labels is None else [str(c) for c in self.labels.columns]

    def label_matrix(
        self, findings: Sequence[str] | None = None, *, uncertain: str = "ignore"
    ) -> np.ndarray:
        """Return the per-finding labels as a ``float32`` array of shape ``(n, k)``.

        Parameters
        ----------
        findings : list of str, optional
            Columns of :attr:`labels`, in this order (default: all).
        uncertain : {"ignore", "ones", "zeros"}, default="ignore"
            What a ``-1`` becomes: NaN (masked), 1 (U-Ones) or 0 (U-Zeros).
            Missing labels stay NaN under every policy.
        """
        labels = require_labels(self.labels, self.name)
        cols = self._columns(findings)
        return apply_uncertain(labels[cols].to_numpy(dtype=np.float32), uncertain)

    def label_summary(self) -> pd.DataFrame:
        """Per finding: counts of positive, negative, uncertain (-1) and missing labels."""
        return finding_counts(require_labels(self.labels, self.name))

    def relabel(self, findings: Sequence[str]) -> CXRDataset:
        """Return a copy whose :attr:`labels` has exactly ``findings`` as columns.

        Findings this dataset does not label become all-NaN columns, so that
        datasets with different findings can be stacked for one model.
        Names must come from the common vocabulary.
        """
        labels = require_labels(self.labels, self.name)
        unknown = [f for f in findings if f not in FINDINGS]
        if unknown:
            raise DataError(
                f"relabel() takes names of the common vocabulary; {unknown} are not. "
                f"Known names: {', '.join(FINDINGS)}."
            )
        out = self.subset(np.arange(len(self)))
        out.labels = labels.reindex(columns=list(findings)).astype(np.float32)
        return out

    def _columns(self, findings: Sequence[str] | None) -> list[str]:
        if findings is None:
            return self.findings
        findings = [findings] if isinstance(findings, str) else list(findings)
        missing = [f for f in findings if f not in self.findings]
        if missing:
            raise DataError(
                f"Dataset {self.name!r} has no finding(s) {missing}; its findings: "
                f"{', '.join(self.findings)}. relabel() adds absent ones as NaN."
            )
        return findings

    # -- selections ---------------------------------------------------------
    def subset(self, idx: Any) -> CXRDataset:
        """Return a new dataset with the images at ``idx`` (indices or boolean mask).

        ``excluded`` is carried over unchanged.
        """
        idx = np.asarray(idx)
        if idx.dtype == bool:
            if len(idx) != len(self):
                raise DataError(
                    f"Boolean mask has {len(idx)} entries; the dataset has {len(self)}."
                )
            idx = np.flatnonzero(idx)
        labels = None if self.labels is None else self.labels.iloc[idx].reset_index(drop=True)
        return CXRDataset(
            X=self.X[idx],
            y=self.y[idx],
            groups=self.groups[idx],
            metadata=self.metadata.iloc[idx].reset_index(drop=True),
            excluded=self.excluded.copy(),
            name=self.name,
            root=self.root,
            labels=labels,
            notes=list(self.notes),
        )

    def select(self, labels: Sequence[str]) -> CXRDataset:
        """Keep the images whose label is in ``labels``.

        The others are added to ``excluded`` with the reason ``"label not selected"``.

        Raises
        ------
        DataError
            A requested label has no image, or nothing is selected.
        """
        if isinstance(labels, str):
            labels = [labels]
        labels = [str(lab) for lab in labels]
        present = set(self.classes)
        missing = [lab for lab in labels if lab not in present]
        if missing:
            raise DataError(
                f"Cannot select label(s) {missing} from dataset {self.name!r}: no image has them. "
                f"Labels present: {sorted(present)}."
            )
        keep = np.isin(self.y.astype(str), labels)
        dropped = self.metadata.loc[~keep].copy()
        dropped["reason"] = "label not selected"
        out = self.subset(np.flatnonzero(keep))
        out.excluded = pd.concat([self.excluded, dropped], ignore_index=True)
        return out

    # -- reporting ------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """Count what the dataset holds.

        Returns
        -------
        dict
            ``name, n_images, n_patients, labels, patients_per_label, views,
            sources, images_per_patient`` (number of images -> number of
            patients), ``excluded`` (reason -> count), ``n_excluded``,
            ``skipped_files`` (how many files could not be decoded) and
            ``skipped_examples`` (the first 10 of those, with their errors);
            with a label matrix also ``findings`` (finding -> counts of
            positive, negative, uncertain, missing).
            ``skipped_examples`` (the first 10 of those, with their errors) and
            ``notes`` (see the ``notes`` attribute).
        """
        md = self.metadata

        def counts(col: str) -> dict[str, int]:
            s = md[col].astype(object).where(md[col].notna(), "unknown").astype(str)
            return {str(k): int(v) for k, v in s.value_counts().sort_index().items()}

        per_patient = pd.Series(self.groups).value_counts()
        hist = per_patient.value_counts().sort_index()
        patients_per_label = (
            pd.DataFrame({"y": self.y, "g": self.groups}).groupby("y")["g"].nunique()
        )
        reasons = self.excluded["reason"].astype(str).value_counts()
        skipped = self.excluded[self.excluded["reason"] == UNREADABLE]
        examples = []
        if len(skipped):
            err = skipped["error"] if "error" in skipped else pd.Series([""] * len(skipped))
            examples = [str(e) for e in err.head(10)]
        out = {
            "name": self.name,
            "n_images": len(self),
            "n_patients": self.n_patients,
            "labels": self.label_counts(),
            "patients_per_label": {str(k): int(v) for k, v in patients_per_label.items()},
            "views": counts("view"),
            "sources": counts("source"),
            "images_per_patient": {int(k): int(v) for k, v in hist.items()},
            "excluded": {str(k): int(v) for k, v in reasons.items()},
            "n_excluded": int(len(self.excluded)),
            "skipped_files": int(len(skipped)),
            "skipped_examples": examples,
            "notes": list(self.notes),
        }
        if self.labels is not None:
            out["findings"] = {
                str(f): {k: int(v) for k, v in row.items()}
                for f, row in self.label_summary().iterrows()
            }
        return out

    def format_summary(self, max_rows: int = 15) -> str:
        """:meth:`summary` as a readable plain-text report."""
        s = self.summary()
        lines = [
            f"Dataset {s['name']!r}" + (f" ({self.root})" if self.root else ""),
            f"  images: {s['n_images']}   patients: {s['n_patients']}",
        ]

        def table(
            title: str, d: dict[Any, int], extra: dict[Any, int] | None = None, key_name: str = ""
        ) -> None:
            lines.append(f"{title}:")
            if not d:
                lines.append("  (none)")
                return
            items = (
                sorted(d.items(), key=lambda kv: (-kv[1], str(kv[0])))
                if not key_name
                else list(d.items())
            )
            width = max(len(str(k)) for k, _ in items[:max_rows])
            for k, v in items[:max_rows]:
                tail = f"  ({extra[k]} patients)" if extra and k in extra else ""
                lines.append(f"  {str(k):<{width}}  {v:>6}{tail}")
            if len(items) > max_rows:
                rest = sum(v for _, v in items[max_rows:])
                lines.append(f"  ... {len(items) - max_rows} more ({rest} in all)")

        table("Labels", s["labels"], s["patients_per_label"])
        table("Views", s["views"])
        table("Sources", s["sources"])
        table("Images per patient (images: patients)", s["images_per_patient"], key_name="n")
        table(f"Excluded ({s['n_excluded']} rows)", s["excluded"])
        if "findings" in s:
            lines.append("Findings (positive / negative / uncertain / missing):")
            for f, c in s["findings"].items():
                lines.append(
                    f"  {f:<26} {c['positive']:>7} {c['negative']:>7} "
                    f"{c['uncertain']:>7} {c['missing']:>7}"
                )
        if s["skipped_files"]:
            lines.append(f"Skipped unreadable files: {s['skipped_files']}")
            lines.extend(f"  {e}" for e in s["skipped_examples"])
        if s["notes"]:
            lines.append("Notes:")
            lines.extend(f"  - {n}" for n in s["notes"])
        return "\n".join(lines)

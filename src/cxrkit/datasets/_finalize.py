"""Finishing a loader's table into a `CXRDataset`: image checks, patient ids, skipped rows."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, ImageDecodeError
from ..io._loader import format_failures
from . import _dataset
from ._dataset import METADATA_COLUMNS, UNREADABLE, CXRDataset, _check_on_error
from ._files import MISSING_FILE, check_mode, missing_files, missing_files_message
from ._quality import announce_skipped, drop_duplicate_rows, label_case_notes

__all__ = ["finalize_dataset", "check_images"]


# ---------------------------------------------------------------------------
# helpers shared by the loaders
# ---------------------------------------------------------------------------
def _check_one(path: str) -> str | None:
    try:
        _dataset.read_xray(path)  # looked up on _dataset, where callers patch it
    except ImageDecodeError as exc:
        return str(exc)
    return None


def check_images(paths: Sequence[str], n_jobs: int | None = None) -> dict[int, str]:
    """Decode every image; return ``{index: error message}`` for the bad ones."""
    from ..io import map_collecting_errors  # the one decode pool

    threads = n_jobs or max(1, min(8, os.cpu_count() or 1))
    bad: dict[int, str] = {}

    def work(i: int) -> None:
        message = _check_one(paths[i])
        if message is not None:
            bad[i] = message

    map_collecting_errors(work, len(paths), threads, ())
    return dict(sorted(bad.items()))


def _nan_to_none(v: Any) -> Any:
    return None if (v is None or (isinstance(v, float) and np.isnan(v))) else v


def _pid(v: Any) -> str:
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))  # 226.0 read from a CSV column with blanks -> "226"
    return str(v)


def finalize_dataset(
    name: str,
    root: str | None,
    table: pd.DataFrame,
    excluded: list[pd.DataFrame] | pd.DataFrame | None = None,
    *,
    on_error: str = "raise",
    check: bool | str = True,
    min_classes: int = 2,
    X: np.ndarray | None = None,
    labels: pd.DataFrame | None = None,
    progress: bool | None = None,
    notes: list[str] | None = None,
) -> CXRDataset:
    """Turn a table of kept rows into a checked :class:`CXRDataset`.

    Parameters
    ----------
    name, root : str
    table : DataFrame
        Kept rows with at least ``image`` (absolute path), ``label`` and
        ``patient_id``; other :data:`METADATA_COLUMNS` are added as NaN.
    excluded : DataFrame or list of DataFrames with a ``reason`` column
    on_error : {"raise", "skip"}
        Unreadable images (and missing labels) raise one :class:`DataError` /
        :class:`ImageDecodeError` listing them all, or are excluded and counted.
    check : bool or {"decode", "exists", "none"}, default=True
        ``True``/``"decode"``: decode every image before returning;
        ``"exists"``: only check that every file exists (streamed, one folder
        listing at a time, with a progress bar; for 100,000s of images);
        ``False``/``"none"``: trust the paths. Missing or unreadable files
        follow ``on_error``.
    min_classes : int, default=2
        Fewer distinct labels than this is an error.
    X : ndarray, optional
        In-memory images (then ``image`` holds identifiers, not paths).
    labels : DataFrame, optional
        The per-finding label matrix, row for row with ``table``; rows left out
        here are left out of it too.
    progress : bool or None, default=None
        Progress bar of the ``"exists"`` check (``None``: on a terminal only).
    notes : list of str, optional
        The loader's own notes (see :attr:`CXRDataset.notes`); the shared checks
        (:mod:`cxrkit.datasets._quality`) add theirs.
    """
    _check_on_error(on_error)
    mode = check_mode(check)
    notes = list(notes or [])
    table, labels = _prepare_table(table, labels)
    excl = _merge_excluded(excluded)
    extra: list[pd.DataFrame] = []

    table, X = _drop_missing_labels(table, X, name, on_error, extra, notes)
    if X is None and mode == "exists" and len(table):
        table = _drop_missing_files(table, name, root, on_error, progress, extra)
    if X is None and len(table):
        table, parts, found = drop_duplicate_rows(table, name, on_error)
        table = table.reset_index(drop=True)
        extra += parts
        notes += found
    if X is None and mode == "decode" and len(table):
        table = _drop_unreadable(table, name, on_error, extra, notes)

    if extra:
        extra = [e.drop(columns="_row", errors="ignore") for e in extra]
        excl = pd.concat([excl] + extra, ignore_index=True)
    if labels is not None:
        labels = labels.iloc[table.pop("_row").to_numpy()].reset_index(drop=True)

    _check_not_empty(table, excl, name)
    table["label"] = table["label"].astype(str)
    table["patient_id"] = _patient_ids(table)
    notes += label_case_notes(table["label"], name)
    _check_classes(table, name, min_classes)
    cols = list(METADATA_COLUMNS) + [c for c in table.columns if c not in METADATA_COLUMNS]
    table = table[cols]
    Xout = X if X is not None else table["image"].astype(str).to_numpy(dtype=object)
    return CXRDataset(
        X=Xout,
        y=table["label"].to_numpy(dtype=object),
        groups=table["patient_id"].astype(str).to_numpy(dtype=object),
        metadata=table,
        excluded=excl,
        name=name,
        root=None if root is None else str(root),
        labels=labels,
        notes=notes,
    )


# ---------------------------------------------------------------------------
# the steps of finalize_dataset
# ---------------------------------------------------------------------------
def _prepare_table(
    table: pd.DataFrame, labels: pd.DataFrame | None
) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Reindex the table, tag rows for ``labels`` and add absent metadata columns."""
    table = table.reset_index(drop=True).copy()
    if labels is not None:
        if len(labels) != len(table):
            raise DataError(f"labels has {len(labels)} rows but the table has {len(table)}.")
        labels = labels.reset_index(drop=True)
        table["_row"] = np.arange(len(table))
    for col in METADATA_COLUMNS:
        if col not in table.columns:
            table[col] = np.nan
    return table, labels


def _merge_excluded(excluded: list[pd.DataFrame] | pd.DataFrame | None) -> pd.DataFrame:
    """Join the loader's excluded rows into one table with a ``reason`` column."""
    if isinstance(excluded, list):
        parts = [e for e in excluded if e is not None and len(e)]
        excluded = pd.concat(parts, ignore_index=True) if parts else None
    excl: pd.DataFrame = (
        pd.DataFrame({"reason": pd.Series([], dtype=object)})
        if excluded is None or len(excluded) == 0
        else excluded
    )
    return excl.reset_index(drop=True)


def _drop_missing_labels(
    table: pd.DataFrame,
    X: np.ndarray | None,
    name: str,
    on_error: str,
    extra: list[pd.DataFrame],
    notes: list[str],
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """Raise on, or move to ``extra``, the rows with a NaN or blank label."""
    bad_label = table["label"].isna() | (table["label"].astype(str).str.strip() == "")
    if not bad_label.any():
        return table, X
    if on_error == "raise":
        rows = [f"{img}" for img in table.loc[bad_label, "image"]]
        raise DataError(
            f"{int(bad_label.sum())} of {len(table)} images of dataset {name!r} have no label "
            f"(NaN or blank):\n  "
            + "\n  ".join(map(str, rows[:10]))
            + (f"\n  ... and {len(rows) - 10} more" if len(rows) > 10 else "")
            + "\nFill in the labels, or pass on_error='skip' to leave these images out "
            "(they are counted in the summary)."
        )
    d = table.loc[bad_label].copy()
    d["reason"] = "missing label"
    extra.append(d)
    notes += announce_skipped([str(i) for i in d["image"]], len(table), name, "have no label")
    keep = ~bad_label.to_numpy()
    table = table.loc[keep].reset_index(drop=True)
    if X is not None:
        X = X[keep]
    return table, X


def _drop_missing_files(
    table: pd.DataFrame,
    name: str,
    root: str | None,
    on_error: str,
    progress: bool | None,
    extra: list[pd.DataFrame],
) -> pd.DataFrame:
    """Raise on, or move to ``extra``, the rows whose image file does not exist."""
    gone = missing_files(
        table["image"].astype(str).to_numpy(),
        progress=progress,
        desc=f"{name}: checking image files",
    )
    if not gone.any():
        return table
    if on_error == "raise":
        raise DataError(
            missing_files_message(
                table.loc[gone, "image"].astype(str).tolist(), len(table), name, root
            )
        )
    d = table.loc[gone].copy()
    d["reason"] = MISSING_FILE
    extra.append(d)
    return table.loc[~gone].reset_index(drop=True)


def _drop_unreadable(
    table: pd.DataFrame,
    name: str,
    on_error: str,
    extra: list[pd.DataFrame],
    notes: list[str],
) -> pd.DataFrame:
    """Raise on, or move to ``extra``, the rows whose image does not decode."""
    errors = check_images(table["image"].astype(str).tolist())
    if not errors:
        return table
    if on_error == "raise":
        raise ImageDecodeError(
            format_failures(
                list(errors.values()),
                len(table),
                what=f"images of dataset {name!r}",
                hint="Remove or replace them, or pass on_error='skip' to leave them out "
                "(they are counted and listed in the dataset summary).",
            )
        )
    bad = np.zeros(len(table), bool)
    bad[list(errors)] = True
    d = table.loc[bad].copy()
    d["reason"] = UNREADABLE
    d["error"] = [errors[int(i)] for i in np.flatnonzero(bad)]
    extra.append(d)
    notes += announce_skipped(list(errors.values()), len(table), name, "could not be decoded")
    return table.loc[~bad].reset_index(drop=True)


def _check_not_empty(table: pd.DataFrame, excl: pd.DataFrame, name: str) -> None:
    """Raise when no row is left, saying why the rows were excluded."""
    if len(table):
        return
    reasons = excl["reason"].astype(str).value_counts()
    detail = "; ".join(f"{k}: {v}" for k, v in reasons.items()) or "the source has no rows"
    raise DataError(
        f"Dataset {name!r} is empty after filtering ({len(excl)} rows excluded — {detail}). "
        "Check the root folder and the filtering options (labels, views, target)."
    )


def _patient_ids(table: pd.DataFrame) -> list[str]:
    """Return the patient ids as strings, ``image:<id>`` where none is given."""
    return [
        _pid(v) if _nan_to_none(v) is not None else f"image:{img}"
        for v, img in zip(
            table["patient_id"].to_numpy(dtype=object), table["image"].to_numpy(dtype=object)
        )
    ]


def _check_classes(table: pd.DataFrame, name: str, min_classes: int) -> None:
    """Raise when fewer than ``min_classes`` distinct labels are left."""
    classes = sorted(table["label"].unique())
    if len(classes) < min_classes:
        raise DataError(
            f"Dataset {name!r} has only {len(classes)} class(es) left ({classes}) after filtering; "
            f"at least {min_classes} are needed. Check the label mapping and filters, or pass "
            "min_classes=1 to load a single class on purpose."
        )

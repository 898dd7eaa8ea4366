"""The ``csv`` dataset: any table of image paths and labels."""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from ._dataset import CXRDataset
from ._finalize import finalize_dataset
from ._quality import outside_root_note

__all__ = ["load_csv_dataset"]


def _resolve_csv(root: str | os.PathLike[str] | None) -> Path:
    if root is None:
        raise DataError(
            "The csv dataset needs root= the CSV file (or a folder holding metadata.csv)."
        )
    p = Path(root).expanduser()
    if p.is_dir():
        p = p / "metadata.csv"
    if not p.is_file():
        raise DataError(f"CSV file '{p}' does not exist. Pass root= the path of the CSV file.")
    return p.resolve()


def load_csv_dataset(
    root: str | os.PathLike[str] | None = None,
    *,
    path_col: str = "image",
    label_col: str = "label",
    group_col: str | None = "patient_id",
    source_col: str | None = "source",
    view_col: str | None = "view",
    labels: Sequence[str] | None = None,
    base_dir: str | None = None,
    sep: str = ",",
    on_error: str = "raise",
    check_images: bool = True,
    min_classes: int = 2,
    name: str = "csv",
    allow_outside_root: bool = True,
) -> CXRDataset:
    """Any CSV with one row per image: path, label and (optionally) patient id.

    Parameters
    ----------
    root : path
        The CSV file, or a folder holding ``metadata.csv``.
    path_col, label_col : str, default="image", "label"
        Columns with the image path and the label. Relative paths are
        resolved against ``base_dir`` (default: the CSV's folder).
    group_col : str or None, default="patient_id"
        Patient ids. ``None`` (or a missing default column, with a warning)
        treats every image as its own patient.
    source_col, view_col : str or None, default="source", "view"
        Optional columns copied into ``metadata`` as ``source`` / ``view``.
    labels : list of str, optional
        Keep only these labels; others are excluded ("label not selected").
    base_dir : str, optional
    sep : str, default=","
    on_error : {"raise", "skip"}, default="raise"
        Unreadable images and missing labels: one error listing all of them,
        or leave them out and count them in ``excluded``.
    check_images : bool, default=True
        Decode every image before returning.
    min_classes : int, default=2
    allow_outside_root : bool, default=True
        Whether image paths may lie outside ``base_dir`` (e.g. ``../other/a.png``
        or absolute paths elsewhere). When they do, a warning and a note in the
        dataset summary say how many; ``False`` makes that an error.

    Notes
    -----
    A row that repeats an earlier one (same file, label and patient) is used
    once and counted in ``excluded`` as ``"duplicate row"``; one file listed
    with different labels or patient ids is an error (or, with
    ``on_error="skip"``, all its rows are left out).

    Examples
    --------
    >>> ds = load_dataset("csv", root="/work/shared/data/cxr-dev/metadata.csv")  # doctest: +SKIP
    """
    csv = _resolve_csv(root)
    try:
        df = pd.read_csv(csv, sep=sep, dtype={path_col: str})
    except Exception as exc:
        raise DataError(
            f"CSV file '{csv}' could not be parsed ({type(exc).__name__}: {exc})."
        ) from None
    for role, col in (("path", path_col), ("label", label_col)):
        if col not in df.columns:
            raise DataError(
                f"CSV file '{csv}' has no {role} column {col!r}. Its columns are: "
                f"{', '.join(map(str, df.columns))}. Pass {role}_col= the right column name."
            )
    base = Path(base_dir) if base_dir else csv.parent
    table = df.copy()
    missing_path = table[path_col].isna() | (table[path_col].astype(str).str.strip() == "")
    excluded = []
    if missing_path.any():
        d = table.loc[missing_path].copy()
        d["reason"] = "missing image path"
        excluded.append(d)
        table = table.loc[~missing_path]
    table["image"] = [
        str((base / p).resolve()) if not os.path.isabs(p) else str(Path(p))
        for p in table[path_col].astype(str)
    ]
    table["label"] = table[label_col].where(table[label_col].notna(), np.nan)
    table["label"] = table["label"].map(lambda v: v if not isinstance(v, str) else v.strip())
    if group_col is not None and group_col not in table.columns:
        if group_col == "patient_id":
            warnings.warn(
                f"CSV file '{csv}' has no 'patient_id' column; every image is treated as its own "
                "patient, so patient-aware splits cannot prevent leakage. Pass group_col=.",
                UserWarning,
                stacklevel=2,
            )
            group_col = None
        else:
            raise DataError(
                f"CSV file '{csv}' has no group column {group_col!r}. Its columns are: "
                f"{', '.join(map(str, df.columns))}."
            )
    table["patient_id"] = table[group_col] if group_col else np.nan
    for std, opt_col in (("source", source_col), ("view", view_col)):
        if opt_col is not None and opt_col in table.columns:
            table[std] = table[opt_col]
        elif opt_col is not None and opt_col != std:
            raise DataError(f"CSV file '{csv}' has no {std} column {opt_col!r}.")
    notes = outside_root_note(
        table["image"].astype(str).tolist(), base.resolve(), name, allow=allow_outside_root
    )
    if labels is not None:
        keep = table["label"].isna() | table["label"].astype(str).isin([str(x) for x in labels])
        d = table.loc[~keep].copy()
        d["reason"] = "label not selected"
        excluded.append(d)
        table = table.loc[keep]
    return finalize_dataset(
        name,
        str(csv),
        table,
        excluded,
        on_error=on_error,
        check=check_images,
        min_classes=min_classes,
        notes=notes,
    )

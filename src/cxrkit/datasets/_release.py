"""What the loaders of public datasets in their release layout share.

Each such loader reads the dataset's own files, builds a table of kept rows
(``image, patient_id, view, sex, age, source, finding`` and extras) and a
native label table (one column per finding of the source, values 1 / 0 / -1 /
NaN), then calls :func:`finish_release`, which maps the labels to the common
vocabulary, applies ``views=`` and ``target=``, and checks the files.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataError
from ._dataset import CXRDataset, _check_on_error
from ._files import CheckImages
from ._finalize import finalize_dataset
from ._vocabulary import (
    NEGATIVE,
    POSITIVE,
    UNCERTAIN,
    apply_uncertain,
    check_label_codes,
    map_to_vocabulary,
    resolve_finding,
)

__all__ = [
    "find_release_file",
    "release_paths",
    "finish_release",
    "exclude_rows",
    "joined_positives",
    "multi_hot",
    "NO_POSITIVE",
]

#: ``y`` of an image with no positive finding when no ``target`` is chosen.
NO_POSITIVE = "no_positive_finding"

_SUFFIXES = ("", ".gz", ".zip", ".bz2", ".xz")


def find_release_file(names: Sequence[str], *dirs: Path | None) -> Path | None:
    """Return the first of ``names`` (also compressed: ``.gz``, ``.zip``, ...) found in ``dirs``."""
    for d in dirs:
        if d is None:
            continue
        for name in names:
            for suffix in _SUFFIXES:
                cand = d / f"{name}{suffix}"
                if cand.is_file():
                    return cand
    return None


def release_paths(
    dataset: str,
    root: str | os.PathLike[str] | None,
    labels_file: str | os.PathLike[str] | None,
    names: Sequence[str],
) -> tuple[Path, Path]:
    """``(image base folder, label file)`` from a loader's ``root`` and ``labels_file``.

    ``labels_file`` wins; otherwise the first of ``names`` found in ``root``.
    Without ``root`` images are resolved against the label file's folder.
    """
    base = None if root is None else Path(root).expanduser().resolve()
    if base is not None and not base.is_dir():
        raise DataError(
            f"Folder '{base}' does not exist. Pass root= the folder of the {dataset} "
            "release (see docs/datasets/)."
        )
    if labels_file is not None:
        lf = Path(labels_file).expanduser().resolve()
        if not lf.is_file():
            raise DataError(f"Label file '{lf}' does not exist.")
    else:
        if base is None:
            raise DataError(
                f"The {dataset} dataset needs root= the release folder (holding "
                f"{names[0]}) or labels_file= its label file."
            )
        found = find_release_file(names, base)
        if found is None:
            raise DataError(
                f"None of {list(names)} (or .gz/.zip) is in '{base}'. Pass root= the "
                f"{dataset} release folder or labels_file= the label file."
            )
        lf = found
    return (base if base is not None else lf.parent), lf


def read_table(path: Path, dataset: str, **kwargs: object) -> pd.DataFrame:
    """``pandas.read_csv`` with a message naming the file when it cannot be parsed."""
    try:
        return pd.read_csv(path, **kwargs)
    except ValueError as exc:
        raise DataError(
            f"{dataset} file '{path}' could not be read as the release's CSV ({exc})."
        ) from None


def require_columns(df: pd.DataFrame, columns: Iterable[str], path: Path, dataset: str) -> None:
    """Return a DataError naming the columns a release file lacks."""
    absent = [c for c in columns if c not in df.columns]
    if absent:
        raise DataError(
            f"{dataset} file '{path}' has no column(s) {absent}; its columns are "
            f"{list(map(str, df.columns))}. Is it the release's own file?"
        )


def exclude_rows(
    table: pd.DataFrame, mask: np.ndarray | pd.Series, reason: str | pd.Series
) -> pd.DataFrame:
    """Return the rows of ``table`` under ``mask`` with a ``reason`` column."""
    mask = np.asarray(mask, dtype=bool)
    d = table.loc[mask].copy()
    d["reason"] = reason if isinstance(reason, str) else np.asarray(reason)[mask]
    return d


def code_errors(
    native: pd.DataFrame,
    dataset: str,
    on_error: str,
    allowed: Sequence[float] = (POSITIVE, NEGATIVE, UNCERTAIN),
) -> np.ndarray:
    """Boolean mask of rows with an unknown label code; raises under ``on_error='raise'``."""
    reasons = check_label_codes(native, list(native.columns), dataset, allowed)
    if len(reasons) and on_error == "raise":
        raise DataError(reasons.attrs["message"])
    bad = np.zeros(len(native), bool)
    bad[native.index.get_indexer(reasons.index)] = True
    return bad


def multi_hot(
    lists: Sequence[Sequence[str] | None],
    columns: Sequence[str] | None = None,
    index: pd.Index | None = None,
) -> pd.DataFrame:
    """Return a 1/0 table from per-row lists of label names (``None`` rows are all NaN).

    Parameters
    ----------
    lists : sequence of list of str or None
    columns : sequence of str, optional
        The columns, in order (default: every name seen, sorted). Names not
        in ``columns`` are ignored.
    index : Index, optional
    """
    names = [x for row in lists if row is not None for x in row]
    cols = list(columns) if columns is not None else sorted(set(names))
    lookup = {c: j for j, c in enumerate(cols)}
    rows = np.fromiter(
        (i for i, row in enumerate(lists) if row is not None for _ in row),
        dtype=np.int64,
        count=len(names),
    )
    col_idx = np.fromiter((lookup.get(x, -1) for x in names), dtype=np.int64, count=len(names))
    out = np.zeros((len(lists), len(cols)), dtype=np.float32)
    keep = col_idx >= 0
    out[rows[keep], col_idx[keep]] = 1.0
    out[np.array([row is None for row in lists], dtype=bool)] = np.nan
    return pd.DataFrame(out, columns=cols, index=index)


def row_codes(flags: np.ndarray) -> np.ndarray:
    """One integer per distinct row of a boolean matrix (rows equal <=> codes equal)."""
    n, k = flags.shape
    width = max(64, -(-k // 64) * 64)
    padded = np.zeros((n, width), dtype=bool)
    padded[:, :k] = flags
    words = np.packbits(padded, axis=1).view(np.uint64)
    if words.shape[1] == 1:
        return pd.factorize(words[:, 0])[0]
    return pd.MultiIndex.from_arrays([words[:, j] for j in range(words.shape[1])]).factorize()[0]


def joined_positives(labels: pd.DataFrame, empty: str = NO_POSITIVE) -> np.ndarray:
    """Per row, the names of the positive columns joined by ``|`` (``empty`` when none)."""
    pos = labels.to_numpy(dtype=np.float32) == POSITIVE
    codes = row_codes(pos)
    starts = pd.Series(np.arange(len(codes))).groupby(codes).first().to_numpy()
    cols = np.asarray(labels.columns, dtype=object)
    text = np.array(["|".join(cols[pos[i]]) or empty for i in starts], dtype=object)
    return text[codes] if len(codes) else np.array([], dtype=object)


def _binary_target(
    table: pd.DataFrame, labels: pd.DataFrame, finding: str, uncertain: str, dataset: str
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    raw = labels[finding].to_numpy(dtype=np.float32)
    if np.isnan(raw).all():
        raise DataError(
            f"The {finding!r} labels of dataset {dataset!r} are all missing ({len(raw)} rows "
            "blank), so it cannot be a target. Choose another target= or check the label file."
        )
    col = apply_uncertain(raw, uncertain)
    pos, neg = ("no_finding", "finding") if finding == "no_finding" else (finding, f"no_{finding}")
    table = table.copy()
    table["label"] = np.where(col == POSITIVE, pos, neg).astype(object)
    drop = np.isnan(col)
    reason = np.where(
        raw == UNCERTAIN,
        f"{finding}: uncertain (-1), uncertain={uncertain!r}",
        f"{finding}: not labelled",
    )
    excl = exclude_rows(table, drop, pd.Series(reason))
    return table.loc[~drop], labels.loc[~drop], excl


def finish_release(
    dataset: str,
    base: Path,
    table: pd.DataFrame,
    native: pd.DataFrame,
    mapping: Mapping[str, Iterable[str]],
    excluded: list[pd.DataFrame],
    *,
    target: str | None,
    uncertain: str,
    views: Sequence[str] | None,
    vocabulary: bool,
    on_error: str,
    check_images: CheckImages,
    min_classes: int | None,
    progress: bool | None = None,
) -> CXRDataset:
    """Map labels, filter views, set ``y`` from ``target`` and build the dataset.

    Parameters
    ----------
    dataset : str
    base : Path
        The image base folder (``root``).
    table : DataFrame
        Kept rows, at least ``image`` (absolute path) and ``patient_id``.
    native : DataFrame
        The source's label columns (1 / 0 / -1 / NaN), index aligned with ``table``.
    mapping : mapping
        Vocabulary name -> native columns.
    excluded : list of DataFrame
        Rows already left out, each with a ``reason``.
    target, uncertain, views, vocabulary, on_error, check_images, min_classes, progress
        As documented by the loaders.
    """
    _check_on_error(on_error)
    apply_uncertain(np.zeros(0), uncertain)  # validates the policy name
    if vocabulary:
        labels = map_to_vocabulary(native, mapping)
        available: dict[str, str] = {
            n: v for v, ns in mapping.items() if v in labels for n in ns if n in native.columns
        }
        available.update({v: v for v in labels.columns})
    else:
        labels = native.astype(np.float32)
        available = {c: c for c in labels.columns}
    empty = [c for c in labels.columns if labels[c].isna().all()]
    if empty and len(labels):
        warnings.warn(
            f"Dataset {dataset!r}: the label column(s) {empty} are blank in every row "
            "(kept as all-missing; label_summary() counts them).",
            UserWarning,
            stacklevel=3,
        )
    if views is not None:
        wanted = {str(v).strip().lower() for v in ([views] if isinstance(views, str) else views)}
        ok = table["view"].astype(str).str.strip().str.lower().isin(wanted).to_numpy()
        excluded.append(exclude_rows(table, ~ok, "view not selected"))
        table, labels = table.loc[ok], labels.loc[ok]
    if target is None:
        table = table.copy()
        table["label"] = joined_positives(labels)
    else:
        finding = resolve_finding(target, available, dataset)
        table, labels, excl = _binary_target(table, labels, finding, uncertain, dataset)
        excluded.append(excl)
    return finalize_dataset(
        dataset,
        str(base),
        table,
        excluded,
        on_error=on_error,
        check=check_images,
        labels=labels,
        progress=progress,
        min_classes=(1 if target is None else 2) if min_classes is None else min_classes,
    )

"""Table-level data checks every loader shares: repeated files, look-alike labels, paths outside the dataset's folder, and announcing what was left out.

Each problem is either an error (with how to fix it), or a warning on the
console *and* a note in the dataset's summary; nothing passes silently.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from ..errors import DataError

__all__ = [
    "DUPLICATE_ROW",
    "CONFLICTING_ROWS",
    "drop_duplicate_rows",
    "label_case_notes",
    "outside_root_note",
    "announce_skipped",
    "unread_files_note",
]

#: Exclusion reason of a row that repeats an earlier row exactly.
DUPLICATE_ROW = "duplicate row"
#: Exclusion reason of rows that list one file with different labels or patients.
CONFLICTING_ROWS = "same file, conflicting rows"

_SHOWN = 5


def _examples(items: Sequence[str]) -> str:
    shown = ", ".join(f"'{s}'" for s in items[:_SHOWN])
    return shown + (f" and {len(items) - _SHOWN} more" if len(items) > _SHOWN else "")


def _warn(note: str) -> None:
    warnings.warn(note, UserWarning, stacklevel=4)


def drop_duplicate_rows(
    table: pd.DataFrame, name: str, on_error: str
) -> tuple[pd.DataFrame, list[pd.DataFrame], list[str]]:
    """Keep one row per image file.

    Rows that repeat an earlier row (same file, label and patient) are left
    out with the reason :data:`DUPLICATE_ROW`. A file listed with different
    labels or patient ids is an error (``on_error="raise"``), or all its rows
    are left out with the reason :data:`CONFLICTING_ROWS`.

    Returns
    -------
    table, excluded parts, notes
    """
    key = table["image"].astype(str)
    repeated = key.duplicated(keep=False)
    if not repeated.any():
        return table, [], []
    rows = table.loc[repeated]
    label = rows["label"].astype(str)
    pid = rows["patient_id"].astype(object).where(rows["patient_id"].notna(), "").astype(str)
    n_variants = (
        pd.DataFrame({"k": key[repeated], "v": label + "\x00" + pid}).groupby("k")["v"].nunique()
    )
    conflicting = n_variants.index[n_variants > 1].tolist()
    notes, parts = [], []
    if conflicting:
        detail = []
        for path in conflicting[:_SHOWN]:
            sel = rows.loc[key[repeated] == path]
            pairs = sorted(
                {
                    f"{lab}/{p}"
                    for lab, p in zip(sel["label"].astype(str), sel["patient_id"].astype(str))
                }
            )
            detail.append(f"'{path}' ({', '.join(pairs)})")
        what = (
            f"{len(conflicting)} image file(s) of dataset {name!r} are listed more than once "
            f"with different labels or patient ids (label/patient): {'; '.join(detail)}"
            + (f" and {len(conflicting) - _SHOWN} more" if len(conflicting) > _SHOWN else "")
        )
        if on_error == "raise":
            raise DataError(
                f"{what}. Keep one row per image with the right label, or pass "
                "on_error='skip' to leave these images out."
            )
        bad = key.isin(conflicting)
        d = table.loc[bad].copy()
        d["reason"] = CONFLICTING_ROWS
        parts.append(d)
        notes.append(f"{what}; all {int(bad.sum())} of their rows were left out.")
        table, key = table.loc[~bad], key[~bad]
    dup = key.duplicated(keep="first")
    if dup.any():
        d = table.loc[dup].copy()
        d["reason"] = DUPLICATE_ROW
        parts.append(d)
        files = sorted(set(key[dup]))
        notes.append(
            f"{int(dup.sum())} row(s) of dataset {name!r} repeat an earlier row for the "
            f"same image file, label and patient; each image is used once "
            f"({_examples(files)})."
        )
        table = table.loc[~dup]
    for note in notes:
        _warn(note)
    return table, parts, notes


def label_case_notes(labels: pd.Series, name: str) -> list[str]:
    """Warn about labels that differ only by case or whitespace (``A`` and ``a``)."""
    distinct = pd.unique(labels.astype(str))
    groups: dict[str, list[str]] = {}
    for lab in distinct:
        groups.setdefault(" ".join(lab.split()).casefold(), []).append(lab)
    notes = []
    for variants in groups.values():
        if len(variants) > 1:
            counts = labels.astype(str).value_counts()
            shown = ", ".join(f"'{v}' ({int(counts[v])} images)" for v in sorted(variants))
            notes.append(
                f"Dataset {name!r} has labels that differ only by case or whitespace: "
                f"{shown}. They are different classes; if they are meant to be one, "
                "write them the same way in the source."
            )
    for note in notes:
        _warn(note)
    return notes


def outside_root_note(paths: Sequence[str], root: Path, name: str, *, allow: bool) -> list[str]:
    """Say how many image paths lie outside ``root`` (or refuse them with ``allow=False``)."""
    outside = []
    for p in paths:
        try:
            Path(p).relative_to(root)
        except ValueError:
            outside.append(p)
    if not outside:
        return []
    what = (
        f"{len(outside)} of {len(paths)} image paths of dataset {name!r} lie outside its "
        f"folder '{root}' (e.g. through '../' or absolute paths): {_examples(outside)}"
    )
    if not allow:
        raise DataError(
            f"{what}. Move the images under '{root}', or pass "
            "allow_outside_root=True to read them where they are."
        )
    note = f"{what}."
    _warn(note)
    return [note]


def unread_files_note(skipped: list[dict[str, str]], root: Path, name: str) -> list[str]:
    """Warn about files that were not read because their extension is not an image's."""
    visible = [s for s in skipped if not Path(s["image"]).name.startswith(".")]
    if not visible:
        return []
    suffixes = pd.Series([Path(s["image"]).suffix.lower() or "(no extension)" for s in visible])
    counts = ", ".join(f"{k} {v}" for k, v in suffixes.value_counts().sort_index().items())
    note = (
        f"{len(visible)} file(s) in {name} '{root}' were not read because their extension is "
        f"not an image extension ({counts}): {_examples([s['image'] for s in visible])}. "
        "If they are images, convert them to PNG (or give them their real extension); they are "
        "listed in the dataset's excluded table."
    )
    _warn(note)
    return [note]


def announce_skipped(msgs: list[str], n: int, name: str, what: str) -> list[str]:
    """Warn that ``on_error="skip"`` left images out (so the console sees it, not only the report)."""
    if not msgs:
        return []
    shown = "; ".join(msgs[:3]) + (f"; and {len(msgs) - 3} more" if len(msgs) > 3 else "")
    note = (
        f"Dataset {name!r}: {len(msgs)} of {n} images {what} and were left out "
        f"(on_error='skip'): {shown}. They are listed in the dataset summary."
    )
    _warn(note)
    return [note]

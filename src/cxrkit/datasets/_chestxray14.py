"""The ``chestxray14`` dataset: NIH ChestX-ray14 with optional adjudicated labels."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigurationError, DataError
from ._dataset import CXRDataset, finalize_dataset

__all__ = ["load_chestxray14", "ADJUDICATED_TARGETS", "ADJUDICATED_FILES"]

#: target -> (column of the adjudicated files, label for YES, label for NO)
ADJUDICATED_TARGETS: dict[str, tuple[str, str, str]] = {
    "airspace_opacity": ("Airspace opacity", "opacity", "no_opacity"),
    "pneumothorax": ("Pneumothorax", "pneumothorax", "no_pneumothorax"),
    "nodule_or_mass": ("Nodule or mass", "nodule_or_mass", "no_nodule_or_mass"),
    "fracture": ("Fracture", "fracture", "no_fracture"),
}
ADJUDICATED_FILES = {"validation": "validation_labels.csv", "test": "test_labels.csv"}
_TARGETS = ("finding_labels", "no_finding") + tuple(ADJUDICATED_TARGETS)


def _find_file(name: str, *dirs: Path | None) -> Path | None:
    for d in dirs:
        if d is None:
            continue
        for cand in (d / name, d / "four_findings_expert_labels" / name):
            if cand.is_file():
                return cand
    return None


def _index_images(base: Path) -> dict[str, str]:
    """File name -> path for every PNG under ``base`` (images_001/images/... too)."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for fn in filenames:
            if fn.lower().endswith(".png"):
                out.setdefault(fn, os.path.join(dirpath, fn))
    return out


def load_chestxray14(root: str | os.PathLike[str] | None = None, *,
                     target: str = "finding_labels", split: str = "all",
                     labels_dir: str | os.PathLike[str] | None = None,
                     on_error: str = "raise", check_images: bool = True,
                     min_classes: int | None = None) -> CXRDataset:
    """NIH ChestX-ray14 (Wang et al. 2017), optionally with Google's adjudicated labels.

    ``root`` holds ``Data_Entry_2017.csv`` (or ``Data_Entry_2017_v2020.csv``) and the
    PNGs, in any sub-folders (the published ``images_001/images/...`` layout or one
    ``images/`` folder).

    Parameters
    ----------
    root : path
    target : str, default="finding_labels"
        * ``"finding_labels"``: the NIH text-mined ``Finding Labels`` string as is
          (``"No Finding"``, ``"Cardiomegaly|Effusion"``, ...), every image.
        * ``"no_finding"``: ``no_finding`` for images labelled ``No Finding``,
          ``finding`` otherwise; ``select(["no_finding"])`` gives controls.
        * ``"airspace_opacity"``, ``"pneumothorax"``, ``"nodule_or_mass"``,
          ``"fracture"``: the radiologist-adjudicated label (Majkowska et al. 2019)
          from ``validation_labels.csv`` / ``test_labels.csv``, only for the 4,374
          images it covers. ``YES`` -> e.g. ``opacity``, ``NO`` -> ``no_opacity``
          (the second paper's airspace-opacity proxy); ``HEDGE`` and blank are
          excluded with a reason. ``Data_Entry_2017.csv`` is optional then (the
          label files repeat its columns).
    split : {"all", "validation", "test"}, default="all"
        Which adjudicated file(s) to use (adjudicated targets only).
    labels_dir : path, optional
        Folder with the adjudicated files (default: ``root`` or
        ``root/four_findings_expert_labels``).
    on_error : {"raise", "skip"}, default="raise"
    check_images : bool, default=True
    min_classes : int, optional
        Default 2.

    Notes
    -----
    Patient ids are ``Patient ID``; views ``View Position`` (PA/AP); ``sex`` and
    ``age`` from ``Patient Gender`` / ``Patient Age``; ``finding`` is the NIH
    ``Finding Labels``. A listed image with no file is an unreadable image
    (``on_error``). An image listed twice in the label files is kept once
    (reason ``"duplicate row"``).
    """
    if target not in _TARGETS:
        raise ConfigurationError(
            f"The 'target' parameter of chestxray14 must be one of {list(_TARGETS)}. "
            f"Got {target!r} instead.")
    if split not in ("all", "validation", "test"):
        raise ConfigurationError(
            f"The 'split' parameter of chestxray14 must be 'all', 'validation' or 'test'. "
            f"Got {split!r} instead.")
    if root is None:
        raise DataError("The chestxray14 dataset needs root= the folder with Data_Entry_2017.csv "
                        "and the image folders.")
    base = Path(root).expanduser().resolve()
    if not base.is_dir():
        raise DataError(f"Folder '{base}' does not exist.")
    ldir = Path(labels_dir).expanduser().resolve() if labels_dir else None
    entry = _find_file("Data_Entry_2017.csv", base) or _find_file("Data_Entry_2017_v2020.csv", base)
    excluded: list[pd.DataFrame] = []

    if target in ADJUDICATED_TARGETS:
        col, yes, no = ADJUDICATED_TARGETS[target]
        parts = []
        for s, fn in ADJUDICATED_FILES.items():
            if split not in ("all", s):
                continue
            f = _find_file(fn, ldir, base)
            if f is None:
                raise DataError(
                    f"Adjudicated label file {fn!r} not found in {ldir or base} (or its "
                    "four_findings_expert_labels/ folder). Download it from Google's "
                    "'ChestX-ray14 expert labels' (see docs/datasets/chestxray14.md) and pass "
                    "labels_dir=.")
            part = pd.read_csv(f, dtype={"Patient ID": str})
            part["split"] = s
            parts.append(part)
        df = pd.concat(parts, ignore_index=True)
        if col not in df.columns:
            raise DataError(f"The adjudicated label files have no column {col!r}.")
        values = df[col].astype(object).where(df[col].notna(), None)
        values = values.map(lambda v: v.strip().upper() if isinstance(v, str) else v)
        df["label"] = values.map({"YES": yes, "NO": no})
        reason = pd.Series(None, index=df.index, dtype=object)
        reason[values == "HEDGE"] = f"{col} HEDGE (uncertain)"
        reason[values.isna()] = f"{col} not adjudicated (blank)"
        other = values.notna() & ~values.isin(["YES", "NO", "HEDGE"])
        reason[other] = f"{col} value not YES/NO/HEDGE"
        dup = df["Image Index"].duplicated()
        reason[dup & reason.isna()] = "duplicate row"
    else:
        if entry is None:
            raise DataError(f"'{base / 'Data_Entry_2017.csv'}' does not exist; chestxray14 needs the "
                            f"NIH metadata file for target={target!r}.")
        df = pd.read_csv(entry, dtype={"Patient ID": str})
        if target == "finding_labels":
            df["label"] = df["Finding Labels"]
        else:
            df["label"] = np.where(df["Finding Labels"].astype(str).str.strip() == "No Finding",
                                   "no_finding", "finding")
        reason = pd.Series(None, index=df.index, dtype=object)
        reason[df["Image Index"].duplicated()] = "duplicate row"

    files = _index_images(base)
    table = pd.DataFrame({
        "image": [files.get(str(n), str(base / "images" / str(n))) for n in df["Image Index"]],
        "label": df["label"],
        "patient_id": df["Patient ID"].map(lambda v: str(int(float(v))) if pd.notna(v) else np.nan),
        "view": df.get("View Position", np.nan),
        "source": "nih-chestxray14",
        "sex": df.get("Patient Gender", np.nan),
        "age": df.get("Patient Age", np.nan),
        "finding": df.get("Finding Labels", np.nan),
        "image_index": df["Image Index"],
        "follow_up": df.get("Follow-up #", np.nan),
    })
    if "split" in df.columns:
        table["split"] = df["split"]
    bad = reason.notna()
    excl = table.loc[bad].copy()
    excl["reason"] = reason[bad].to_numpy()
    excluded.append(excl)
    return finalize_dataset("chestxray14", str(base), table.loc[~bad], excluded,
                            on_error=on_error, check=check_images,
                            min_classes=2 if min_classes is None else min_classes)

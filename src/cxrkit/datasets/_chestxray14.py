"""The ``chestxray14`` dataset: NIH ChestX-ray14 with optional adjudicated labels."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigurationError, DataError
from ._dataset import CXRDataset
from ._files import CheckImages
from ._finalize import finalize_dataset
from ._release import exclude_rows, find_release_file, multi_hot
from ._vocabulary import apply_uncertain, resolve_finding

__all__ = [
    "load_chestxray14",
    "ADJUDICATED_TARGETS",
    "ADJUDICATED_FILES",
    "NIH_FINDINGS",
    "OFFICIAL_SPLIT_FILES",
]

#: The 14 NIH findings and ``No Finding`` -> the common vocabulary.
NIH_FINDINGS: dict[str, str] = {
    "Atelectasis": "atelectasis",
    "Cardiomegaly": "cardiomegaly",
    "Effusion": "effusion",
    "Infiltration": "infiltration",
    "Mass": "mass",
    "Nodule": "nodule",
    "Pneumonia": "pneumonia",
    "Pneumothorax": "pneumothorax",
    "Consolidation": "consolidation",
    "Edema": "edema",
    "Emphysema": "emphysema",
    "Fibrosis": "fibrosis",
    "Pleural_Thickening": "pleural_thickening",
    "Hernia": "hernia",
    "No Finding": "no_finding",
}
#: The adjudicated columns -> the common vocabulary (their ``labels`` matrix).
ADJUDICATED_FINDINGS = {
    "Airspace opacity": "lung_opacity",
    "Pneumothorax": "pneumothorax",
    "Nodule or mass": "nodule_or_mass",
    "Fracture": "fracture",
}
#: The official patient-wise split of the release.
OFFICIAL_SPLIT_FILES = {"train_val": "train_val_list.txt", "test": "test_list.txt"}

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
        found = find_release_file([name], d, d / "four_findings_expert_labels")
        if found is not None:
            return found
    return None


def _official_split(base: Path, names: pd.Series, split: str) -> pd.Series:
    """``train_val`` / ``test`` per image from the release's list files (NaN if unlisted)."""
    out = pd.Series(np.nan, index=names.index, dtype=object)
    found = False
    for s, fn in OFFICIAL_SPLIT_FILES.items():
        f = _find_file(fn, base)
        if f is None:
            continue
        found = True
        listed = set(pd.read_csv(f, header=None, names=["n"], dtype=str)["n"].str.strip())
        out[names.isin(listed).to_numpy()] = s
    if not found and split in OFFICIAL_SPLIT_FILES:
        raise DataError(
            f"split={split!r} needs the official list files "
            f"{list(OFFICIAL_SPLIT_FILES.values())} in '{base}' (they come with "
            "Data_Entry_2017.csv); neither is there."
        )
    return out


def _nih_labels(finding_labels: pd.Series) -> pd.DataFrame:
    """Return the 15 NIH labels (14 findings and No Finding) as 1/0 columns in vocabulary names."""
    lists = [
        None if not isinstance(v, str) else [x.strip() for x in v.split("|")]
        for v in finding_labels.tolist()
    ]
    native = multi_hot(lists, list(NIH_FINDINGS), index=finding_labels.index)
    return native.rename(columns=NIH_FINDINGS)


def _adjudicated_labels(df: pd.DataFrame) -> pd.DataFrame:
    codes = {"YES": 1.0, "NO": 0.0, "HEDGE": -1.0}
    out = {
        v: df[c].map(lambda x: codes.get(str(x).strip().upper(), np.nan)).astype(np.float32)
        for c, v in ADJUDICATED_FINDINGS.items()
        if c in df.columns
    }
    return pd.DataFrame(out, index=df.index)


def _resolve_target(target: str) -> str:
    if target in _TARGETS:
        return target
    try:
        return resolve_finding(target, NIH_FINDINGS, "chestxray14")
    except ConfigurationError:
        raise ConfigurationError(
            f"The 'target' parameter of chestxray14 must be one of {list(_TARGETS)} or one of "
            f"the 14 NIH findings ({', '.join(v for v in NIH_FINDINGS.values())}). Got "
            f"{target!r} instead." + _did_you_mean(target)
        ) from None


def _did_you_mean(target: str) -> str:
    close = difflib.get_close_matches(
        str(target).lower(), list(_TARGETS) + list(NIH_FINDINGS.values()), n=2
    )
    return f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def _index_images(base: Path) -> dict[str, str]:
    """File name -> path for every PNG under ``base`` (images_001/images/... too)."""
    out: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for fn in filenames:
            if fn.lower().endswith(".png"):
                out.setdefault(fn, os.path.join(dirpath, fn))
    return out


def load_chestxray14(
    root: str | os.PathLike[str] | None = None,
    *,
    target: str = "finding_labels",
    split: str = "all",
    labels_dir: str | os.PathLike[str] | None = None,
    on_error: str = "raise",
    check_images: CheckImages = True,
    uncertain: str = "ignore",
    progress: bool | None = None,
    min_classes: int | None = None,
) -> CXRDataset:
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
        * one of the 14 NIH findings (``"cardiomegaly"``, ``"Pleural_Thickening"``,
          ...): ``<finding>`` / ``no_<finding>`` from the NIH labels, every image.
        * ``"airspace_opacity"``, ``"pneumothorax"``, ``"nodule_or_mass"``,
          ``"fracture"``: the radiologist-adjudicated label (Majkowska et al. 2019)
          from ``validation_labels.csv`` / ``test_labels.csv``, only for the 4,374
          images it covers. ``YES`` -> e.g. ``opacity``, ``NO`` -> ``no_opacity``
          (the second paper's airspace-opacity proxy); ``HEDGE`` and blank are
          excluded with a reason. ``Data_Entry_2017.csv`` is optional then (the
          label files repeat its columns).
    split : {"all", "train_val", "test", "validation"}, default="all"
        NIH targets: the official patient-wise split, from ``train_val_list.txt``
        / ``test_list.txt`` (``"all"`` reads them when present and records each
        image's ``split``). Adjudicated targets: which file(s) to use
        (``"validation"``, ``"test"``).
    labels_dir : path, optional
        Folder with the adjudicated files (default: ``root`` or
        ``root/four_findings_expert_labels``).
    on_error : {"raise", "skip"}, default="raise"
    check_images : bool or {"decode", "exists", "none"}, default=True
        ``True`` decodes every image; ``"exists"`` only checks the files exist
        (streamed, with a progress bar).
    uncertain : {"ignore", "ones", "zeros"}, default="ignore"
        What an adjudicated ``HEDGE`` (``-1`` in ``labels``) means when it is
        the target: excluded (default), positive or negative.
    progress : bool, optional
        Progress bar of the ``"exists"`` check (default: on a terminal).
    min_classes : int, optional
        Default 2.

    Notes
    -----
    Patient ids are ``Patient ID``; views ``View Position`` (PA/AP); ``sex`` and
    ``age`` from ``Patient Gender`` / ``Patient Age``; ``finding`` is the NIH
    ``Finding Labels``. A listed image with no file is an unreadable image
    (``on_error``). An image listed twice in the label files is kept once
    (reason ``"duplicate row"``). ``labels`` holds the 14 findings and
    ``no_finding`` (1/0) for NIH targets, and the four adjudicated findings
    (``lung_opacity, pneumothorax, nodule_or_mass, fracture``; ``HEDGE`` = -1)
    for adjudicated ones.
    """
    target = _resolve_target(target)
    adjudicated = target in ADJUDICATED_TARGETS
    base = _release_folder(root, target, split, uncertain, adjudicated)
    ldir = Path(labels_dir).expanduser().resolve() if labels_dir else None
    excluded: list[pd.DataFrame] = []
    if adjudicated:
        df, reason = _adjudicated_frame(target, split, uncertain, ldir, base)
        labels = _adjudicated_labels(df)
    else:
        df, reason, labels = _nih_frame(target, split, base)
    table = _image_table(base, df)
    bad = reason.notna().to_numpy()
    excluded.append(exclude_rows(table, bad, reason))
    return finalize_dataset(
        "chestxray14",
        str(base),
        table.loc[~bad],
        excluded,
        on_error=on_error,
        check=check_images,
        progress=progress,
        labels=labels.loc[~bad],
        min_classes=2 if min_classes is None else min_classes,
    )


def _release_folder(
    root: str | os.PathLike[str] | None, target: str, split: str, uncertain: str, adjudicated: bool
) -> Path:
    """Validate ``split`` and ``uncertain`` and return the resolved release folder."""
    splits = ("all", "validation", "test") if adjudicated else ("all", *OFFICIAL_SPLIT_FILES)
    if split not in splits:
        raise ConfigurationError(
            f"The 'split' parameter of chestxray14 must be one of {list(splits)} for "
            f"target={target!r}. Got {split!r} instead."
        )
    apply_uncertain(np.zeros(0), uncertain)
    if root is None:
        raise DataError(
            "The chestxray14 dataset needs root= the folder with Data_Entry_2017.csv "
            "and the image folders."
        )
    base = Path(root).expanduser().resolve()
    if not base.is_dir():
        raise DataError(f"Folder '{base}' does not exist.")
    return base


def _read_adjudicated_files(split: str, ldir: Path | None, base: Path) -> pd.DataFrame:
    """Return the adjudicated label file(s) of ``split``, with their ``split`` column."""
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
                "labels_dir=."
            )
        part = pd.read_csv(f, dtype={"Patient ID": str})
        part["split"] = s
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _adjudicated_frame(
    target: str, split: str, uncertain: str, ldir: Path | None, base: Path
) -> tuple[pd.DataFrame, pd.Series]:
    """Return the adjudicated rows with their ``label`` and each row's exclusion reason."""
    col, yes, no = ADJUDICATED_TARGETS[target]
    df = _read_adjudicated_files(split, ldir, base)
    if col not in df.columns:
        raise DataError(f"The adjudicated label files have no column {col!r}.")
    values = df[col].astype(object).where(df[col].notna(), None)
    values = values.map(lambda v: v.strip().upper() if isinstance(v, str) else v)
    hedge = {"ignore": None, "ones": yes, "zeros": no}[uncertain]
    df["label"] = values.map({"YES": yes, "NO": no, "HEDGE": hedge})
    reason = pd.Series(None, index=df.index, dtype=object)
    reason[(values == "HEDGE") & df["label"].isna()] = f"{col} HEDGE (uncertain)"
    reason[values.isna()] = f"{col} not adjudicated (blank)"
    other = values.notna() & ~values.isin(["YES", "NO", "HEDGE"])
    reason[other] = f"{col} value not YES/NO/HEDGE"
    dup = df["Image Index"].duplicated()
    reason[dup & reason.isna()] = "duplicate row"
    return df, reason


def _nih_frame(target: str, split: str, base: Path) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """Return the NIH metadata rows with their ``label``, exclusion reasons and 1/0 labels."""
    entry = _find_file("Data_Entry_2017.csv", base) or _find_file("Data_Entry_2017_v2020.csv", base)
    if entry is None:
        raise DataError(
            f"'{base / 'Data_Entry_2017.csv'}' does not exist; chestxray14 needs the "
            f"NIH metadata file for target={target!r}."
        )
    df = pd.read_csv(entry, dtype={"Patient ID": str})
    labels = _nih_labels(df["Finding Labels"])
    if target == "finding_labels":
        df["label"] = df["Finding Labels"]
    elif target == "no_finding":
        df["label"] = np.where(labels["no_finding"] == 1, "no_finding", "finding")
    else:
        df["label"] = np.where(labels[target] == 1, target, f"no_{target}")
    reason = pd.Series(None, index=df.index, dtype=object)
    reason[df["Image Index"].duplicated()] = "duplicate row"
    df["split"] = _official_split(base, df["Image Index"].astype(str), split)
    if split != "all":
        reason[(df["split"] != split) & reason.isna()] = f"not in the official {split} list"
    return df, reason, labels


def _image_table(base: Path, df: pd.DataFrame) -> pd.DataFrame:
    """Return the image table (paths, label, patient, view, demographics, split)."""
    files = _index_images(base)
    table = pd.DataFrame(
        {
            "image": [files.get(str(n), str(base / "images" / str(n))) for n in df["Image Index"]],
            "label": df["label"],
            "patient_id": df["Patient ID"].map(
                lambda v: str(int(float(v))) if pd.notna(v) else np.nan
            ),
            "view": df.get("View Position", np.nan),
            "source": "nih-chestxray14",
            "sex": df.get("Patient Gender", np.nan),
            "age": df.get("Patient Age", np.nan),
            "finding": df.get("Finding Labels", np.nan),
            "image_index": df["Image Index"],
            "follow_up": df.get("Follow-up #", np.nan),
        }
    )
    if "split" in df.columns:
        table["split"] = df["split"]
    return table

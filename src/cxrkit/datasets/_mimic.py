"""The ``mimic-cxr`` dataset: MIMIC-CXR-JPG (Johnson et al. 2019) in its release layout."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd

from ..errors import ConfigurationError, DataError
from ._chexpert import CHEXPERT_OBSERVATIONS, observation_mapping
from ._dataset import CXRDataset
from ._files import CheckImages
from ._release import (
    code_errors,
    exclude_rows,
    find_release_file,
    finish_release,
    joined_positives,
    read_table,
    require_columns,
)

__all__ = ["load_mimic_cxr", "MIMIC_FILES"]

#: The release's tables (each also as ``.csv.gz``).
MIMIC_FILES = {
    "metadata": "mimic-cxr-2.0.0-metadata.csv",
    "chexpert": "mimic-cxr-2.0.0-chexpert.csv",
    "negbio": "mimic-cxr-2.0.0-negbio.csv",
    "split": "mimic-cxr-2.0.0-split.csv",
}
_SPLITS = ("all", "train", "validate", "test")
_IDS = {"subject_id": "Int64", "study_id": "Int64"}


def _table(base: Path, key: str, required: bool = True) -> pd.DataFrame | None:
    f = find_release_file([MIMIC_FILES[key]], base)
    if f is None:
        if required:
            raise DataError(
                f"mimic-cxr: '{base / MIMIC_FILES[key]}' (or .csv.gz) does not exist. "
                "Pass root= the MIMIC-CXR-JPG release folder (holding the "
                "mimic-cxr-2.0.0-*.csv.gz tables and files/)."
            )
        return None
    df = read_table(f, "mimic-cxr", dtype={"dicom_id": str, **_IDS})
    need = {
        "metadata": ["dicom_id", "subject_id", "study_id", "ViewPosition"],
        "split": ["dicom_id", "split"],
    }.get(key, ["subject_id", "study_id"])
    require_columns(df, need, f, "mimic-cxr")
    return df


def _demographics(
    patients_file: str | os.PathLike[str] | None, subject: pd.Series
) -> tuple[pd.Series, pd.Series]:
    """``(sex, age)`` per row from MIMIC-IV's ``patients.csv`` (NaN without it)."""
    if patients_file is None:
        return pd.Series(np.nan, index=subject.index), pd.Series(np.nan, index=subject.index)
    p = read_table(Path(patients_file), "mimic-cxr", dtype={"subject_id": "Int64"})
    require_columns(p, ["subject_id", "gender", "anchor_age"], Path(patients_file), "mimic-cxr")
    p = p.drop_duplicates("subject_id").set_index("subject_id")
    return subject.map(p["gender"]), subject.map(p["anchor_age"])


def load_mimic_cxr(
    root: str | os.PathLike[str] | None = None,
    *,
    labeler: str = "chexpert",
    split: str = "all",
    target: str | None = None,
    uncertain: str = "ignore",
    views: Sequence[str] | None = None,
    vocabulary: bool = True,
    patients_file: str | os.PathLike[str] | None = None,
    on_error: str = "raise",
    check_images: CheckImages = "exists",
    progress: bool | None = None,
    min_classes: int | None = None,
) -> CXRDataset:
    """MIMIC-CXR-JPG (Johnson et al. 2019): 377,110 JPEGs of 65,379 patients, Beth Israel.

    ``root`` is the release folder: ``mimic-cxr-2.0.0-metadata.csv.gz`` (one row
    per image: ``dicom_id, subject_id, study_id, ViewPosition``, ...),
    ``-chexpert.csv.gz`` and ``-negbio.csv.gz`` (one row per study, the 14
    observations as 1 / 0 / -1 / blank), ``-split.csv.gz`` (``train`` /
    ``validate`` / ``test``) and ``files/pXX/pSUBJECT/sSTUDY/DICOM_ID.jpg``.

    Parameters
    ----------
    root : path
    labeler : {"chexpert", "negbio"}, default="chexpert"
        Which labeller's study labels to use.
    split : {"all", "train", "validate", "test"}, default="all"
        The official split (kept in ``metadata`` as ``split``).
    target : str, optional
        One observation: ``y`` is ``<finding>`` / ``no_<finding>``; default the
        ``|``-joined positive findings.
    uncertain : {"ignore", "ones", "zeros"}, default="ignore"
        What ``-1`` means for ``target`` (``labels`` keeps ``-1``).
    views : list of str, optional
        ``ViewPosition`` values to keep (``PA``, ``AP``, ``LATERAL``, ``LL``, ...).
    vocabulary : bool, default=True
    patients_file : path, optional
        MIMIC-IV ``hosp/patients.csv.gz`` (``subject_id, gender, anchor_age``)
        for ``sex`` and ``age``; MIMIC-CXR-JPG itself has neither.
    on_error : {"raise", "skip"}, default="raise"
    check_images : {"exists", "decode", "none"} or bool, default="exists"
    progress : bool, optional
    min_classes : int, optional

    Notes
    -----
    Labels are per study, so every image of a study has the study's labels;
    an image whose study has no row in the label file has NaN labels.
    ``patient_id`` is ``subject_id``; ``study_id`` and ``dicom_id`` are kept.
    """
    base = _release_folder(root, labeler, split)
    df, obs = _merged_labels(base, labeler, split, on_error)
    table = _image_table(base, df, patients_file)
    native = df[obs].apply(pd.to_numeric, errors="coerce").astype(np.float32)
    table["finding"] = joined_positives(native, empty="")
    bad = df["_bad"].fillna(False).to_numpy(dtype=bool)
    excluded = [exclude_rows(table, bad, "unknown label code")]
    table, native = table.loc[~bad], native.loc[~bad]
    if split != "all":
        drop = (table["split"] != split).to_numpy()
        excluded.append(exclude_rows(table, drop, f"not in the official {split} split"))
        table, native = table.loc[~drop], native.loc[~drop]
    return finish_release(
        "mimic-cxr",
        base,
        table,
        native,
        observation_mapping(),
        excluded,
        target=target,
        uncertain=uncertain,
        views=views,
        vocabulary=vocabulary,
        on_error=on_error,
        check_images=check_images,
        min_classes=min_classes,
        progress=progress,
    )


def _release_folder(root: str | os.PathLike[str] | None, labeler: str, split: str) -> Path:
    """Validate ``labeler`` and ``split`` and return the resolved release folder."""
    if labeler not in ("chexpert", "negbio"):
        raise ConfigurationError(
            f"The 'labeler' parameter of mimic-cxr must be 'chexpert' or "
            f"'negbio'. Got {labeler!r} instead."
        )
    if split not in _SPLITS:
        raise ConfigurationError(
            f"The 'split' parameter of mimic-cxr must be one of {_SPLITS}. Got {split!r} instead."
        )
    if root is None:
        raise DataError("The mimic-cxr dataset needs root= the MIMIC-CXR-JPG release folder.")
    base = Path(root).expanduser().resolve()
    if not base.is_dir():
        raise DataError(f"Folder '{base}' does not exist.")
    return base


def _merged_labels(
    base: Path, labeler: str, split: str, on_error: str
) -> tuple[pd.DataFrame, list[str]]:
    """Return the per-image metadata merged with study labels and split, and the observations."""
    meta = cast(pd.DataFrame, _table(base, "metadata"))
    lab = cast(pd.DataFrame, _table(base, labeler))
    splits = _table(base, "split", required=split != "all")
    obs = [c for c in CHEXPERT_OBSERVATIONS if c in lab.columns]
    if not obs:
        raise DataError(
            f"mimic-cxr: the {labeler} file has none of the 14 observations "
            f"({', '.join(CHEXPERT_OBSERVATIONS)})."
        )
    lab = lab.assign(_bad=code_errors(lab[obs], "mimic-cxr", on_error))
    lab = lab.drop_duplicates(["subject_id", "study_id"])
    df = meta.merge(
        lab[["subject_id", "study_id", "_bad", *obs]],
        on=["subject_id", "study_id"],
        how="left",
        validate="many_to_one",
    )
    if splits is not None:
        df = df.merge(
            splits[["dicom_id", "split"]].drop_duplicates("dicom_id"), on="dicom_id", how="left"
        )
    else:
        df["split"] = np.nan
    return df, obs


def _image_table(
    base: Path, df: pd.DataFrame, patients_file: str | os.PathLike[str] | None
) -> pd.DataFrame:
    """Return the image table (paths, patient, view, demographics, ids, split)."""
    subj = df["subject_id"].astype(str)
    sex, age = _demographics(patients_file, df["subject_id"])
    prefix = str(base / "files") + os.sep
    return pd.DataFrame(
        {
            "image": [
                f"{prefix}p{s[:2]}{os.sep}p{s}{os.sep}s{st}{os.sep}{d}.jpg"
                for s, st, d in zip(subj, df["study_id"].astype(str), df["dicom_id"].astype(str))
            ],
            "patient_id": subj,
            "view": df["ViewPosition"],
            "source": "mimic-cxr",
            "sex": sex.to_numpy(),
            "age": age.to_numpy(),
            "study_id": df["study_id"].astype(str),
            "dicom_id": df["dicom_id"],
            "split": df["split"],
        }
    )

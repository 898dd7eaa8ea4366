"""The ``chexpert`` dataset: CheXpert (Irvin et al. 2019) in its release layout."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigurationError
from ._dataset import CXRDataset
from ._files import CheckImages
from ._release import (
    code_errors,
    exclude_rows,
    find_release_file,
    finish_release,
    joined_positives,
    read_table,
    release_paths,
    require_columns,
)

__all__ = ["load_chexpert", "CHEXPERT_OBSERVATIONS", "CHEXPERT_SEX"]

#: The 14 CheXpert labeller observations -> the common vocabulary (MIMIC-CXR uses them too).
CHEXPERT_OBSERVATIONS: dict[str, str] = {
    "No Finding": "no_finding",
    "Enlarged Cardiomediastinum": "enlarged_cardiomediastinum",
    "Cardiomegaly": "cardiomegaly",
    "Lung Opacity": "lung_opacity",
    "Lung Lesion": "lung_lesion",
    "Edema": "edema",
    "Consolidation": "consolidation",
    "Pneumonia": "pneumonia",
    "Atelectasis": "atelectasis",
    "Pneumothorax": "pneumothorax",
    "Pleural Effusion": "effusion",
    "Pleural Other": "pleural_other",
    "Fracture": "fracture",
    "Support Devices": "support_devices",
}
#: CheXpert's ``Sex`` values -> the ``sex`` column of every cxrkit dataset.
CHEXPERT_SEX = {"Male": "M", "Female": "F"}

_SPLITS = {"train": ("train.csv",), "valid": ("valid.csv",)}


def observation_mapping() -> dict[str, list[str]]:
    """Vocabulary name -> the CheXpert column it comes from."""
    return {v: [k] for k, v in CHEXPERT_OBSERVATIONS.items()}


def _parse_paths(paths: list[str], base: Path) -> tuple[np.ndarray, list[str], list[str]]:
    """Absolute image paths, patient ids and study ids from the ``Path`` column."""
    prefix = str(base) + os.sep
    image, patient, study = [], [], []
    for p in paths:
        head, _, rest = p.partition("/")
        rel = rest if head.startswith("CheXpert-v1.0") else p
        parts = rel.split("/", 3)  # train/patient00001/study1/view1_frontal.jpg
        image.append(prefix + rel)
        patient.append(parts[1] if len(parts) > 2 else "")
        study.append(f"{parts[1]}/{parts[2]}" if len(parts) > 2 else "")
    return np.asarray(image, dtype=object), patient, study


def _read_split(path: os.PathLike[str], split: str) -> pd.DataFrame:
    df = read_table(path, "chexpert", dtype={"Path": str})  # type: ignore[arg-type]
    require_columns(df, ["Path", "Sex", "Age", "Frontal/Lateral", "AP/PA"], path, "chexpert")  # type: ignore[arg-type]
    df["split"] = split
    return df


def load_chexpert(
    root: str | os.PathLike[str] | None = None,
    *,
    split: str = "all",
    labels_file: str | os.PathLike[str] | None = None,
    target: str | None = None,
    uncertain: str = "ignore",
    views: Sequence[str] | None = None,
    vocabulary: bool = True,
    on_error: str = "raise",
    check_images: CheckImages = "exists",
    progress: bool | None = None,
    min_classes: int | None = None,
) -> CXRDataset:
    """CheXpert (Irvin et al. 2019): 14 observations with uncertain labels, Stanford.

    ``root`` is the release folder (``CheXpert-v1.0`` or ``CheXpert-v1.0-small``)
    holding ``train.csv``, ``valid.csv`` and ``train/patientNNNNN/studyN/viewN_*.jpg``.

    Parameters
    ----------
    root : path
    split : {"all", "train", "valid"}, default="all"
        Which release file(s) to read; each row's ``split`` is kept in metadata.
    labels_file : path, optional
        A label CSV to read instead of ``root/<split>.csv`` (e.g. a compressed
        copy); its ``Path`` entries are still resolved against ``root``.
    target : str, optional
        One observation (``"pneumonia"``, ``"Pleural Effusion"``, ...): ``y`` is
        ``<finding>`` / ``no_<finding>``, rows without a label (blank, or
        uncertain under ``uncertain="ignore"``) are excluded with a reason.
        Default: ``y`` is the ``|``-joined positive findings of each image.
    uncertain : {"ignore", "ones", "zeros"}, default="ignore"
        What ``-1`` means for ``target`` (``labels`` always keeps ``-1``).
    views : list of str, optional
        Keep only these views (``"AP"``, ``"PA"``, ``"Lateral"``, ``"LL"``, ``"RL"``).
    vocabulary : bool, default=True
        Name the ``labels`` columns by the common vocabulary (``False``: by
        CheXpert's own observation names).
    on_error : {"raise", "skip"}, default="raise"
        Unknown label codes and missing image files: one error listing them, or
        leave those rows out (counted in ``excluded``).
    check_images : {"exists", "decode", "none"} or bool, default="exists"
    progress : bool, optional
        Progress bar of the file check (default: on a terminal).
    min_classes : int, optional

    Notes
    -----
    ``patient_id`` is ``patientNNNNN`` from the path, ``study_id``
    ``patientNNNNN/studyN``; ``view`` is ``AP/PA`` for frontal images and
    ``Lateral`` otherwise; ``sex`` ``M``/``F`` (``Unknown`` -> NaN); ``age`` in years.
    """
    if split not in ("all", *_SPLITS):
        raise ConfigurationError(
            f"The 'split' parameter of chexpert must be 'all', 'train' or "
            f"'valid'. Got {split!r} instead."
        )
    if labels_file is not None:
        base, lf = release_paths("chexpert", root, labels_file, ["train.csv"])
        df = _read_split(lf, "train" if "valid" not in lf.name else "valid")
    else:
        wanted = list(_SPLITS) if split == "all" else [split]
        base, _ = release_paths("chexpert", root, None, _SPLITS[wanted[0]])
        parts = []
        for s in wanted:
            f = find_release_file(_SPLITS[s], base)
            if f is None:
                raise ConfigurationError(
                    f"chexpert: '{base / _SPLITS[s][0]}' does not exist; "
                    f"pass split= one of the files present, or labels_file=."
                )
            parts.append(_read_split(f, s))
        df = pd.concat(parts, ignore_index=True)
    image, patient, study = _parse_paths(df["Path"].astype(object).tolist(), base)
    frontal = df["Frontal/Lateral"].eq("Frontal")
    table = pd.DataFrame(
        {
            "image": image,
            "patient_id": patient,
            "view": df["AP/PA"].where(frontal | df["AP/PA"].notna(), "Lateral"),
            "source": "chexpert",
            "sex": df["Sex"].map(CHEXPERT_SEX),
            "age": pd.to_numeric(df["Age"], errors="coerce"),
            "study_id": study,
            "projection": df["Frontal/Lateral"],
            "split": df["split"],
            "path": df["Path"],
        }
    )
    obs = [c for c in CHEXPERT_OBSERVATIONS if c in df.columns]
    require_columns(df, obs or list(CHEXPERT_OBSERVATIONS), base, "chexpert")
    bad = code_errors(df[obs], "chexpert", on_error)
    native = df[obs].apply(pd.to_numeric, errors="coerce").astype(np.float32)
    excluded = [exclude_rows(table, bad, "unknown label code")]
    table, native = table.loc[~bad], native.loc[~bad]
    table["finding"] = joined_positives(native, empty="")
    return finish_release(
        "chexpert",
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

"""The ``padchest`` dataset: PadChest (Bustos et al. 2020) in its release layout."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigurationError
from ._dataset import CXRDataset
from ._files import CheckImages
from ._release import (
    exclude_rows,
    finish_release,
    multi_hot,
    read_table,
    release_paths,
    require_columns,
)

__all__ = ["load_padchest", "PADCHEST_FILE", "PADCHEST_MAPPING"]

PADCHEST_FILE = "PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv"

#: Vocabulary name -> the PadChest labels it gathers (any of them positive -> positive).
PADCHEST_MAPPING: dict[str, list[str]] = {
    "no_finding": ["normal"],
    "atelectasis": [
        "atelectasis",
        "laminar atelectasis",
        "lobar atelectasis",
        "segmental atelectasis",
        "atelectasis basal",
        "total atelectasis",
        "round atelectasis",
    ],
    "cardiomegaly": ["cardiomegaly"],
    "consolidation": ["consolidation"],
    "edema": ["pulmonary edema"],
    "effusion": ["pleural effusion", "loculated pleural effusion", "loculated fissural effusion"],
    "emphysema": ["emphysema"],
    "fibrosis": ["pulmonary fibrosis"],
    "hernia": ["hiatal hernia"],
    "infiltration": ["infiltrates"],
    "mass": ["mass", "pulmonary mass"],
    "nodule": ["nodule", "multiple nodules"],
    "pleural_thickening": [
        "pleural thickening",
        "apical pleural thickening",
        "calcified pleural thickening",
    ],
    "pneumonia": ["pneumonia", "atypical pneumonia"],
    "pneumothorax": ["pneumothorax", "hydropneumothorax"],
    "fracture": [
        "fracture",
        "rib fracture",
        "callus rib fracture",
        "clavicle fracture",
        "humeral fracture",
        "vertebral fracture",
    ],
    "support_devices": [
        "pacemaker",
        "NSG tube",
        "endotracheal tube",
        "tracheostomy tube",
        "chest drain tube",
        "central venous catheter",
        "central venous catheter via jugular vein",
        "central venous catheter via subclavian vein",
        "central venous catheter via umbilical vein",
        "reservoir central venous catheter",
        "catheter",
        "dual chamber device",
        "single chamber device",
        "electrical device",
        "ventriculoperitoneal drain tube",
        "gastrostomy tube",
        "nephrostomy tube",
        "double J stent",
    ],
    "aortic_enlargement": ["aortic button enlargement"],
    "calcification": [
        "calcified granuloma",
        "calcified densities",
        "calcified adenopathy",
        "calcified mediastinal adenopathy",
        "calcified pleural plaques",
        "heart valve calcified",
        "calcified fibroadenoma",
    ],
    "ild": [
        "interstitial pattern",
        "reticular interstitial pattern",
        "reticulonodular interstitial pattern",
    ],
    "copd": ["COPD signs"],
    "tuberculosis": ["tuberculosis", "tuberculosis sequelae"],
    "lung_cavity": ["cavitation"],
    "mediastinal_shift": ["mediastinal shift"],
    "enlarged_pa": ["pulmonary artery enlargement"],
}

_QUOTED = re.compile(r"'([^']*)'")
_COLUMNS = [
    "ImageID",
    "ImageDir",
    "StudyID",
    "PatientID",
    "PatientBirth",
    "PatientSex_DICOM",
    "StudyDate_DICOM",
    "Projection",
    "Pediatric",
    "MethodLabel",
    "Labels",
]
_LAYOUTS = ("auto", "folders", "flat")


def parse_labels(values: Sequence[object]) -> list[list[str] | None]:
    """PadChest's ``Labels`` strings (``"['normal']"``) as lists; ``None`` when unlabelled.

    A blank cell, or a list whose only entry is ``''``, is unlabelled.
    """
    out: list[list[str] | None] = []
    for v in values:
        if not isinstance(v, str):
            out.append(None)
            continue
        names = [x.strip() for x in _QUOTED.findall(v)]
        names = [x for x in names if x]
        out.append(names or None)
    return out


def _image_paths(base: Path, df: pd.DataFrame, layout: str) -> np.ndarray:
    if layout not in _LAYOUTS:
        raise ConfigurationError(
            f"The 'layout' parameter of padchest must be one of {_LAYOUTS}. Got {layout!r} instead."
        )
    dirs = pd.to_numeric(df["ImageDir"], errors="coerce").astype("Int64").astype(str).tolist()
    if layout == "auto":
        layout = "folders" if any((base / d).is_dir() for d in sorted(set(dirs))[:60]) else "flat"
    prefix = str(base) + os.sep
    names = df["ImageID"].astype(object).tolist()
    if layout == "flat":
        return np.asarray([prefix + n for n in names], dtype=object)
    return np.asarray([f"{prefix}{d}{os.sep}{n}" for d, n in zip(dirs, names)], dtype=object)


def load_padchest(
    root: str | os.PathLike[str] | None = None,
    *,
    labels_file: str | os.PathLike[str] | None = None,
    target: str | None = None,
    views: Sequence[str] | None = None,
    vocabulary: bool = True,
    layout: str = "auto",
    uncertain: str = "ignore",
    on_error: str = "raise",
    check_images: CheckImages = "exists",
    progress: bool | None = None,
    min_classes: int | None = None,
) -> CXRDataset:
    """PadChest (Bustos et al. 2020): 160,861 images, 193 report-derived labels, Alicante.

    ``root`` holds ``PADCHEST_chest_x_ray_images_labels_160K_01.02.19.csv`` (or
    ``.csv.gz``) and the 16-bit PNGs in the numbered folders of the release
    (``root/<ImageDir>/<ImageID>``; ``layout="flat"`` for one folder).

    Parameters
    ----------
    root : path
    labels_file : path, optional
        The label CSV, if not in ``root``.
    target : str, optional
        A vocabulary finding, or with ``vocabulary=False`` a PadChest label
        (``"COPD signs"``): ``y`` is ``<finding>`` / ``no_<finding>``. Default:
        the ``|``-joined positive findings.
    views : list of str, optional
        ``Projection`` values to keep: ``PA``, ``L``, ``AP``, ``AP_horizontal``,
        ``COSTAL``, ``EXCLUDE``, ``UNK``.
    vocabulary : bool, default=True
        ``labels`` in vocabulary names (see ``PADCHEST_MAPPING``; several
        PadChest labels can make one finding), or all 193 PadChest labels.
    layout : {"auto", "folders", "flat"}, default="auto"
    uncertain : {"ignore", "ones", "zeros"}, default="ignore"
        PadChest has no uncertain labels; accepted for a uniform interface.
    on_error : {"raise", "skip"}, default="raise"
    check_images : {"exists", "decode", "none"} or bool, default="exists"
    progress : bool, optional
    min_classes : int, optional

    Notes
    -----
    Label values are 1 (named in the report's label list) or 0; an image whose
    ``Labels`` is blank or ``['']`` is unlabelled (NaN in every column).
    Images labelled ``exclude`` by the PadChest annotators are left out
    (reason ``"PadChest label 'exclude'"``). ``patient_id`` is ``PatientID``,
    ``study_id`` ``StudyID``, ``view`` ``Projection``, ``sex``
    ``PatientSex_DICOM`` (``M``/``F``/``O``), ``age`` the study year minus
    ``PatientBirth``; ``pediatric`` and ``label_method`` (``Physician`` or
    ``RNN_model``) are kept too.
    """
    base, lf = release_paths("padchest", root, labels_file, [PADCHEST_FILE])
    header = read_table(lf, "padchest", nrows=0).columns
    df = read_table(
        lf,
        "padchest",
        usecols=[c for c in header if c in _COLUMNS],
        dtype={"ImageID": str, "PatientID": str, "StudyID": str},
    )
    require_columns(df, ["ImageID", "PatientID", "Projection", "Labels"], lf, "padchest")
    lists = parse_labels(df["Labels"].tolist())
    study_year = pd.to_numeric(df.get("StudyDate_DICOM"), errors="coerce") // 10000
    table = pd.DataFrame(
        {
            "image": _image_paths(base, df, layout),
            "patient_id": df["PatientID"],
            "view": df["Projection"],
            "source": "padchest",
            "sex": df.get("PatientSex_DICOM"),
            "age": study_year - pd.to_numeric(df.get("PatientBirth"), errors="coerce"),
            "finding": ["|".join(x) if x else np.nan for x in lists],
            "image_id": df["ImageID"],
            "study_id": df.get("StudyID"),
            "pediatric": df.get("Pediatric").eq("PED") if "Pediatric" in df else np.nan,
            "label_method": df.get("MethodLabel"),
        }
    )
    native_cols = sorted({x for row in lists if row for x in row} - {"exclude"}, key=str.lower)
    native = multi_hot(lists, native_cols, index=df.index)
    drop = np.array([x is not None and "exclude" in x for x in lists], dtype=bool)
    excluded = [exclude_rows(table, drop, "PadChest label 'exclude'")]
    return finish_release(
        "padchest",
        base,
        table.loc[~drop],
        native.loc[~drop],
        PADCHEST_MAPPING,
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

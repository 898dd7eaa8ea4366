"""The ``vindr-cxr`` dataset: VinDr-CXR (Nguyen et al. 2022), one label row per reader."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import ConfigurationError
from ._dataset import CXRDataset
from ._files import CheckImages
from ._release import (
    code_errors,
    exclude_rows,
    finish_release,
    read_table,
    release_paths,
    require_columns,
)

__all__ = ["load_vindr_cxr", "VINDR_MAPPING", "READER_RULES"]

#: Vocabulary name -> VinDr-CXR label names (PhysioNet release and the Kaggle challenge).
VINDR_MAPPING: dict[str, list[str]] = {
    "no_finding": ["No finding"],
    "aortic_enlargement": ["Aortic enlargement"],
    "atelectasis": ["Atelectasis"],
    "calcification": ["Calcification"],
    "cardiomegaly": ["Cardiomegaly"],
    "consolidation": ["Consolidation"],
    "edema": ["Edema"],
    "emphysema": ["Emphysema"],
    "enlarged_pa": ["Enlarged PA"],
    "fracture": ["Clavicle fracture", "Rib fracture"],
    "ild": ["ILD"],
    "infiltration": ["Infiltration"],
    "lung_opacity": ["Lung Opacity"],
    "lung_cavity": ["Lung cavity"],
    "lung_cyst": ["Lung cyst"],
    "mediastinal_shift": ["Mediastinal shift"],
    "nodule_or_mass": ["Nodule/Mass"],
    "effusion": ["Pleural effusion"],
    "pleural_thickening": ["Pleural thickening"],
    "pneumothorax": ["Pneumothorax"],
    "fibrosis": ["Pulmonary fibrosis"],
    "other_lesion": ["Other lesion"],
    "copd": ["COPD"],
    "lung_tumor": ["Lung tumor"],
    "pneumonia": ["Pneumonia"],
    "tuberculosis": ["Tuberculosis"],
    "other_disease": ["Other disease", "Other diseases"],
}
#: ``readers=`` rules: how the readers' votes become one label per image.
READER_RULES = {
    "majority": "positive when more than half of the image's readers marked it",
    "any": "positive when at least one reader marked it",
}
_FILES = {
    "train": ("annotations/image_labels_train.csv", "image_labels_train.csv", "train.csv"),
    "test": ("annotations/image_labels_test.csv", "image_labels_test.csv"),
}


def _reader_votes(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """Return a 1/0 table indexed by (image_id[, rad_id]), one column per label, for either layout."""
    if "class_name" in df.columns:  # Kaggle: one row per reader and finding (with a box)
        require_columns(df, ["image_id", "rad_id", "class_name"], path, "vindr-cxr")
        votes = pd.crosstab([df["image_id"], df["rad_id"]], df["class_name"]).clip(upper=1)
        return votes.astype(np.float32)
    require_columns(df, ["image_id"], path, "vindr-cxr")
    keys = ["image_id", "rad_id"] if "rad_id" in df.columns else ["image_id"]
    return df.set_index(keys)


def _aggregate(votes: pd.DataFrame, readers: str) -> tuple[pd.DataFrame, pd.Series]:
    if readers not in READER_RULES:
        raise ConfigurationError(
            f"The 'readers' parameter of vindr-cxr must be one of "
            f"{list(READER_RULES)}. Got {readers!r} instead."
        )
    v = votes.apply(pd.to_numeric, errors="coerce")
    by = v.groupby(level="image_id", sort=False)
    positive, n = by.sum(min_count=1), by.size()
    if readers == "any":
        out = (positive > 0).astype(np.float32)
    else:
        out = (positive.mul(2).gt(n, axis=0)).astype(np.float32)
    return out.where(positive.notna()), n


def load_vindr_cxr(
    root: str | os.PathLike[str] | None = None,
    *,
    split: str = "train",
    labels_file: str | os.PathLike[str] | None = None,
    readers: str = "majority",
    target: str | None = None,
    vocabulary: bool = True,
    uncertain: str = "ignore",
    on_error: str = "raise",
    check_images: CheckImages = "exists",
    progress: bool | None = None,
    min_classes: int | None = None,
) -> CXRDataset:
    """VinDr-CXR (Nguyen et al. 2022): 18,000 DICOMs from Vietnam, each read by several radiologists.

    ``root`` is the PhysioNet release folder (``annotations/image_labels_train.csv``
    with one row per image and reader: ``image_id, rad_id`` and one 0/1 column per
    label; ``image_labels_test.csv``, the consensus of the test set; DICOMs in
    ``train/`` and ``test/``) or the Kaggle VinBigData folder (``train.csv``: one row
    per reader and finding, ``image_id, class_name, class_id, rad_id`` and a box).

    Parameters
    ----------
    root : path
    split : {"train", "test"}, default="train"
    labels_file : path, optional
        A label file of either layout, if not in ``root``.
    readers : {"majority", "any"}, default="majority"
        How the readers of an image are combined (:data:`READER_RULES`);
        ``n_readers`` is kept in ``metadata``.
    target : str, optional
        A finding: ``y`` is ``<finding>`` / ``no_<finding>``; default the
        ``|``-joined positive findings.
    vocabulary : bool, default=True
        ``labels`` in vocabulary names, or VinDr-CXR's own.
    uncertain : {"ignore", "ones", "zeros"}, default="ignore"
        VinDr-CXR has no uncertain labels; accepted for a uniform interface.
    on_error : {"raise", "skip"}, default="raise"
    check_images : {"exists", "decode", "none"} or bool, default="exists"
    progress : bool, optional
    min_classes : int, optional

    Notes
    -----
    VinDr-CXR releases no patient ids (the images were de-identified one by
    one), so ``patient_id`` is the ``image_id``: patient-grouped splits are
    image splits here. Sex and age are only in the DICOM headers (NaN).
    """
    if split not in _FILES:
        raise ConfigurationError(
            f"The 'split' parameter of vindr-cxr must be 'train' or 'test'. Got {split!r} instead."
        )
    if readers not in READER_RULES:
        raise ConfigurationError(
            f"The 'readers' parameter of vindr-cxr must be one of "
            f"{list(READER_RULES)}. Got {readers!r} instead."
        )
    base, lf = release_paths("vindr-cxr", root, labels_file, _FILES[split])
    df = read_table(lf, "vindr-cxr", dtype={"image_id": str, "rad_id": str})
    votes = _reader_votes(df, lf)
    label_cols = [
        c for c in votes.columns if c not in ("class_id",) and not str(c).startswith(("x_", "y_"))
    ]
    votes = votes[label_cols]
    bad_rows = code_errors(votes.reset_index(drop=True), "vindr-cxr", on_error, (1.0, 0.0))
    bad_images = set(votes.index.get_level_values("image_id")[bad_rows])
    native, n_readers = _aggregate(votes, readers)
    image_ids = native.index.astype(str)
    folder = "test" if split == "test" else "train"
    table = pd.DataFrame(
        {
            "image": [str(base / folder / f"{i}.dicom") for i in image_ids],
            "patient_id": image_ids,
            "source": "vindr-cxr",
            "image_id": image_ids,
            "n_readers": n_readers.reindex(native.index).to_numpy(),
        }
    )
    native = native.reset_index(drop=True)
    drop = table["image_id"].isin(bad_images).to_numpy()
    excluded = [exclude_rows(table, drop, "unknown label code")]
    return finish_release(
        "vindr-cxr",
        base,
        table.loc[~drop],
        native.loc[~drop],
        VINDR_MAPPING,
        excluded,
        target=target,
        uncertain=uncertain,
        views=None,
        vocabulary=vocabulary,
        on_error=on_error,
        check_images=check_images,
        min_classes=min_classes,
        progress=progress,
    )

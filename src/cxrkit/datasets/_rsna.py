"""The ``rsna-pneumonia`` dataset: the RSNA Pneumonia Detection Challenge (2018) release."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from ._dataset import CXRDataset
from ._files import CheckImages, check_mode
from ._release import (
    code_errors,
    exclude_rows,
    find_release_file,
    finish_release,
    read_table,
    release_paths,
    require_columns,
)

__all__ = ["load_rsna_pneumonia", "RSNA_CLASSES", "RSNA_HEADER_FILES"]

#: ``stage_2_detailed_class_info.csv`` classes -> (lung_opacity, no_finding).
RSNA_CLASSES = {
    "Lung Opacity": (1.0, 0.0),
    "No Lung Opacity / Not Normal": (0.0, 0.0),
    "Normal": (0.0, 1.0),
}
#: Where the DICOM header table is looked for (torchxrayvision's name second).
RSNA_HEADER_FILES = (
    "stage_2_train_images_dicom_headers.csv",
    "kaggle_stage_2_train_images_dicom_headers.csv",
)
_MAPPING = {"pneumonia": ["Target"], "lung_opacity": ["lung_opacity"], "no_finding": ["no_finding"]}


def _headers_from_files(paths: Sequence[str], progress: bool | None) -> pd.DataFrame:
    """``PatientSex``, ``PatientAge``, ``ViewPosition`` read from each DICOM header (no pixels)."""
    import pydicom

    rows = []
    for p in tqdm(
        paths,
        desc="rsna-pneumonia: reading DICOM headers",
        unit="file",
        disable=None if progress is None else not progress,
        mininterval=0.5,
    ):
        try:
            d = pydicom.dcmread(
                p,
                stop_before_pixels=True,
                specific_tags=["PatientSex", "PatientAge", "ViewPosition"],
            )
            rows.append(
                (
                    getattr(d, "PatientSex", None),
                    getattr(d, "PatientAge", None),
                    getattr(d, "ViewPosition", None),
                )
            )
        except (OSError, pydicom.errors.InvalidDicomError):
            rows.append((None, None, None))  # the file check reports it
    return pd.DataFrame(rows, columns=["PatientSex", "PatientAge", "ViewPosition"])


def load_rsna_pneumonia(
    root: str | os.PathLike[str] | None = None,
    *,
    labels_file: str | os.PathLike[str] | None = None,
    class_info_file: str | os.PathLike[str] | None = None,
    headers_file: str | os.PathLike[str] | None = None,
    target: str | None = None,
    views: Sequence[str] | None = None,
    uncertain: str = "ignore",
    on_error: str = "raise",
    check_images: CheckImages = "exists",
    progress: bool | None = None,
    min_classes: int | None = None,
) -> CXRDataset:
    """RSNA Pneumonia Detection Challenge (2018): 26,684 DICOMs with pneumonia boxes.

    ``root`` holds ``stage_2_train_labels.csv`` (one row per box; ``Target`` 1/0),
    optionally ``stage_2_detailed_class_info.csv``, and ``stage_2_train_images/
    <patientId>.dcm``.

    Parameters
    ----------
    root : path
    labels_file, class_info_file : path, optional
        The two label files, if not in ``root``.
    headers_file : path, optional
        A table of DICOM headers (``PatientID``, ``PatientSex``, ``PatientAge``,
        ``ViewPosition``), e.g. torchxrayvision's
        ``kaggle_stage_2_train_images_dicom_headers.csv.gz``; looked for in
        ``root``. Without one, sex, age and view are read from the DICOM
        headers themselves (streamed, no pixels) unless ``check_images="none"``.
    target : {"pneumonia", "lung_opacity", "no_finding"}, optional
        ``y`` = ``<finding>`` / ``no_<finding>``; default the ``|``-joined
        positive findings. ``lung_opacity`` and ``no_finding`` need the class file.
    views : list of str, optional
        ``"PA"``, ``"AP"``.
    uncertain : {"ignore", "ones", "zeros"}, default="ignore"
        RSNA has no uncertain labels; accepted for a uniform interface.
    on_error : {"raise", "skip"}, default="raise"
    check_images : {"exists", "decode", "none"} or bool, default="exists"
    progress : bool, optional
    min_classes : int, optional

    Notes
    -----
    One image per patient (``patient_id`` = ``patientId``). ``labels``:
    ``pneumonia`` = ``Target`` (an image is positive when any of its rows is);
    with the class file also ``lung_opacity`` and ``no_finding`` (``Normal``).
    ``n_boxes`` counts the image's boxes; ``rsna_class`` is its class.
    """
    base, lf = release_paths("rsna-pneumonia", root, labels_file, ["stage_2_train_labels.csv"])
    boxes = read_table(lf, "rsna-pneumonia", dtype={"patientId": str})
    require_columns(boxes, ["patientId", "Target"], lf, "rsna-pneumonia")
    bad = code_errors(boxes[["Target"]], "rsna-pneumonia", on_error, allowed=(1.0, 0.0))
    excluded = [exclude_rows(boxes.assign(image=boxes["patientId"]), bad, "unknown label code")]
    boxes = boxes.loc[~bad]
    per = boxes.groupby("patientId", sort=False).agg(
        Target=("Target", "max"), n_boxes=("x", "count") if "x" in boxes else ("Target", "sum")
    )
    per = per.reset_index()
    cf = (
        Path(class_info_file)
        if class_info_file
        else find_release_file(["stage_2_detailed_class_info.csv"], base)
    )
    native = pd.DataFrame({"Target": per["Target"].astype(np.float32)})
    rsna_class = pd.Series(np.nan, index=per.index, dtype=object)
    if cf is not None:
        info = read_table(cf, "rsna-pneumonia", dtype={"patientId": str})
        require_columns(info, ["patientId", "class"], cf, "rsna-pneumonia")
        rsna_class = per["patientId"].map(
            info.drop_duplicates("patientId").set_index("patientId")["class"]
        )
        codes = rsna_class.map(RSNA_CLASSES)
        native["lung_opacity"] = [c[0] if isinstance(c, tuple) else np.nan for c in codes]
        native["no_finding"] = [c[1] if isinstance(c, tuple) else np.nan for c in codes]
    table = pd.DataFrame(
        {
            "image": [str(base / "stage_2_train_images" / f"{p}.dcm") for p in per["patientId"]],
            "patient_id": per["patientId"],
            "source": "rsna-pneumonia",
            "n_boxes": per["n_boxes"].astype(int),
            "rsna_class": rsna_class,
        }
    )
    hf = Path(headers_file) if headers_file else find_release_file(RSNA_HEADER_FILES, base)
    if hf is not None:
        h = read_table(hf, "rsna-pneumonia", dtype={"PatientID": str})
        require_columns(
            h, ["PatientID", "PatientSex", "PatientAge", "ViewPosition"], hf, "rsna-pneumonia"
        )
        h = h.drop_duplicates("PatientID").set_index("PatientID").reindex(per["patientId"])
        h = h.reset_index(drop=True)
    elif check_mode(check_images) != "none":
        h = _headers_from_files(table["image"].tolist(), progress)
    else:
        h = pd.DataFrame(index=per.index, columns=["PatientSex", "PatientAge", "ViewPosition"])
    table["view"] = h["ViewPosition"].to_numpy()
    table["sex"] = h["PatientSex"].to_numpy()
    table["age"] = pd.to_numeric(h["PatientAge"], errors="coerce").to_numpy()
    return finish_release(
        "rsna-pneumonia",
        base,
        table,
        native,
        _MAPPING,
        excluded,
        target=target,
        uncertain=uncertain,
        views=views,
        vocabulary=True,
        on_error=on_error,
        check_images=check_images,
        min_classes=min_classes,
        progress=progress,
    )

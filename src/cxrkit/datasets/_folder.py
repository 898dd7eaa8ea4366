"""The ``image-folder`` dataset: one subfolder per class."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError
from ._dataset import CXRDataset
from ._finalize import finalize_dataset
from ._quality import unread_files_note

__all__ = ["load_image_folder", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".dcm", ".dicom")


def load_image_folder(
    root: str | os.PathLike[str] | None = None,
    *,
    patient_pattern: str | None = None,
    on_error: str = "raise",
    check_images: bool = True,
    min_classes: int = 2,
) -> CXRDataset:
    """Images in ``root/<class>/...``, classes in alphabetical order.

    This is the layout the first paper's scripts (Keras ``flow_from_directory``)
    used. Files are found recursively under each class folder.

    Parameters
    ----------
    root : path
    patient_pattern : str, optional
        A regular expression searched in each file name (without extension);
        its first group (or whole match) is the patient id. Without it every
        image is its own patient (a warning says so).
    on_error : {"raise", "skip"}, default="raise"
    check_images : bool, default=True
    min_classes : int, default=2

    Notes
    -----
    Files whose extension is not an image extension (:data:`IMAGE_SUFFIXES`)
    are not read; they are listed in ``excluded`` with the reason
    ``"not an image file"``, and a warning (and a note in the summary) counts
    them by extension. Hidden files (``.DS_Store``) are listed without a warning.
    """
    if root is None:
        raise DataError(
            "The image-folder dataset needs root= a folder with one subfolder per class."
        )
    base = Path(root).expanduser().resolve()
    if not base.is_dir():
        raise DataError(
            f"Folder '{base}' does not exist; image-folder needs a folder with one "
            "subfolder per class."
        )
    classes = sorted(d.name for d in base.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DataError(f"Folder '{base}' has no class subfolders; expected root/<class>/<image>.")
    rx = re.compile(patient_pattern) if patient_pattern else None
    rows, skipped = [], []
    for cls in classes:
        for dirpath, dirnames, filenames in os.walk(base / cls):
            dirnames.sort()
            for fn in sorted(filenames):
                path = str(Path(dirpath) / fn)
                if fn.startswith(".") or not fn.lower().endswith(IMAGE_SUFFIXES):
                    skipped.append({"image": path, "label": cls, "reason": "not an image file"})
                    continue
                pid: Any = np.nan
                if rx is not None:
                    m = rx.search(Path(fn).stem)
                    pid = (m.group(1) if m.groups() else m.group(0)) if m else np.nan
                rows.append(
                    {"image": path, "label": cls, "patient_id": pid, "source": "image-folder"}
                )
    table = pd.DataFrame(rows, columns=["image", "label", "patient_id", "source"])
    if rx is None:
        warnings.warn(
            f"image-folder '{base}' has no patient ids; every image is treated as its own patient, "
            "so patient-aware splits cannot prevent leakage. Pass patient_pattern=, a regular "
            "expression that extracts the patient id from the file name.",
            UserWarning,
            stacklevel=2,
        )
    elif len(table) and table["patient_id"].isna().any():
        n = int(table["patient_id"].isna().sum())
        warnings.warn(
            f"patient_pattern {patient_pattern!r} matched no patient id in {n} file "
            "names; those images are treated as their own patients.",
            UserWarning,
            stacklevel=2,
        )
    notes = unread_files_note(skipped, base, "image-folder")
    return finalize_dataset(
        "image-folder",
        str(base),
        table,
        pd.DataFrame(skipped) if skipped else None,
        on_error=on_error,
        check=check_images,
        min_classes=min_classes,
        notes=notes,
    )

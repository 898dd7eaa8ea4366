"""Datasets, registered as plugins (``cxrkit_register_datasets``).

>>> ds = load_dataset("synthetic", n_patients=4, size=32)
>>> len(ds), sorted(set(ds.y))
(8, ['covid', 'pneumonia'])
"""

from __future__ import annotations

import os
from typing import Any

from ..plugins import get_registry
from ._chestxray14 import ADJUDICATED_TARGETS, load_chestxray14
from ._covid import COVID_FINDINGS, COVID_SECONDARY_FINDINGS, FRONTAL_VIEWS, load_covid_chestxray
from ._csv import load_csv_dataset
from ._dataset import METADATA_COLUMNS, UNREADABLE, CXRDataset, check_images, finalize_dataset
from ._folder import IMAGE_SUFFIXES, load_image_folder
from ._synthetic import DEFAULT_DIFFICULTY, load_synthetic, make_synthetic_cxr

__all__ = [
    "ADJUDICATED_TARGETS",
    "COVID_FINDINGS",
    "COVID_SECONDARY_FINDINGS",
    "CXRDataset",
    "DEFAULT_DIFFICULTY",
    "FRONTAL_VIEWS",
    "IMAGE_SUFFIXES",
    "METADATA_COLUMNS",
    "UNREADABLE",
    "check_images",
    "finalize_dataset",
    "list_datasets",
    "load_chestxray14",
    "load_covid_chestxray",
    "load_csv_dataset",
    "load_dataset",
    "load_image_folder",
    "load_synthetic",
    "make_synthetic_cxr",
]


def list_datasets(pattern: str = "*") -> list[str]:
    """Names of the registered datasets matching the shell-style ``pattern``."""
    return get_registry("dataset").names(pattern)


def load_dataset(name: str, root: str | os.PathLike[str] | None = None,
                 **options: Any) -> CXRDataset:
    """Load the dataset registered as ``name``.

    Parameters
    ----------
    name : str
        A name from :func:`list_datasets` (``covid-chestxray``, ``chestxray14``,
        ``image-folder``, ``csv``, ``synthetic`` or a plugin's).
    root : path, optional
        Where the user's copy of the data is (a folder, or the CSV file for ``csv``).
    **options
        Passed to the loader; every built-in takes ``on_error="raise"|"skip"``.
    """
    loader = get_registry("dataset").get(name).factory
    return loader(root=root, **options)

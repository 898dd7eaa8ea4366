"""Datasets, registered as plugins (``cxrkit_register_datasets``).

>>> ds = load_dataset("synthetic", n_patients=4, size=32)
>>> len(ds), sorted(set(ds.y))
(8, ['covid', 'pneumonia'])
"""

from __future__ import annotations

import difflib
import inspect
import os
from typing import TYPE_CHECKING, Any

import lazy_loader

from ..errors import ConfigurationError
from ..plugins import get_registry

if TYPE_CHECKING:  # pragma: no cover
    from ._chestxray14 import ADJUDICATED_TARGETS, NIH_FINDINGS, load_chestxray14
    from ._chexpert import CHEXPERT_OBSERVATIONS, load_chexpert
    from ._covid import (
        COVID_FINDINGS,
        COVID_SECONDARY_FINDINGS,
        FRONTAL_VIEWS,
        load_covid_chestxray,
    )
    from ._csv import load_csv_dataset
    from ._dataset import METADATA_COLUMNS, UNREADABLE, CXRDataset
    from ._files import MISSING_FILE, missing_files
    from ._finalize import check_images, finalize_dataset
    from ._folder import IMAGE_SUFFIXES, load_image_folder
    from ._mimic import load_mimic_cxr
    from ._padchest import PADCHEST_MAPPING, load_padchest
    from ._rsna import load_rsna_pneumonia
    from ._synthetic import DEFAULT_DIFFICULTY, load_synthetic, make_synthetic_cxr
    from ._vindr import READER_RULES, VINDR_MAPPING, load_vindr_cxr
    from ._vocabulary import FINDINGS, UNCERTAIN_POLICIES

# Submodules are imported on first attribute access (PEP 562), so that importing
# the package (or one light submodule, like its plugin) does not import torch.
__getattr__, _, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "_chestxray14": ["ADJUDICATED_TARGETS", "NIH_FINDINGS", "load_chestxray14"],
        "_chexpert": ["CHEXPERT_OBSERVATIONS", "load_chexpert"],
        "_covid": [
            "COVID_FINDINGS",
            "COVID_SECONDARY_FINDINGS",
            "FRONTAL_VIEWS",
            "load_covid_chestxray",
        ],
        "_csv": ["load_csv_dataset"],
        "_dataset": ["METADATA_COLUMNS", "UNREADABLE", "CXRDataset"],
        "_files": ["MISSING_FILE", "missing_files"],
        "_finalize": ["check_images", "finalize_dataset"],
        "_folder": ["IMAGE_SUFFIXES", "load_image_folder"],
        "_mimic": ["load_mimic_cxr"],
        "_padchest": ["PADCHEST_MAPPING", "load_padchest"],
        "_rsna": ["load_rsna_pneumonia"],
        "_synthetic": ["DEFAULT_DIFFICULTY", "load_synthetic", "make_synthetic_cxr"],
        "_vindr": ["READER_RULES", "VINDR_MAPPING", "load_vindr_cxr"],
        "_vocabulary": ["FINDINGS", "UNCERTAIN_POLICIES"],
    },
)

__all__ = [
    "ADJUDICATED_TARGETS",
    "CHEXPERT_OBSERVATIONS",
    "FINDINGS",
    "MISSING_FILE",
    "NIH_FINDINGS",
    "PADCHEST_MAPPING",
    "READER_RULES",
    "UNCERTAIN_POLICIES",
    "VINDR_MAPPING",
    "load_chexpert",
    "load_mimic_cxr",
    "load_padchest",
    "load_rsna_pneumonia",
    "load_vindr_cxr",
    "missing_files",
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


def load_dataset(
    name: str, root: str | os.PathLike[str] | None = None, **options: Any
) -> CXRDataset:
    """Load the dataset registered as ``name``.

    Parameters
    ----------
    name : str
        A name from :func:`list_datasets` (``covid-chestxray``, ``chestxray14``,
        ``chexpert``, ``mimic-cxr``, ``padchest``, ``rsna-pneumonia``, ``vindr-cxr``,
        ``image-folder``, ``csv``, ``synthetic`` or a plugin's).
    root : path, optional
        Where the user's copy of the data is (a folder, or the CSV file for ``csv``).
    **options
        Passed to the loader; every built-in takes ``on_error="raise"|"skip"``.
    """
    loader = get_registry("dataset").get(name).factory
    _check_options(name, loader, options)
    return loader(root=root, **options)


_ROOT_ALIASES = {"path", "file", "csv", "folder", "dir", "directory", "data_dir", "data", "src"}


def _check_options(name: str, loader: Any, options: dict[str, Any]) -> None:
    """Name an option the loader does not take, instead of a TypeError from inside it."""
    try:
        params = inspect.signature(loader).parameters
    except (TypeError, ValueError):  # a builtin or C callable: let it check its arguments
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = sorted(
        k
        for k, p in params.items()
        if k != "root"
        and p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    )
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        hint = ""
        close = difflib.get_close_matches(unknown[0], accepted + ["root"], n=1)
        if unknown[0] in _ROOT_ALIASES:
            hint = " The data's location is passed as root=..."
        elif close:
            hint = f" Did you mean {close[0]!r}?"
        raise ConfigurationError(
            f"Dataset {name!r} does not take the option(s) {unknown}.{hint} Its options: "
            f"root (the data's location), {', '.join(accepted) or 'none'}."
        )

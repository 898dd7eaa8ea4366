"""cxrkit's built-in datasets, registered like any third-party plugin.

The loaders are :class:`~cxrkit.registry.LazyFactory` objects, imported when
a dataset is loaded.
"""

from __future__ import annotations

from collections.abc import Callable

from ..hookspecs import hookimpl
from ..registry import LazyFactory

#: name -> (loader as "module:function" under cxrkit.datasets, description).
_BUILTINS = {
    "covid-chestxray": (
        "_covid:load_covid_chestxray",
        "The COVID-19 image data collection (Cohen et al. 2020) in its native layout.",
    ),
    "chestxray14": (
        "_chestxray14:load_chestxray14",
        "NIH ChestX-ray14 (Wang et al. 2017), optionally with Google's adjudicated labels.",
    ),
    "image-folder": (
        "_folder:load_image_folder",
        "Images in root/<class>/..., classes in alphabetical order.",
    ),
    "csv": (
        "_csv:load_csv_dataset",
        "Any CSV with one row per image: path, label and (optionally) patient id.",
    ),
    "synthetic": (
        "_synthetic:load_synthetic",
        "The synthetic dataset (see make_synthetic_cxr for the parameters).",
    ),
    "chexpert": (
        "_chexpert:load_chexpert",
        "CheXpert (Irvin et al. 2019): 14 observations with uncertain labels, Stanford.",
    ),
    "mimic-cxr": (
        "_mimic:load_mimic_cxr",
        "MIMIC-CXR-JPG (Johnson et al. 2019): 377,110 JPEGs of 65,379 patients, Beth Israel.",
    ),
    "padchest": (
        "_padchest:load_padchest",
        "PadChest (Bustos et al. 2020): 160,861 images, 193 report-derived labels, Alicante.",
    ),
    "rsna-pneumonia": (
        "_rsna:load_rsna_pneumonia",
        "RSNA Pneumonia Detection Challenge (2018): 26,684 DICOMs with pneumonia boxes.",
    ),
    "vindr-cxr": (
        "_vindr:load_vindr_cxr",
        "VinDr-CXR (Nguyen et al. 2022): 18,000 DICOMs from Vietnam, each read by several "
        "radiologists.",
    ),
}


@hookimpl
def cxrkit_register_datasets(register: Callable[..., None]) -> None:
    """Register the public chest X-ray datasets, CSV and folder layouts and synthetic data."""
    for name, (target, description) in _BUILTINS.items():
        register(name, LazyFactory(f"cxrkit.datasets.{target}", description))

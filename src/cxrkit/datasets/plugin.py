"""cxrkit's built-in datasets, registered like any third-party plugin."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ._chestxray14 import load_chestxray14
from ._chexpert import load_chexpert
from ._covid import load_covid_chestxray
from ._csv import load_csv_dataset
from ._folder import load_image_folder
from ._mimic import load_mimic_cxr
from ._padchest import load_padchest
from ._rsna import load_rsna_pneumonia
from ._synthetic import load_synthetic
from ._vindr import load_vindr_cxr


@hookimpl
def cxrkit_register_datasets(register):  # type: ignore[no-untyped-def]
    register("covid-chestxray", load_covid_chestxray)
    register("chestxray14", load_chestxray14)
    register("image-folder", load_image_folder)
    register("csv", load_csv_dataset)
    register("synthetic", load_synthetic)
    register("chexpert", load_chexpert)
    register("mimic-cxr", load_mimic_cxr)
    register("padchest", load_padchest)
    register("rsna-pneumonia", load_rsna_pneumonia)
    register("vindr-cxr", load_vindr_cxr)

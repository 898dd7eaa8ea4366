"""cxrkit's built-in datasets, registered like any third-party plugin."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ._chestxray14 import load_chestxray14
from ._covid import load_covid_chestxray
from ._csv import load_csv_dataset
from ._folder import load_image_folder
from ._synthetic import load_synthetic


@hookimpl
def cxrkit_register_datasets(register):  # type: ignore[no-untyped-def]
    register("covid-chestxray", load_covid_chestxray)
    register("chestxray14", load_chestxray14)
    register("image-folder", load_image_folder)
    register("csv", load_csv_dataset)
    register("synthetic", load_synthetic)

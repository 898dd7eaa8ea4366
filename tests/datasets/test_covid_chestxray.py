"""covid-chestxray on the collection's real metadata.csv, with tiny images."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from cxrkit.datasets import load_dataset
from cxrkit.errors import DataError, ImageDecodeError


@pytest.fixture(scope="module")
def covid_root(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real metadata.csv with a tiny PNG written under every name it lists."""
    root = tmp_path_factory.mktemp("covid-chestxray")
    meta = shared_data / "covid-chestxray-metadata" / "metadata.csv"
    shutil.copy(meta, root / "metadata.csv")
    df = pd.read_csv(meta)
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for folder, fn in zip(df["folder"], df["filename"]):
        p = root / str(folder) / str(fn)
        p.parent.mkdir(parents=True, exist_ok=True)
        if not p.exists():
            # PNG content whatever the extension: Pillow reads by content
            Image.fromarray(rng.integers(0, 255, (12, 12), dtype=np.uint8)).save(p, format="PNG")
    return root


def test_counts_per_label_view_and_reason(covid_root: Path) -> None:
    ds = load_dataset("covid-chestxray", root=covid_root)
    s = ds.summary()
    assert s["n_images"] == 531 and s["n_patients"] == 311
    assert s["labels"] == {"covid": 434, "normal": 19, "pneumonia": 78}
    assert s["views"] == {"AP": 106, "AP Supine": 134, "PA": 291}
    assert s["excluded"] == {
        "modality CT": 84,
        "view L not selected": 58,
        "view unknown not selected": 35,
        "finding not yet labelled ('todo')": 28,
        "duplicate file (listed again, under another patient id)": 4,
        "finding 'ARDS' alone (a complication, not a cause)": 4,
        "view ? not selected": 4,
        "finding 'Lipoid' excluded by the label mapping": 3,
    }
    assert s["n_excluded"] + s["n_images"] == 751
    md = ds.metadata
    # COVID-19, ARDS counts as covid; sources are the hosts of the url column
    assert (md.loc[md["finding"] == "COVID-19, ARDS", "label"] == "covid").all()
    assert md["source"].notna().all() and "radiopaedia.org" in set(md["source"])
    assert ds.format_summary().startswith("Dataset 'covid-chestxray'")


def test_options_change_mapping_and_views(covid_root: Path) -> None:
    ds = load_dataset(
        "covid-chestxray",
        root=covid_root,
        views=["PA"],
        findings={"SARS": None, "No Finding": None},
        check_images=False,
    )
    s = ds.summary()
    assert set(s["views"]) == {"PA"} and "normal" not in s["labels"]
    assert s["excluded"]["finding 'SARS' excluded by the label mapping"] > 0


def test_missing_image_raises_then_skips(covid_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "copy"
    shutil.copytree(covid_root, root)
    victims = sorted((root / "images").iterdir())[:3]
    for v in victims:
        v.unlink()
    with pytest.raises(
        ImageDecodeError, match=r"^\d of 531 images of dataset 'covid-chestxray' could not be read"
    ):
        load_dataset("covid-chestxray", root=root)
    ds = load_dataset("covid-chestxray", root=root, on_error="skip")
    assert ds.summary()["skipped_files"] == 531 - len(ds) > 0


def test_missing_metadata(tmp_path: Path) -> None:
    with pytest.raises(
        DataError, match=r"^'.*metadata\.csv' does not exist; the covid-chestxray loader"
    ):
        load_dataset("covid-chestxray", root=tmp_path)

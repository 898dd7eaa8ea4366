"""`cxrkit train-lungs` on a tiny folder of synthetic images and masks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from cxrkit.cli import main
from cxrkit.segmentation import load_segmenter


def _write_folder(root: Path, lung_data) -> Path:  # type: ignore[no-untyped-def]
    X, masks, groups = lung_data
    (root / "cxr-dev" / "images").mkdir(parents=True)
    (root / "lung-masks" / "masks").mkdir(parents=True)
    rows = []
    for i in range(16):
        Image.fromarray((X[i] * 255).astype(np.uint8)).save(
            root / "cxr-dev" / "images" / f"{i}.png"
        )
        Image.fromarray(masks[i].astype(np.uint8) * 255).save(
            root / "lung-masks" / "masks" / f"{i}.png"
        )
        rows.append({"image": f"images/{i}.png", "mask": f"masks/{i}.png", "patient_id": groups[i]})
    pd.DataFrame(rows).to_csv(root / "lung-masks" / "metadata.csv", index=False)
    return root / "lung-masks"


def test_train_lungs_writes_weights_card_and_overlays(tmp_path: Path, lung_data, capsys) -> None:
    masks = _write_folder(tmp_path, lung_data)
    out = tmp_path / "seg"
    rc = main(
        [
            "train-lungs",
            "--masks",
            str(masks),
            "--out",
            str(out),
            "--size",
            "32",
            "--epochs",
            "2",
            "--base-channels",
            "2",
            "--cv",
            "2",
            "--overlays",
            "2",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out
    assert printed.startswith("16 images with lung masks from 8 patients")
    assert "fold 1: Dice" in printed and "All held-out images: Dice" in printed
    for name in (
        "model.safetensors",
        "segmenter.json",
        "mean_mask.png",
        "MODEL_CARD.md",
        "cv.json",
        "overlays.png",
    ):
        assert (out / name).is_file(), name
    cv = json.loads((out / "cv.json").read_text())
    assert len(cv["folds"]) == 2 and cv["n_images"] == 16
    card = (out / "MODEL_CARD.md").read_text()
    assert "## Patient-grouped 2-fold cross-validation" in card and "| all | 16 | 8 |" in card
    seg = load_segmenter(out)
    assert seg.n_train_images_ == 16 and seg.predict(lung_data[0][:1]).shape == (1, 32, 32)

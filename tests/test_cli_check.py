"""``cxrkit check`` with and without a lung segmenter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.ndimage import binary_erosion

from cxrkit.cli import main
from cxrkit.cli.check_lungs import SEGMENTER_ENV

SIZE = 32


def _write_csv(folder: Path, X: np.ndarray, y: np.ndarray) -> Path:
    rows = []
    for i, (img, label) in enumerate(zip(X, y)):
        Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(folder / f"{i}.png")
        rows.append({"image": f"{i}.png", "label": label, "patient_id": f"p{i // 2}"})
    pd.DataFrame(rows).to_csv(folder / "metadata.csv", index=False)
    return folder / "metadata.csv"


@pytest.fixture(scope="module")
def lung_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A tiny segmenter and two CSV datasets: classes differ outside, or inside, the lungs."""
    from cxrkit.segmentation import LungSegmenter, save_segmenter, synthetic_lung_images

    X, masks, groups = synthetic_lung_images(56, size=SIZE, random_state=0)
    seg = LungSegmenter(
        input_size=SIZE,
        max_epochs=12,
        batch_size=8,
        lr=1e-2,
        architecture_params={"base_channels": 4, "depth": 2},
        random_state=0,
    ).fit(X[:40], masks[:40], groups=groups[:40])
    seg_dir = tmp_path_factory.mktemp("segmenter")
    save_segmenter(seg, seg_dir)
    y = np.array(["neg", "pos"] * (len(X) // 2))
    outside = X.copy()
    outside[y == "pos", -4:, :] = 1.0  # a bright band below the lungs in one class only
    inside = X.copy()
    core = binary_erosion(masks, structure=np.ones((1, 3, 3)), iterations=2)
    inside[(y == "pos")[:, None, None] & core] += 0.3  # brighter lung cores in one class only
    return (
        seg_dir,
        _write_csv(tmp_path_factory.mktemp("outside"), outside, y),
        _write_csv(tmp_path_factory.mktemp("inside"), inside, y),
    )


def _guard_line(out: str, name: str) -> str:
    return next(ln for ln in out.splitlines() if ln.split()[1:2] == [name])


def test_check_runs_the_outside_lungs_probe_with_a_segmenter(lung_folder, capsys, monkeypatch):
    seg_dir, csv, _ = lung_folder
    monkeypatch.delenv(SEGMENTER_ENV, raising=False)
    code = main(["check", "--data", f"csv:{csv}", "--lung-segmenter", str(seg_dir), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0
    line = _guard_line(out, "outside_lungs_probe")
    assert line.startswith("WARN") and "With the lung fields hidden" in line
    assert "lung guards skipped" not in out


def test_check_reads_the_segmenter_from_the_environment(lung_folder, capsys, monkeypatch):
    seg_dir, _, csv = lung_folder
    monkeypatch.setenv(SEGMENTER_ENV, str(seg_dir))
    assert main(["check", "--data", f"csv:{csv}", "--quiet"]) == 0
    # The classes differ inside the lungs only: hidden lungs leave nothing to learn.
    assert _guard_line(capsys.readouterr().out, "outside_lungs_probe").startswith("PASS")


def test_check_without_a_segmenter_says_how_to_build_one(lung_folder, capsys, monkeypatch):
    _, csv, _ = lung_folder
    monkeypatch.delenv(SEGMENTER_ENV, raising=False)
    assert main(["check", "--data", f"csv:{csv}", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "outside_lungs_probe" not in out
    info = [ln for ln in out.splitlines() if ln.startswith("INFO")]
    assert len(info) == 1 and "cxrkit train-lungs" in info[0] and SEGMENTER_ENV in info[0]

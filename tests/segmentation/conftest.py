"""A lung segmenter fitted on synthetic images with known masks (shared by the module's tests)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cxrkit.segmentation import (
    LungSegmenter,
    clear_mask_cache,
    save_segmenter,
    synthetic_lung_images,
)

SIZE = 32


@pytest.fixture(scope="session")
def lung_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return synthetic_lung_images(56, size=SIZE, random_state=0)


@pytest.fixture(scope="session")
def fitted_segmenter(lung_data: tuple[np.ndarray, np.ndarray, np.ndarray]) -> LungSegmenter:
    X, masks, groups = lung_data
    seg = LungSegmenter(
        input_size=SIZE,
        max_epochs=12,
        batch_size=8,
        lr=1e-2,
        architecture_params={"base_channels": 4, "depth": 2},
        random_state=0,
    )
    return seg.fit(X[:40], masks[:40], groups=groups[:40])


@pytest.fixture(scope="session")
def segmenter_dir(
    fitted_segmenter: LungSegmenter, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    out = tmp_path_factory.mktemp("segmenter")
    save_segmenter(fitted_segmenter, out)
    return out


@pytest.fixture(autouse=True)
def _fresh_mask_cache() -> None:
    clear_mask_cache()

"""Shared fixtures: tiny data, real-data locations, plugin isolation."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(1)

SHARED_ENV = "CXRKIT_SHARED_DATA"
WEIGHTS_ENV = "CXRKIT_SHARED_WEIGHTS"


def _shared_dir(env: str, default: str) -> Path | None:
    value = os.environ.get(env)
    path = Path(value) if value else Path(__file__).resolve().parents[2] / "shared" / default
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (from CXRKIT_SHARED_DATA); skips when absent."""
    path = _shared_dir(SHARED_ENV, "data")
    if path is None or not (path / "cxr-dev" / "metadata.csv").is_file():
        pytest.skip(
            f"real data not available: set {SHARED_ENV} to the shared/data folder "
            "(holding cxr-dev/) to run this test"
        )
    return path


@pytest.fixture(scope="session")
def shared_weights() -> Path:
    """``../shared/weights`` (from CXRKIT_SHARED_WEIGHTS); skips when absent."""
    path = _shared_dir(WEIGHTS_ENV, "weights")
    if path is None:
        pytest.skip(f"shared weights not available: set {WEIGHTS_ENV} to the shared/weights folder")
    return path


def make_separable(n: int = 40, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Tiny grayscale images; class 'pos' has a bright square in the centre."""
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 120, (n, size, size), dtype=np.uint8)
    y = np.array(["neg", "pos"] * (n // 2))
    q = size // 4
    X[y == "pos", q : 3 * q, q : 3 * q] = 230
    return X, y


@pytest.fixture
def separable() -> tuple[np.ndarray, np.ndarray]:
    return make_separable()

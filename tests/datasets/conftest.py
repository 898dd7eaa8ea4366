"""Fixtures for dataset tests: tiny image writers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def write_png(path: Path, seed: int = 0, size: int = 16) -> Path:
    """A small non-constant grayscale PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size, size), dtype=np.uint8)).save(path)
    return path


import pytest  # noqa: E402


@pytest.fixture(scope="session")
def png() -> object:
    """The :func:`write_png` helper."""
    return write_png

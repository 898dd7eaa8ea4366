"""Shared fixtures: tiny data, real-data locations, plugin isolation."""

from __future__ import annotations

import os
import signal
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


def make_findings(
    n: int = 120, size: int = 32, k: int = 3, seed: int = 0, multiclass: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Tiny grayscale images with ``k`` findings, each a bright square in its own place.

    Returns ``(X, Y)``: ``Y`` is an ``(n, k)`` 0/1 matrix (several findings per
    image, each with probability 0.4) or, with ``multiclass``, one class index
    per image (exactly one finding drawn).
    """
    rng = np.random.default_rng(seed)
    X = rng.integers(40, 110, (n, size, size)).astype(np.uint8)
    if multiclass:
        cls = np.arange(n) % k
        rng.shuffle(cls)
        Y = np.eye(k, dtype=np.float64)[cls]
    else:
        Y = (rng.random((n, k)) < 0.4).astype(np.float64)
    q = size // 5
    spots = [(q // 2 + (j % 2) * 3 * q, q // 2 + (j // 2) * 3 * q) for j in range(k)]
    for j, (r, c) in enumerate(spots):
        X[Y[:, j] == 1, r : r + q, c : c + q] = 230
    return X, (cls if multiclass else Y)


@pytest.fixture(autouse=True)
def _python_sigint_handler():
    """Run every test with Python's own SIGINT handler (``KeyboardInterrupt``).

    Some libraries replace or reset the handler of the process they start in
    (a test worker may have run such a test, or a module fixture, before); the
    Ctrl-C tests need Python's handler whatever ran before them.
    """
    before = signal.getsignal(signal.SIGINT)
    if before is not signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    if before is not None and signal.getsignal(signal.SIGINT) is not before:
        signal.signal(signal.SIGINT, before)


@pytest.fixture(scope="module")
def labels_dir(shared_data: Path) -> Path:
    """Google's adjudicated ChestX-ray14 label files (``shared/data/google-four-findings``)."""
    return shared_data / "google-four-findings"


@pytest.fixture(scope="module")
def nih_root(labels_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny PNGs under every adjudicated test-set image name, in the NIH images_00N/images layout."""
    import pandas as pd
    from PIL import Image

    root = tmp_path_factory.mktemp("chestxray14")
    names = pd.read_csv(labels_dir / "test_labels.csv")["Image Index"]
    rng = np.random.default_rng(0)
    for i, n in enumerate(names):
        d = root / f"images_{1 + i % 2:03d}" / "images"
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(d / n)
    return root

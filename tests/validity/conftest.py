from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest


@pytest.fixture(scope="session")
def cxr_dev(shared_data: Path) -> tuple[Path, pd.DataFrame]:
    """cxr-dev root and its metadata (covid vs pneumonia rows only)."""
    root = shared_data / "cxr-dev"
    md = pd.read_csv(root / "metadata.csv")
    md = md[md["label"].isin(["covid", "pneumonia"])].reset_index(drop=True)
    return root, md

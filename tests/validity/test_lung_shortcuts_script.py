"""The pure helpers of benchmarks/lung_shortcuts.py (pooling fold summaries)."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def script():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(BENCH))
    try:
        yield importlib.import_module("lung_shortcuts")
    finally:
        sys.path.remove(str(BENCH))


def _row(n: int, share: float, half: float, area: float) -> dict[str, float]:
    return {
        "n": n,
        "share_in_lungs": share,
        "ci_low": share - half,
        "ci_high": share + half,
        "lung_area_share": area,
    }


def test_pool_weights_folds_by_images_and_narrows_the_interval(script) -> None:  # type: ignore[no-untyped-def]
    pooled = script.pool_fold_summaries([_row(10, 0.2, 0.1, 0.3), _row(30, 0.6, 0.1, 0.5)])
    assert pooled["n"] == 40 and pooled["folds"] == 2
    assert pooled["share_in_lungs"] == pytest.approx(0.5)
    assert pooled["lung_area_share"] == pytest.approx(0.45)
    half = (pooled["ci_high"] - pooled["ci_low"]) / 2
    # sqrt(0.25**2 + 0.75**2) * 0.1 of two folds' equal half-widths.
    assert half == pytest.approx(0.1 * (0.25**2 + 0.75**2) ** 0.5, abs=1e-4)


def test_pool_of_no_scored_fold_is_none_and_prints_not_scored(script) -> None:  # type: ignore[no-untyped-def]
    assert script.pool_fold_summaries([{"n": 0}]) is None
    assert script.format_share(None) == "not scored"
    assert script.format_share(script.pool_fold_summaries([_row(5, 0.3, 0.05, 0.4)])) == (
        "0.30 [0.25, 0.35] (lungs 0.40)"
    )

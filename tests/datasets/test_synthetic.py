"""The synthetic dataset: deterministic, any size, fast, learnable but not trivial."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from cxrkit.datasets import load_dataset, make_synthetic_cxr
from cxrkit.errors import ConfigurationError


def test_deterministic_by_seed() -> None:
    a, ma = make_synthetic_cxr(6, 2, size=32, random_state=3)
    b, mb = make_synthetic_cxr(6, 2, size=32, random_state=3)
    c, _ = make_synthetic_cxr(6, 2, size=32, random_state=4)
    np.testing.assert_array_equal(a, b)
    assert ma.equals(mb)
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("size", [16, 50, 128])
def test_any_size(size: int) -> None:
    X, meta = make_synthetic_cxr(3, 1, size=size)
    assert X.shape == (3, size, size) and X.dtype == np.uint8
    assert len(meta) == 3 and X.std() > 5


def test_fast() -> None:
    make_synthetic_cxr(2, 1, size=128)  # warm-up
    t = time.perf_counter()
    X, _ = make_synthetic_cxr(100, 2, size=128)
    assert len(X) == 200
    assert time.perf_counter() - t < 3.0  # typically ~0.5 s


def test_in_memory_dataset() -> None:
    ds = load_dataset(
        "synthetic",
        n_patients=10,
        images_per_patient=(1, 3),
        size=32,
        sources=["a", "b", "c"],
        views=["PA"],
        random_state=0,
    )
    assert ds.in_memory and ds.X.shape[1:] == (32, 32)
    assert set(ds.y) == {"covid", "pneumonia"}
    assert ds.n_patients == 10 and set(ds.metadata["view"]) == {"PA"}
    s = ds.summary()
    assert sum(k * v for k, v in s["images_per_patient"].items()) == len(ds)
    assert set(s["sources"]) <= {"a", "b", "c"}
    # every image of a patient has that patient's label
    assert (ds.metadata.groupby("patient_id")["label"].nunique() == 1).all()


def test_written_to_root(tmp_path: Path) -> None:
    ds = load_dataset("synthetic", root=tmp_path, n_patients=3, size=24)
    assert not ds.in_memory and all(Path(p).is_file() for p in ds.X)
    mem = load_dataset("synthetic", n_patients=3, size=24)
    from cxrkit.io import read_xray

    np.testing.assert_allclose(read_xray(ds.X[0]), mem.X[0] / 255.0, atol=1e-6)


def test_source_shortcut() -> None:
    ds = load_dataset("synthetic", n_patients=40, size=16, source_shortcut=1.0)
    assert (ds.metadata.groupby("label")["source"].nunique() == 1).all()


def test_bad_parameters() -> None:
    with pytest.raises(
        ConfigurationError,
        match=r"^The 'difficulty' parameter of the synthetic dataset must be a float "
        r"in \[0, 1\]\. Got 2 instead\.$",
    ):
        make_synthetic_cxr(2, difficulty=2)


def test_tiny_cnn_learns_but_not_perfectly() -> None:
    from sklearn.metrics import roc_auc_score

    from cxrkit import CXRClassifier

    tr = load_dataset("synthetic", n_patients=150, size=64, random_state=0)
    te = load_dataset("synthetic", n_patients=100, images_per_patient=1, size=64, random_state=100)
    clf = CXRClassifier("tiny_cnn", input_size=64, max_epochs=5, random_state=0, device="cpu")
    clf.fit(tr.X, tr.y, groups=tr.groups)
    auc = roc_auc_score(
        te.y == "covid", clf.predict_proba(te.X)[:, list(clf.classes_).index("covid")]
    )
    assert 0.7 < auc < 0.99


def test_synthetic_patients_are_not_near_duplicates_of_each_other():
    """Different synthetic patients must not look like one radiograph entered twice
    (the near-duplicate guard would then warn on every demo run)."""
    from cxrkit.validity import find_near_duplicates

    ds = load_dataset("synthetic", n_patients=40, images_per_patient=2, size=96, random_state=3)
    pairs = find_near_duplicates(ds.X)
    g = np.asarray(ds.groups)
    assert not (g[pairs["i"].to_numpy()] != g[pairs["j"].to_numpy()]).any()
    assert len(pairs) > 0  # a patient's own images do look alike

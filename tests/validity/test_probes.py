from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold

from cxrkit import CXRClassifier
from cxrkit.errors import ConfigurationError, LeakageError
from cxrkit.validity import CentreBlackout, LeaveOneSourceOut, shortcut_probe, source_probe


def _make() -> CXRClassifier:
    return CXRClassifier(
        "tiny_cnn", input_size=16, max_epochs=3, lr=3e-3, batch_size=8, random_state=0
    )


def _images(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(40, 120, (n, 16, 16), dtype=np.uint8)


CV = StratifiedKFold(3, shuffle=True, random_state=0)


def test_centre_blackout():
    img = np.ones((10, 10), np.float32)
    out = CentreBlackout(0.6)(img)
    assert out[2:8, 2:8].sum() == 0 and out.sum() == 100 - 36 and img.sum() == 100
    again = pickle.loads(pickle.dumps(CentreBlackout(0.6)))
    assert again == CentreBlackout(0.6)
    with pytest.raises(
        ConfigurationError,
        match=r"^The 'fraction' parameter of CentreBlackout "
        r"must be a float in the range \(0, 1\]\. "
        r"Got 1\.5 instead\.$",
    ):
        CentreBlackout(1.5)
    clf = clone(CXRClassifier("tiny_cnn", transforms=[CentreBlackout(0.5)]))
    assert clf.transforms == [CentreBlackout(0.5)]


def test_shortcut_probe_flags_corner_marker_and_passes_clean_data():
    X = _images(48, 0)
    y = np.array(["covid", "pneumonia"] * 24)
    marked = X.copy()
    marked[y == "pneumonia", :3, :3] = 255  # a bright corner "text marker" outside the lungs
    res = shortcut_probe(_make, marked, y, cv=CV, fraction=0.6)
    assert res.status == "WARN" and res.numbers["auc"] > 0.9
    # the same signal in the centre only is hidden by the blackout
    central = X.copy()
    central[y == "pneumonia", 6:10, 6:10] = 255
    clean = shortcut_probe(_make, central, y, cv=CV, fraction=0.6)
    assert clean.status == "PASS" and 0.3 < clean.numbers["auc"] < 0.7


def test_source_probe_flags_distinguishable_sources():
    X = _images(48, 1)
    sources = np.array(["hospA", "hospB"] * 24)
    X[sources == "hospB"] = X[sources == "hospB"] // 2 + 128  # different exposure/processing
    res = source_probe(_make, X, sources, cv=CV)
    assert res.status == "WARN" and res.numbers["auc"] > 0.9
    same = source_probe(_make, _images(48, 2), sources, cv=CV)
    assert same.status == "PASS"
    single = source_probe(_make, X, ["one"] * 48)
    assert single.status == "PASS" and single.numbers == {"n_sources": 1}


def test_leave_one_source_out():
    X = np.zeros(6)
    src = np.array(["a", "b", "a", "c", "b", "c"])
    folds = [te.tolist() for _, te in LeaveOneSourceOut(src).split(X, None, None)]
    assert folds == [[0, 2], [1, 4], [3, 5]]
    assert LeaveOneSourceOut(src).get_n_splits() == 3
    assert [te.tolist() for _, te in LeaveOneSourceOut().split(X, groups=src)] == folds
    patients = np.array(["p1", "p2", "p1", "p3", "p4", "p5"])  # p1 only in source a: fine
    list(LeaveOneSourceOut(src).split(X, None, patients))
    patients[1] = "p1"  # p1 now in sources a and b
    with pytest.raises(LeakageError, match=r"^1 patient\(s\) have images in both the training "):
        list(LeaveOneSourceOut(src).split(X, None, patients))


def test_shortcut_probe_warns_when_hiding_the_lungs_changes_nothing():
    """A modest AUC is still a shortcut if the whole-image model does no better."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    def make():
        return make_pipeline(
            FunctionTransformer(lambda a: a.reshape(len(a), -1) / 255.0),
            LogisticRegression(max_iter=500),
        )

    rng = np.random.default_rng(5)
    X = _images(96, 3)
    y = np.array(["covid", "pneumonia"] * 48)
    marked = np.flatnonzero(y == "pneumonia")[rng.random(48) < 0.35]
    X[marked, :3, :3] = 255  # a marker outside the lungs on about a third of one class
    alone = shortcut_probe(make, X, y, cv=CV)
    auc = alone.numbers["auc"]
    assert (
        0.6 <= auc < 0.7 and alone.status == "PASS" and "Below the warning level" in alone.summary
    )
    same = shortcut_probe(make, X, y, cv=CV, reference_auc=auc + 0.01)
    assert same.status == "WARN" and same.numbers["retained"] > 0.75
    assert "kept" in same.summary and same.numbers["auc_whole_images"] == round(auc + 0.01, 4)
    strong = shortcut_probe(make, X, y, cv=CV, reference_auc=0.97)
    assert strong.status == "PASS" and strong.numbers["retained"] < 0.75


def test_protocol_probes_use_its_n_jobs(monkeypatch):
    """The probes' cross-validation gets the protocol's ``n_jobs`` (both probes)."""
    import pandas as pd

    from cxrkit.evaluation.protocols import Hall2020CV
    from cxrkit.evaluation.results import RunResult
    from cxrkit.validity import probes

    seen = []

    def fake_cross_val_predict(est, X, y, *, groups, cv, method, n_jobs):
        seen.append(n_jobs)
        return np.column_stack([np.full(len(y), 0.5), np.full(len(y), 0.5)])

    monkeypatch.setattr(probes, "cross_val_predict", fake_cross_val_predict)
    n = 24
    from cxrkit.datasets import CXRDataset
    from cxrkit.evaluation.protocols import Evaluation

    ds = CXRDataset(
        X=_images(n, 3),
        y=np.array(["covid", "pneumonia"] * (n // 2)),
        groups=np.arange(n).astype(str),
        metadata=pd.DataFrame({"source": ["a", "b", "c"] * (n // 3)}),
    )
    for n_jobs in (None, 2):
        seen.clear()
        result = RunResult(
            protocol="t",
            config={},
            positive_label="covid",
            classes=["pneumonia", "covid"],
            images=[str(i) for i in range(n)],
            y_true=ds.y,
            y_score=np.zeros(n),
        )
        Hall2020CV(n_jobs=n_jobs, probe_splits=2).probe(
            Evaluation(result=result, data=ds, probe_estimator=_make()), progress=False
        )
        assert seen == [n_jobs, n_jobs]  # source probe (one source vs the rest), shortcut probe
        assert {r["name"] for r in result.validity} == {"source_probe", "shortcut_probe"}

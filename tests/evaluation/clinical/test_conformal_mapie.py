import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from cxrkit.evaluation.clinical import conformal_sets

mapie_cls = pytest.importorskip(
    "mapie.classification", reason="mapie is not installed (pip install mapie)"
)


def test_lac_sets_match_mapie():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1).astype(int)
    clf = LogisticRegression().fit(X[:200], y[:200])
    m = mapie_cls.SplitConformalClassifier(
        clf, confidence_level=0.9, conformity_score="lac", prefit=True
    )
    m.conformalize(X[200:400], y[200:400])
    ref = m.predict_set(X[400:])[1][:, :, 0]
    ours = conformal_sets(
        clf.predict_proba(X[200:400]), y[200:400], clf.predict_proba(X[400:]), alpha=0.1
    )
    assert np.mean(ref == ours) > 0.98

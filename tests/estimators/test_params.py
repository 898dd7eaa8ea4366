"""Parameters are validated once, declaratively, at the start of fit, with one message form."""

from __future__ import annotations

import numpy as np
import pytest

from cxrkit.errors import ConfigurationError
from cxrkit.estimators import (
    AcceleratedCXRClassifier,
    CXRClassifier,
    CXREmbedder,
    SnapshotEnsembleClassifier,
)

X = np.zeros((4, 8, 8), dtype=np.uint8)
Y = np.array([0, 1, 0, 1])


@pytest.mark.parametrize(
    ("est", "message"),
    [
        (
            SnapshotEnsembleClassifier(n_snapshots=0),
            r"The 'n_snapshots' parameter of SnapshotEnsembleClassifier must be an int in the "
            r"range \[1, inf\)\. Got 0 instead\.",
        ),
        (
            SnapshotEnsembleClassifier(policy="best"),
            r"The 'policy' parameter of SnapshotEnsembleClassifier must be a str among "
            r"\{.*'threshold'.*\}\. Got 'best' instead\.",
        ),
        (
            SnapshotEnsembleClassifier(estimator="tiny_cnn"),
            r"The 'estimator' parameter of SnapshotEnsembleClassifier must be None or an "
            r"instance of '.*CXRClassifier'\. Got 'tiny_cnn' instead\.",
        ),
        (
            CXRClassifier("tiny_cnn", freeze="head"),
            r"The 'freeze' parameter of CXRClassifier must be a str among \{.*'backbone'.*\}\. "
            r"Got 'head' instead\.",
        ),
        (
            CXRClassifier("tiny_cnn", lr=0),
            r"The 'lr' parameter of CXRClassifier must be a float in the range \(0\.0, inf\)\. "
            r"Got 0 instead\.",
        ),
        (
            CXRClassifier("tiny_cnn", feature_cache="yes"),
            r"The 'feature_cache' parameter of CXRClassifier must be a str among \{'auto'\} or "
            r"an instance of 'bool'.*\. Got 'yes' instead\.",
        ),
        (
            CXRClassifier("tiny_cnn", tta="vflip"),
            r"The 'tta' parameter of CXRClassifier must be None or a str among \{'hflip'\}\. "
            r"Got 'vflip' instead\.",
        ),
        (
            AcceleratedCXRClassifier("tiny_cnn", max_epochs=0),
            r"The 'max_epochs' parameter of AcceleratedCXRClassifier must be an int in the "
            r"range \[1, inf\)\. Got 0 instead\.",
        ),
        (
            CXREmbedder("tiny_cnn", batch_size=0),
            r"The 'batch_size' parameter of CXREmbedder must be an int in the range \[1, inf\)\. "
            r"Got 0 instead\.",
        ),
        (
            CXREmbedder("tiny_cnn", feature_cache="auto"),
            r"The 'feature_cache' parameter of CXREmbedder must be an instance of 'bool'.*\. "
            r"Got 'auto' instead\.",
        ),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, str) else "",
)
def test_bad_parameters_are_refused_at_fit(est, message):
    with pytest.raises(ConfigurationError, match=message):
        est.fit(X, Y)
    assert not hasattr(est, "classes_") and not hasattr(est, "module_")


def test_every_init_parameter_has_a_constraint():
    for cls in (CXRClassifier, SnapshotEnsembleClassifier, CXREmbedder, AcceleratedCXRClassifier):
        assert set(cls._get_param_names()) == set(cls._parameter_constraints), cls.__name__


def test_prediction_does_not_validate_parameters():
    clf = CXRClassifier("tiny_cnn", input_size=8, max_epochs=1, random_state=0).fit(X, Y)
    clf.amp = "int4"  # not validated until the next fit; ignored on the CPU
    assert clf.predict_proba(X).shape == (4, 2)
    with pytest.raises(ConfigurationError, match="The 'amp' parameter of CXRClassifier"):
        clf.fit(X, Y)

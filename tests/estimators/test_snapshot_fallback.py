"""The snapshot fallback names what it lacks when too few epochs were trained for it."""

from __future__ import annotations

import pytest

from cxrkit import CXRClassifier, SnapshotEnsembleClassifier
from cxrkit.estimators import SnapshotError

from ..conftest import make_separable


def test_fallback_with_too_few_epochs_says_how_many_it_needs():
    X, y = make_separable(24, 16)
    base = CXRClassifier("tiny_cnn", input_size=16, max_epochs=2, batch_size=16, random_state=0)
    ens = SnapshotEnsembleClassifier(
        base, n_snapshots=3, interval=2, threshold=1.1, if_threshold_not_reached="last"
    )
    with pytest.raises(
        SnapshotError,
        match=r"never exceeded 1\.1 in 2 epochs .*, and the fallback "
        r"\(if_threshold_not_reached='last'\) needs 3 epochs 2 apart, i\.e\. at least 5 "
        r"epochs, but only 2 were trained\. Raise max_epochs to 5 or more",
    ):
        ens.fit(X, y)


def test_a_fixed_size_architecture_refuses_another_input_size():
    from cxrkit.errors import ConfigurationError

    X, y = make_separable(8, 64)
    clf = CXRClassifier("hall2020_cnn", input_size=64, max_epochs=1, random_state=0)
    with pytest.raises(
        ConfigurationError,
        match=r"Architecture 'hall2020_cnn' takes 100 px inputs only \(its layer sizes are "
        r"fixed\); got input_size=64\. Leave input_size unset or pass 100\.",
    ):
        clf.fit(X, y)

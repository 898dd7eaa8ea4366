"""Ctrl-C during fit: re-raised, and the half-trained estimator refuses to predict or save."""

from __future__ import annotations

import signal

import pytest
from skorch.callbacks import Callback

from cxrkit import CXRClassifier, SnapshotEnsembleClassifier, save_model
from cxrkit.errors import TrainingInterruptedError

from ..conftest import make_separable


class CtrlCAt(Callback):
    """Deliver a real SIGINT to this process at the end of an epoch."""

    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == self.epoch:
            signal.raise_signal(signal.SIGINT)


class StopAt(Callback):
    """End training early the way skorch's EarlyStopping does."""

    def on_epoch_end(self, net, **kwargs):
        if len(net.history) == 2:
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def data():
    return make_separable(16, 16)


def tiny(**kw):
    return CXRClassifier(
        "tiny_cnn", input_size=16, max_epochs=50, batch_size=8, random_state=0, **kw
    )


def test_ctrl_c_during_fit_is_reraised_and_marks_the_estimator(data, tmp_path):
    X, y = data
    clf = tiny(callbacks=[CtrlCAt(2)])
    with pytest.raises(KeyboardInterrupt):
        clf.fit(X, y)
    assert clf.interrupted_ == "Ctrl-C after 2 of 50 epochs"
    msg = r"training was interrupted \(Ctrl-C after 2 of 50 epochs\), so it cannot predict"
    with pytest.raises(TrainingInterruptedError, match=msg):
        clf.predict_proba(X)
    with pytest.raises(TrainingInterruptedError, match="so it cannot be saved"):
        save_model(clf, tmp_path / "m")
    assert not (tmp_path / "m").exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


def test_callbacks_still_end_training_early(data):
    X, y = data
    clf = tiny(callbacks=[StopAt()]).fit(X, y)
    assert len(clf.history_) == 2 and clf.interrupted_ is None
    assert clf.predict_proba(X).shape == (16, 2)


def test_ctrl_c_in_snapshot_ensemble_is_not_a_policy_error(data):
    X, y = data
    ens = SnapshotEnsembleClassifier(
        tiny(callbacks=[CtrlCAt(3)]), n_snapshots=3, interval=5, threshold=0.99
    )
    with pytest.raises(KeyboardInterrupt):
        ens.fit(X, y)
    assert ens.interrupted_ == "Ctrl-C after 3 of 60 epochs"  # 50 + room for 2 more members
    assert not hasattr(ens, "members_")

"""SnapshotEnsembleClassifier: policies, member selection, sharing, persistence, ensembles."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.ensemble import VotingClassifier
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback

from cxrkit import (
    CXRClassifier,
    SnapshotEnsembleClassifier,
    hall2020_ensemble,
    load_model,
    save_model,
)
from cxrkit.architectures import create_architecture
from cxrkit.estimators import SnapshotError

from ..conftest import make_separable


class ScriptedMetric(Callback):
    """Overwrite the monitored metric with scripted values (drives the policy)."""

    def __init__(self, values, key="train_acc"):
        self.values = values
        self.key = key

    def on_epoch_end(self, net, **kwargs):
        net.history.record(self.key, self.values[len(net.history) - 1])


def tiny(**kw):
    params = dict(input_size=16, max_epochs=40, batch_size=16, random_state=0)
    params.update(kw)
    return CXRClassifier("tiny_cnn", **params)


@pytest.fixture(scope="module")
def data():
    return make_separable(24, 16)


def test_threshold_policy_takes_snapshots_where_the_paper_says(data):
    X, y = data
    acc = [0.5] * 4 + [0.95] * 40  # first exceeds 0.9 in epoch 5
    ens = SnapshotEnsembleClassifier(
        tiny(callbacks=[ScriptedMetric(acc)]), n_snapshots=3, interval=4, threshold=0.9
    )
    ens.fit(X, y)
    assert [s["epoch"] for s in ens.snapshots_] == [5, 9, 13]
    assert all(s["monitor"] == "train_acc" and s["value"] == 0.95 for s in ens.snapshots_)
    assert len(ens.estimator_.history_) == 13  # training stops after the last member


def test_threshold_on_validation_accuracy_uses_a_training_split(data):
    X, y = data
    acc = [0.7] * 2 + [0.85] * 40
    groups = np.repeat(np.arange(12), 2)
    ens = SnapshotEnsembleClassifier(
        tiny(callbacks=[ScriptedMetric(acc, "valid_acc")]),
        n_snapshots=2,
        interval=2,
        monitor="valid_acc",
        threshold=0.8,
        validation=3,
    )
    ens.fit(X, y, groups=groups)
    assert [s["epoch"] for s in ens.snapshots_] == [3, 5]
    va = ens.estimator_.validation_indices_
    assert len(va) >= 6  # at least 3 per class, whole patients only
    assert not set(groups[va]) & set(np.delete(groups, va))


def test_threshold_never_reached_fails_with_peak(data):
    X, y = data
    acc = [0.5, 0.6, 0.87, 0.7, 0.6, 0.6]
    ens = SnapshotEnsembleClassifier(
        tiny(max_epochs=6, callbacks=[ScriptedMetric(acc)]),
        n_snapshots=2,
        interval=2,
        threshold=0.9,
    )
    with pytest.raises(
        SnapshotError,
        match=r"'train_acc' never exceeded 0\.9 in 6 epochs \(it "
        r"peaked at 0\.870 in epoch 3\)\. Raise max_epochs",
    ):
        ens.fit(X, y)
    ens.set_params(if_threshold_not_reached="last")
    with pytest.warns(UserWarning, match="Kept the last 2 epochs 2 apart instead"):
        ens.fit(X, y)
    assert [s["epoch"] for s in ens.snapshots_] == [4, 6]


def test_last_and_cyclic_policies(data):
    X, y = data
    ens = SnapshotEnsembleClassifier(tiny(max_epochs=7), policy="last", n_snapshots=3, interval=3)
    assert [s["epoch"] for s in ens.fit(X, y).snapshots_] == [1, 4, 7]
    ens = SnapshotEnsembleClassifier(tiny(lr=0.01), policy="cyclic", n_snapshots=3, interval=2)
    ens.fit(X, y)
    assert [s["epoch"] for s in ens.snapshots_] == [2, 4, 6]
    lrs = [h["lr"] for h in ens.estimator_.history_]
    # cosine annealing restarted every 2 epochs: the lr at the end of each cycle is low
    assert all(s["lr"] < 0.01 * 0.2 for s in ens.snapshots_) and max(lrs) > 0.005


def test_ensemble_proba_is_mean_of_members_evaluated_one_by_one(data):
    X, y = data
    ens = SnapshotEnsembleClassifier(
        tiny(max_epochs=6), policy="last", n_snapshots=3, interval=2
    ).fit(X, y)
    est = ens.estimator_
    probs = []
    for member in ens.members_:
        net = create_architecture("tiny_cnn")
        net.load_state_dict(est.module_.state_dict())
        net.load_state_dict(member, strict=False)
        single = CXRClassifier.from_module(net, est.classes_, preprocessing=est.preprocessing_)
        probs.append(single.predict_proba(X)[:, 1])
    np.testing.assert_allclose(ens.predict_proba(X)[:, 1], np.mean(probs, axis=0), atol=1e-6)
    # members really differ (different epochs)
    assert np.abs(probs[0] - probs[-1]).max() > 1e-4


def test_frozen_backbone_snapshots_store_only_the_head():
    X, y = make_separable(16, 32)
    base = CXRClassifier(
        "resnet50", freeze="backbone", input_size=32, max_epochs=3, lr=3e-4, random_state=0
    )
    ens = SnapshotEnsembleClassifier(base, policy="last", n_snapshots=3, interval=1).fit(X, y)
    backbone_bytes = sum(
        t.numel() * t.element_size() for t in ens.estimator_.module_.backbone.state_dict().values()
    )
    assert all(not any(k.startswith("backbone.") for k in m) for m in ens.members_)
    per_member = ens.snapshots_[0]["nbytes"]
    assert per_member == (2048 * 64 + 64 + 64 + 1) * 4  # the head only: ~0.5 MB, not 94 MB
    assert ens.snapshot_nbytes_ < backbone_bytes / 50  # 3 heads: 1.6 MB vs 94 MB


def test_save_and_load_members(tmp_path, data):
    X, y = data
    ens = SnapshotEnsembleClassifier(
        tiny(max_epochs=4), policy="last", n_snapshots=2, interval=2
    ).fit(X, y)
    save_model(ens, tmp_path / "model")
    files = sorted(p.name for p in (tmp_path / "model").iterdir())
    assert files == [
        "config.json",
        "ensemble.json",
        "manifest.json",
        "member_00.safetensors",
        "member_01.safetensors",
        "model.safetensors",
    ]
    loaded = load_model(tmp_path / "model")
    np.testing.assert_allclose(loaded.predict_proba(X), ens.predict_proba(X), atol=1e-7)
    assert loaded.snapshots_ == ens.snapshots_


def test_grid_search_over_snapshot_parameters(data):
    X, y = data
    ens = SnapshotEnsembleClassifier(tiny(max_epochs=4), policy="last", interval=1)
    gs = GridSearchCV(
        ens, {"n_snapshots": [1, 3], "estimator__lr": [1e-3, 1e-2]}, cv=2, scoring="roc_auc"
    ).fit(X, y)
    assert len(gs.cv_results_["params"]) == 4
    assert gs.best_estimator_.n_snapshots in (1, 3)


def test_soft_voting_over_snapshot_ensembles_averages_all_members(data):
    X, y = data
    parts = [
        (
            f"a{i}",
            SnapshotEnsembleClassifier(
                tiny(max_epochs=3, random_state=i), policy="last", n_snapshots=3, interval=1
            ),
        )
        for i in range(3)
    ]
    vote = VotingClassifier(parts, voting="soft").fit(X, y)
    members = np.vstack([e.member_proba(X) for e in vote.estimators_])  # 9 members
    assert members.shape == (9, len(X))
    np.testing.assert_allclose(vote.predict_proba(X)[:, 1], members.mean(axis=0), atol=1e-6)


def test_hall2020_ensemble_is_a_plain_voting_classifier():
    vote = hall2020_ensemble(pretrained=None)
    assert isinstance(vote, VotingClassifier) and vote.voting == "soft"
    assert [n for n, _ in vote.estimators] == ["resnet50", "vgg16", "hall2020_cnn"]
    for _, ens in vote.estimators:
        assert (ens.n_snapshots, ens.interval, ens.monitor, ens.threshold, ens.validation) == (
            7,
            10,
            "valid_acc",
            0.8,
            18,
        )
        assert ens.estimator.optimizer == "rmsprop"
    assert vote.estimators[2][1].estimator.freeze == "none"
    assert vote.estimators[0][1].estimator.freeze == "backbone"


def test_bad_parameters(data):
    X, y = data
    with pytest.raises(
        ValueError,
        match=r"The 'n_snapshots' parameter of "
        r"SnapshotEnsembleClassifier must be an int in the range "
        r"\[1, inf\)\. Got 0 instead\.",
    ):
        SnapshotEnsembleClassifier(tiny(), n_snapshots=0).fit(X, y)
    with pytest.raises(
        ValueError,
        match="policy='last' with n_snapshots=7 and interval=10 needs "
        "at least 61 epochs; max_epochs is 40",
    ):
        SnapshotEnsembleClassifier(tiny(), policy="last").fit(X, y)
    torch.manual_seed(0)

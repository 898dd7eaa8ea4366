"""CXRClassifier: learning, labels, recipes, determinism and scikit-learn citizenship."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_validate

from cxrkit import CXRClassifier
from cxrkit.errors import ConfigurationError, DataError, ImageDecodeError, UnknownNameError

from ..conftest import make_separable


def auc(y, proba):
    return roc_auc_score(np.asarray(y) == "pos", proba[:, 1])


def test_hall2020_cnn_learns_separable_task():
    X, y = make_separable(40, 100)
    clf = CXRClassifier.from_recipe(
        "hall2020", architecture="hall2020_cnn", max_epochs=12, random_state=0
    )
    clf.fit(X, y)
    assert auc(y, clf.predict_proba(X)) > 0.95
    assert list(clf.classes_) == ["neg", "pos"]
    assert clf.preprocessing_.input_size == 100
    assert len(clf.history_) == 12
    lrs = [h["lr"] for h in clf.history_]
    assert min(lrs) >= 1e-4 - 1e-12 and max(lrs) <= 1e-3 + 1e-12 and len(set(lrs)) > 1


def test_frozen_resnet50_learns_and_keeps_frozen_tensors_bit_identical():
    X, y = make_separable(40, 64)
    clf = CXRClassifier(
        "resnet50", freeze="backbone", input_size=64, max_epochs=8, lr=3e-4, random_state=0
    )
    torch.manual_seed(0)  # fit seeds the same way before building the network
    before = {k: v.clone() for k, v in clf.build_module().backbone.state_dict().items()}
    clf.fit(X, y)
    after = clf.module_.backbone.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN statistics included
    assert auc(y, clf.predict_proba(X)) > 0.95


def test_paths_and_arrays_give_same_probabilities(tmp_path):
    from PIL import Image

    X, y = make_separable(12, 32)
    paths = []
    for i, img in enumerate(X):
        p = tmp_path / f"img{i}.png"
        Image.fromarray(img).save(p)
        paths.append(str(p))
    clf = CXRClassifier("tiny_cnn", max_epochs=2, random_state=0).fit(X, y)
    np.testing.assert_allclose(
        clf.predict_proba(np.array(paths, dtype=object)), clf.predict_proba(X), atol=1e-6
    )


def test_same_random_state_same_probabilities():
    X, y = make_separable(24, 32)
    a = CXRClassifier("tiny_cnn", augment="hflip", max_epochs=3, random_state=7).fit(X, y)
    b = CXRClassifier("tiny_cnn", augment="hflip", max_epochs=3, random_state=7).fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_predict_proba_of_extreme_logits_warns_nothing():
    """A confident network's logits (|z| > 710) must not overflow exp into a RuntimeWarning."""
    X, y = make_separable(8, 32)
    clf = CXRClassifier("tiny_cnn", max_epochs=1, random_state=0).fit(X, y)
    clf.decision_function = lambda X: np.array([-1000.0, 0.0, 1000.0])  # type: ignore[method-assign]
    np.testing.assert_array_equal(clf.predict_proba(X[:3]), [[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]])


def test_string_labels_and_proba_order():
    X, y = make_separable(20, 32)
    y2 = np.where(y == "pos", "covid", "pneumonia")
    clf = CXRClassifier("tiny_cnn", max_epochs=6, lr=5e-3, random_state=0).fit(X, y2)
    assert list(clf.classes_) == ["covid", "pneumonia"]
    proba = clf.predict_proba(X)
    assert proba.shape == (20, 2)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    # column 0 is covid, which carries the bright square here
    assert roc_auc_score(y2 == "covid", proba[:, 0]) > 0.9
    assert set(clf.predict(X)) <= {"covid", "pneumonia"}


def test_recipes():
    hall = CXRClassifier.from_recipe("hall2020")
    assert (hall.architecture, hall.optimizer, hall.lr_schedule, hall.augment, hall.freeze) == (
        "resnet50",
        "rmsprop",
        "cyclic",
        "hflip",
        "backbone",
    )
    p = hall.get_params()
    assert (p["lr_schedule__base_lr"], p["lr_schedule__max_lr"], p["optimizer__alpha"]) == (
        1e-4,
        1e-3,
        0.9,
    )
    assert CXRClassifier.from_recipe("hall2020", "hall2020_cnn").freeze == "none"
    op = CXRClassifier.from_recipe("opacity2020")
    assert (
        op.architecture,
        op.optimizer,
        op.batch_size,
        op.max_epochs,
        op.lr,
        op.freeze,
        op.head,
    ) == ("resnet101", "sgd", 10, 8, 1e-4, "all_but_last", "fc")
    assert op.get_params()["optimizer__momentum"] == 0.9
    with pytest.raises(UnknownNameError, match="Unknown recipe 'hall'. Did you mean 'hall2020'"):
        CXRClassifier.from_recipe("hall")


def test_routed_params_reach_the_optimizer():
    X, y = make_separable(20, 32)
    clf = CXRClassifier("tiny_cnn", optimizer="sgd", max_epochs=1, optimizer__momentum=0.5)
    clf.set_params(optimizer__momentum=0.8, module__width=4)
    assert clf.get_params()["optimizer__momentum"] == 0.8
    clf.fit(X, y)
    assert clf.net_.optimizer_.param_groups[0]["momentum"] == 0.8
    assert clf.module_.num_features == 16  # width 4 -> 4, 8, 16 channels
    c2 = clone(clf)
    assert c2.get_params()["module__width"] == 4 and not hasattr(c2, "net_")
    with pytest.raises(
        ConfigurationError,
        match=r"unexpected parameter\(s\) \['foo'\]\. Routed "
        "parameters must start with one of optimizer__",
    ):
        CXRClassifier("tiny_cnn", foo=1).fit(X, y)


def test_grid_search_and_parallel_cross_validate():
    X, y = make_separable(32, 16)
    base = CXRClassifier("tiny_cnn", input_size=16, optimizer="sgd", max_epochs=2, random_state=0)
    gs = GridSearchCV(
        base, {"lr": [1e-2, 1e-3], "optimizer__momentum": [0.0, 0.9]}, cv=2, scoring="roc_auc"
    )
    gs.fit(X, y)
    assert len(gs.cv_results_["params"]) == 4
    res = cross_validate(base, X, y, cv=StratifiedKFold(2), n_jobs=2, scoring="roc_auc")
    assert res["test_score"].shape == (2,)


def test_pickle_roundtrip():
    X, y = make_separable(16, 16)
    clf = CXRClassifier("tiny_cnn", input_size=16, max_epochs=1, random_state=0).fit(X, y)
    clf2 = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(clf.predict_proba(X), clf2.predict_proba(X))


@pytest.mark.parametrize(
    "kwargs,y,match",
    [
        ({}, [0.5, 1.25, 0.5, 2.0], r"Unknown label type: continuous"),
        ({}, np.array([[1, 0, 2], [0, 1, 0], [1, 1, 0], [0, 0, 1]]), r"found 1 other value"),
        ({}, np.array([[1, 0], [0, 0], [1, 0], [0, 0]]), r"Finding 'finding_1' has only negative"),
        ({"uncertain": "maybe"}, ["a", "b"] * 2, r"The 'uncertain' parameter"),
        ({}, ["a", "a", "a", "a"], r"got 1 class\(es\)"),
        ({}, [0.0, 1.0, np.nan, 1.0], r"y contains 1 NaN label\(s\)"),
        ({}, ["a", "b", "a"], "X has 4 images but y has 3 labels"),
        (
            {"batch_size": 0},
            ["a", "b"] * 2,
            r"The 'batch_size' parameter of CXRClassifier must be an "
            r"int in the range \[1, inf\)\. Got 0 instead\.",
        ),
        (
            {"augment": "rotate"},
            ["a", "b"] * 2,
            r"must be None, 'hflip', a registered transform name \(.*\) or a torchvision\.transforms\.v2 pipeline\. Got 'rotate'",
        ),
    ],
)
def test_bad_input_is_explained(kwargs, y, match):
    X = np.zeros((4, 8, 8), dtype=np.uint8)
    with pytest.raises((DataError, ConfigurationError), match=match):
        CXRClassifier("tiny_cnn", **kwargs).fit(X, y)


def test_bad_x_is_explained(tmp_path):
    clf = CXRClassifier("tiny_cnn", max_epochs=1)
    with pytest.raises(DataError, match=r"expected \(n, H, W\) grayscale images .* For RGB"):
        clf.fit(np.zeros((2, 8, 8, 3)), ["a", "b"])
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    with pytest.raises(
        ImageDecodeError,
        match=r"(?s)2 of 2 images could not be read:\n  Image '.*bad.png' "
        r"is not an image: its content is a text file.*"
        r"missing.png' does not exist",
    ):
        clf.fit([str(bad), str(tmp_path / "missing.png")], ["a", "b"])
    with pytest.raises(DataError, match=r"contains NaN or infinity in 1 image"):
        clf.fit(np.array([[0.0, np.nan], [0.0, 1.0]]), ["a", "b"])


def test_device_auto_resolves_to_cpu_here():
    X, y = make_separable(8, 16)
    clf = CXRClassifier("tiny_cnn", input_size=16, max_epochs=1).fit(X, y)
    assert clf.device_ == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigurationError, match="no CUDA GPU is visible"):
            CXRClassifier("tiny_cnn", device="cuda").fit(X, y)

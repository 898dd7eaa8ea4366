"""Global configuration: set_config / get_config / config_context."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import cxrkit
from cxrkit.errors import ConfigurationError
from cxrkit.estimators import CXRClassifier, CXREmbedder, SnapshotEnsembleClassifier

DEFAULTS = {
    "grayscale_conv": "auto",
    "channels_last": "auto",
    "tune_malloc": "auto",
    "decode_threads": None,
    "predict_batch_size": None,
    "trim_every": 8,
    "show_progress": "auto",
}


def test_defaults_are_documented_values():
    assert cxrkit.get_config() == DEFAULTS


def test_get_config_returns_a_copy():
    cxrkit.get_config()["trim_every"] = 99
    assert cxrkit.get_config()["trim_every"] == 8


def test_context_sets_and_restores():
    with cxrkit.config_context(tune_malloc=False, decode_threads=2):
        assert cxrkit.get_config()["tune_malloc"] is False
        assert cxrkit.get_config()["decode_threads"] == 2
        with cxrkit.config_context(decode_threads=3):
            assert cxrkit.get_config()["decode_threads"] == 3
        assert cxrkit.get_config()["decode_threads"] == 2
    assert cxrkit.get_config() == DEFAULTS


def test_context_restores_on_exception():
    with pytest.raises(RuntimeError, match="boom"):
        with cxrkit.config_context(channels_last=False):
            raise RuntimeError("boom")
    assert cxrkit.get_config()["channels_last"] == "auto"


def test_context_restores_values_set_inside_it():
    with cxrkit.config_context(trim_every=4):
        cxrkit.set_config(decode_threads=5)
    assert cxrkit.get_config() == DEFAULTS


def test_set_config_persists_until_reset():
    try:
        cxrkit.set_config(predict_batch_size=7)
        assert cxrkit.get_config()["predict_batch_size"] == 7
    finally:
        cxrkit.set_config(predict_batch_size=None)


def test_unknown_key_is_a_clear_error_and_changes_nothing():
    with pytest.raises(
        ConfigurationError,
        match=r"'tune_maloc' is not a cxrkit configuration key. Did you mean 'tune_malloc'\? "
        r"Known keys: channels_last, decode_threads, grayscale_conv, predict_batch_size, "
        r"show_progress, trim_every, tune_malloc.",
    ):
        cxrkit.set_config(decode_threads=2, tune_maloc=False)
    assert cxrkit.get_config() == DEFAULTS
    with pytest.raises(ConfigurationError, match="'colour' is not a cxrkit configuration key"):
        with cxrkit.config_context(colour=1):
            pass  # pragma: no cover


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("channels_last", "yes", "'auto', True or False"),
        ("decode_threads", 0, r"None or an int in the range \[1, inf\)"),
        ("trim_every", None, r"an int in the range \[1, inf\)"),
        ("predict_batch_size", True, r"None or an int in the range \[1, inf\)"),
    ],
)
def test_values_are_validated(key, value, expected):
    with pytest.raises(
        ConfigurationError,
        match=rf"The '{key}' configuration key of cxrkit must be {expected}. "
        rf"Got {value!r} instead.",
    ):
        cxrkit.set_config(**{key: value})


def test_configuration_is_thread_local():
    seen = {}

    def other() -> None:
        seen["other"] = cxrkit.get_config()["decode_threads"]

    with cxrkit.config_context(decode_threads=3):
        t = threading.Thread(target=other)
        t.start()
        t.join()
        assert cxrkit.get_config()["decode_threads"] == 3
    assert seen["other"] is None


def test_switches_are_not_estimator_parameters():
    for est in (CXRClassifier(), SnapshotEnsembleClassifier(), CXREmbedder()):
        assert not {"grayscale_conv", "channels_last", "tune_malloc"} & set(est.get_params())


SWITCHES_OFF = {
    "grayscale_conv": False,
    "channels_last": False,
    "tune_malloc": False,
    "decode_threads": 1,
    "predict_batch_size": 3,
    "trim_every": 1,
}
SWITCHES_ON = {"grayscale_conv": True, "channels_last": True, "tune_malloc": True}


@pytest.fixture(scope="module")
def tiny():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 255, (16, 20, 20), dtype=np.uint8)
    X[8:, :, :10] = 255  # a learnable difference between the classes
    y = np.array([0] * 8 + [1] * 8)
    return X, y


@pytest.mark.parametrize("freeze", ["none", "backbone"])
def test_results_equal_with_switches_on_and_off(tiny, freeze):
    X, y = tiny
    kw = dict(input_size=16, max_epochs=2, batch_size=4, random_state=0, freeze=freeze)
    with cxrkit.config_context(**SWITCHES_OFF):
        off = CXRClassifier("tiny_cnn", feature_cache=False, **kw).fit(X, y)
        p_off = off.predict_proba(X)
    with cxrkit.config_context(**SWITCHES_ON):
        on = CXRClassifier("tiny_cnn", **kw).fit(X, y)
        p_on = on.predict_proba(X)
    np.testing.assert_allclose(
        on.history_[:, "train_loss"], off.history_[:, "train_loss"], atol=1e-5
    )
    np.testing.assert_allclose(p_on, p_off, atol=1e-5)
    assert on.net_.channels_last_input is True and off.net_.channels_last_input is False


def test_embeddings_equal_with_switches_on_and_off(tiny):
    X, _ = tiny
    with cxrkit.config_context(**SWITCHES_OFF):
        a = CXREmbedder("tiny_cnn", input_size=16, feature_cache=False).fit(X).transform(X)
    with cxrkit.config_context(**SWITCHES_ON):
        b = CXREmbedder("tiny_cnn", input_size=16, feature_cache=False).fit(X).transform(X)
    np.testing.assert_allclose(a, b, atol=1e-6)


@pytest.mark.parametrize(("show", "expected"), [(True, True), (False, False), ("auto", False)])
def test_show_progress_adds_an_epoch_bar(tiny, capsys, show, expected):
    X, y = tiny
    ens = SnapshotEnsembleClassifier(
        CXRClassifier("tiny_cnn", input_size=16, max_epochs=2, random_state=0),
        policy="last",
        n_snapshots=2,
        interval=1,
    )
    with cxrkit.config_context(show_progress=show):  # "auto": stderr is not a terminal here
        ens.fit(X, y)
    names = [name for name, _ in ens.estimator_.net_.callbacks_]
    assert ("progress" in names) is expected
    err = capsys.readouterr().err
    assert ("CXRClassifier" in err and "epoch" in err) is expected


def test_show_progress_results_equal(tiny):
    X, y = tiny
    kw = dict(input_size=16, max_epochs=2, random_state=0)
    with cxrkit.config_context(show_progress=True):
        a = CXRClassifier("tiny_cnn", **kw).fit(X, y).predict_proba(X)
    with cxrkit.config_context(show_progress=False):
        b = CXRClassifier("tiny_cnn", **kw).fit(X, y).predict_proba(X)
    np.testing.assert_array_equal(a, b)

"""Fault injection: SIGKILL at random points of ``fit`` with a ``cache_dir`` (and of the
``save_model`` that follows) never leaves a cache that serves a wrong feature, nor a
model folder that loads as anything but one complete save."""

from __future__ import annotations

import os
import random
import signal
import time

import numpy as np
import pytest
from sklearn.base import clone

from cxrkit import load_model, save_model
from cxrkit.errors import ModelFormatError
from cxrkit.estimators._cache import check_features, clear_feature_cache

from .test_cache_reliability import _clf
from .test_cache_reliability import _data as _cache_data

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_feature_cache()
    yield
    clear_feature_cache()


def _fit_and_save_forever(clf, X, y, model_dir, ready_w):
    """Child process: fit with the shared cache_dir and save, until killed."""
    os.write(ready_w, b"1")
    while True:
        clear_feature_cache()  # read and write the disk store, not this process's memory
        save_model(clone(clf).fit(X, y), model_dir)


def _entries(cache_dir):
    """Stored entries; a killed writer may leave its unnamed ``.tmp-*`` file, never read."""
    return sorted(p for p in cache_dir.rglob("*.npy") if not p.name.startswith(".tmp-"))


def test_sigkill_during_fit_with_cache_dir_and_save(tmp_path):
    X, y = _cache_data(48)
    reference = _clf().fit(X, y)  # no disk cache at all
    ref_proba = reference.predict_proba(X)
    cache_dir = tmp_path / "cache"
    model_dir = tmp_path / "model"
    clf = _clf(cache_dir=str(cache_dir))
    clear_feature_cache()
    t0 = time.perf_counter()
    save_model(clone(clf).fit(X, y), model_dir)  # fills the disk cache once
    cold_round = time.perf_counter() - t0
    clear_feature_cache()
    t0 = time.perf_counter()
    save_model(clone(clf).fit(X, y), model_dir)  # reads it
    filling = max(cold_round - (time.perf_counter() - t0), 0.01)
    width = np.load(_entries(cache_dir)[0]).shape[0]
    rng = random.Random(0)
    outcomes = []
    for attempt in range(20):
        # The child must compute (and write) part of the cache again: drop half of it.
        for entry in _entries(cache_dir):
            if rng.random() < 0.5:
                entry.unlink()
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child never returns
            try:
                _fit_and_save_forever(clf, X, y, model_dir, ready_w)
            finally:
                os._exit(1)
        os.read(ready_r, 1)
        # Half of the kills land while features are computed and written, the rest anywhere.
        time.sleep(rng.uniform(0, filling if attempt % 2 else 1.5 * cold_round))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(ready_r)
        os.close(ready_w)

        # Every entry the killed process left behind is complete or absent.
        for entry in _entries(cache_dir):
            assert check_features(np.load(entry), width) is None, entry

        # The model folder loads as one complete save, or is refused with a message.
        try:
            loaded = load_model(model_dir)
        except ModelFormatError as exc:
            assert "interrupted" in str(exc) or "does not match the manifest" in str(exc)
            outcomes.append("refused")
        else:
            np.testing.assert_allclose(loaded.predict_proba(X), ref_proba, atol=1e-6)
            outcomes.append("loaded")

        # The cache never serves a wrong feature: a fit reading it (and the orphaned
        # claims of the killed process) gives the uncached model's probabilities.
        clear_feature_cache()
        again = clone(clf).fit(X, y).predict_proba(X)
        np.testing.assert_allclose(again, ref_proba, atol=1e-6)
        save_model(clone(clf).fit(X, y), model_dir)  # repair before the next attempt
    assert len(outcomes) == 20 and set(outcomes) <= {"loaded", "refused"}

"""Fault injection: SIGKILL at random points of save_model never leaves a model
folder that loads as a mix; it loads as one complete save or is refused."""

from __future__ import annotations

import os
import random
import signal
import time

import numpy as np
import pytest

from cxrkit import CXRClassifier, SnapshotEnsembleClassifier, load_model, save_model
from cxrkit.errors import ModelFormatError
from cxrkit.estimators import _atomic

from ..conftest import make_separable

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")


def _ensemble(classes, seed, X, y):
    y = np.where(y == "pos", classes[1], classes[0])
    base = CXRClassifier("tiny_cnn", input_size=16, max_epochs=2, batch_size=8, random_state=seed)
    return SnapshotEnsembleClassifier(base, policy="last", n_snapshots=2, interval=1).fit(X, y)


def _saver(models, d, use_exchange, ready_w):
    """Child process: save the two models over each other until killed."""
    if not use_exchange:
        _atomic._exchange = lambda a, b: False  # the two-rename fallback
    os.write(ready_w, b"1")
    k = 0
    while True:
        save_model(models[k % 2], d)
        k += 1


def test_sigkill_during_save_model(tmp_path):
    X, y = make_separable(16, 16)
    old = _ensemble(("covid", "normal"), 0, X, y)
    new = _ensemble(("covid", "pneumonia"), 1, X, y)
    expected = {tuple(m.classes_): m.member_proba(X) for m in (old, new)}
    d = tmp_path / "model"
    save_model(new, d)  # warm-up
    t0 = time.perf_counter()
    save_model(old, d)
    one_save = time.perf_counter() - t0
    rng = random.Random(0)
    outcomes = []
    for attempt in range(20):
        ready_r, ready_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child never returns
            try:
                _saver((new, old), d, attempt % 2 == 0, ready_w)
            finally:
                os._exit(1)
        os.read(ready_r, 1)
        time.sleep(rng.uniform(0, 3 * one_save))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(ready_r)
        os.close(ready_w)
        try:
            loaded = load_model(d)
        except ModelFormatError as exc:  # refused with a clear message
            assert "interrupted" in str(exc) or "does not match the manifest" in str(exc)
            outcomes.append("refused")
            for p in _atomic.interrupted_saves(d)[:1]:
                os.rename(p, d)  # the recovery the message names
            continue
        key = tuple(loaded.classes_)
        np.testing.assert_allclose(loaded.member_proba(X), expected[key], atol=1e-6)
        outcomes.append(key[1])
    assert len(outcomes) == 20 and set(outcomes) <= {"normal", "pneumonia", "refused"}
    save_model(new, d)  # a later save removes what the killed ones left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    np.testing.assert_allclose(
        load_model(d).member_proba(X), expected[("covid", "pneumonia")], atol=1e-6
    )

"""Feature cache: no import-time effects, a private session folder, checked entries, claims."""

from __future__ import annotations

import logging
import os
import pickle
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone

import cxrkit.estimators._cache._session as session
from cxrkit.estimators import CXRClassifier
from cxrkit.estimators._cache import (
    SESSION_ENV,
    DiskStore,
    FeatureCache,
    check_features,
    clear_feature_cache,
    feature_cache_stats,
    start_session,
    worker_cache_dir,
)


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_feature_cache()
    yield
    clear_feature_cache()


def _data(n: int = 24, size: int = 16):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 255, (n, size, size), dtype=np.uint8)
    y = np.array(["a", "b"] * (n // 2))
    X[y == "b", 4:12, 4:12] = 250
    return X, y


def _clf(**kw):
    params = dict(
        input_size=16,
        freeze="backbone",
        augment="hflip",
        max_epochs=2,
        batch_size=8,
        random_state=0,
    )
    params.update(kw)
    return CXRClassifier("tiny_cnn", **params)


# -- nothing at import time; a private session folder on first use ------------------------
def test_import_sets_no_environment_and_first_use_creates_a_private_folder():
    code = (
        "import os, stat, tempfile\n"
        "import cxrkit\n"
        "print(sorted(k for k in os.environ if k.startswith('CXRKIT_')))\n"
        "print(os.path.lexists(os.path.join(tempfile.gettempdir(), "
        "f'cxrkit-features-{os.getpid()}')))\n"
        "cxrkit.feature_cache_stats()\n"
        "d = os.environ['CXRKIT_SESSION_DIR']\n"
        "print(oct(stat.S_IMODE(os.lstat(d).st_mode)), os.path.isdir(d))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("CXRKIT_")}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    ).stdout.split("\n")
    assert out[0] == "[]"  # importing cxrkit left the environment alone
    assert out[1] == "False"  # and created no folder under a predictable name
    assert out[2] == "0o700 True"  # first use: a folder only this user can enter


def test_preplanted_predictable_folder_is_not_used(tmp_path, monkeypatch):
    """A symlink under the name cxrkit once used (/tmp/cxrkit-features-<pid>) is ignored:
    a worker process shares the unpredictable mode-0700 session folder instead."""
    planted = Path(tempfile.gettempdir()) / f"cxrkit-features-{os.getpid()}"
    evil = tmp_path / "evil"
    evil.mkdir()
    if os.path.lexists(planted):
        pytest.skip(f"{planted} exists already")
    planted.symlink_to(evil, target_is_directory=True)
    try:
        shared = start_session()
        for entry in shared.iterdir():
            shutil.rmtree(entry)
        # from here on, this process acts as a worker process of that session
        monkeypatch.setattr(session, "_is_main_process", lambda: False)
        monkeypatch.setattr(session, "_own", {})
        monkeypatch.delenv("CXRKIT_CACHE_DIR", raising=False)
        X, y = _data()
        proba = _clf(max_epochs=1).fit(X, y).predict_proba(X)
    finally:
        planted.unlink()
    assert np.isfinite(proba).all()
    assert not list(evil.rglob("*"))  # nothing written to (or read from) the planted folder
    assert shared != planted and not shared.is_symlink() and worker_cache_dir() == shared
    assert stat.S_IMODE(os.lstat(shared).st_mode) == 0o700
    assert len(list(shared.rglob("*.npy"))) == 2 * len(X)  # the worker's features went there


@pytest.mark.parametrize("kind", ["symlink", "foreign", "open"])
def test_unsafe_session_folder_is_refused_with_a_warning(kind, tmp_path, monkeypatch, caplog):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    target = real
    if kind == "symlink":
        target = tmp_path / "link"
        target.symlink_to(real, target_is_directory=True)
    elif kind == "foreign":
        uid = os.lstat(real).st_uid
        monkeypatch.setattr(session.os, "getuid", lambda: uid + 1)
    else:
        real.chmod(0o777)
    monkeypatch.setattr(session, "_is_main_process", lambda: False)
    monkeypatch.setenv(SESSION_ENV, str(target))
    monkeypatch.delenv("CXRKIT_CACHE_DIR", raising=False)
    with caplog.at_level(logging.WARNING, logger="cxrkit.feature_cache"):
        assert worker_cache_dir() is None
        assert session.resolve_cache_dir(None) is None
    why = {
        "symlink": "it is a symbolic link",
        "foreign": "it is owned by uid",
        "open": "other users can use it (mode 0777, expected 0700)",
    }[kind]
    assert re.search(
        rf"does not share cached features through '{re.escape(str(target))}' "
        rf"\(named by {SESSION_ENV}\): {re.escape(why)}",
        caplog.text,
    )


def test_pickled_estimator_carries_the_session_to_a_worker(monkeypatch):
    """A worker started before the session (a reused pool) learns it from the estimator."""
    blob = pickle.dumps(_clf())
    own = start_session()
    monkeypatch.setattr(session, "_is_main_process", lambda: False)
    monkeypatch.setattr(session, "_own", {})  # as in another process
    monkeypatch.delenv(SESSION_ENV)
    clf = pickle.loads(blob)
    assert os.environ[SESSION_ENV] == str(own) and worker_cache_dir() == own
    assert "_feature_session" not in vars(clf) and clf.get_params() == _clf().get_params()


# -- entries are checked when read ---------------------------------------------------------
def test_invalid_disk_entries_are_misses_recomputed_and_counted(tmp_path, caplog):
    X, y = _data()
    clf = _clf(cache_dir=str(tmp_path))
    ref = clf.fit(X, y).predict_proba(X)
    files = sorted(tmp_path.rglob("*.npy"))
    width = np.load(files[0]).shape[0]
    np.save(files[0], np.full(width, np.nan, np.float32))
    np.save(files[1], np.zeros(width + 1, np.float32))
    np.save(files[2], np.zeros(width, np.float64))
    files[3].write_bytes(b"\x93NUMPY truncated")
    np.save(files[4], np.full(width, np.inf, np.float32))
    clear_feature_cache()
    with caplog.at_level(logging.WARNING, logger="cxrkit.feature_cache"):
        again = clone(clf).fit(X, y).predict_proba(X)
    stats = feature_cache_stats()
    assert stats["invalid"] == 5 and stats["misses"] == 5
    assert stats["disk_hits"] == 2 * len(X) - 5
    np.testing.assert_allclose(again, ref, atol=1e-6)
    reported = re.findall(
        r"(\d+) cached feature file\(s\) were not valid and were "
        r"recomputed \(e\.g\. '.*\.npy': ",
        caplog.text,
    )
    assert sum(map(int, reported)) == 5  # one warning per view
    for f in files[:5]:  # replaced by valid entries
        assert check_features(np.load(f), width) is None


def test_get_many_rejects_a_wrong_shape_instead_of_failing(tmp_path):
    DiskStore(tmp_path).write(DiskStore.entry_path(tmp_path, "ns", "a"), np.zeros(5, np.float32))
    cache = FeatureCache()
    got = cache.get_many(
        "ns", ["a"], lambda pos: np.ones((1, 3), np.float32), cache_dir=tmp_path, width=3
    )
    np.testing.assert_array_equal(got, np.ones((1, 3)))
    assert cache.stats()["invalid"] == 1 and cache.stats()["misses"] == 1


# -- claims say what they wait for, and old ones are broken --------------------------------
def _claim(tmp_path, key, text, age=0.0):
    path = DiskStore.entry_path(tmp_path, "ns", key).with_suffix(".claim")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if age:
        os.utime(path, (time.time() - age, time.time() - age))
    return path


def test_waiting_for_a_claim_names_host_pid_and_age(tmp_path, caplog):
    _claim(tmp_path, "a", "elsewhere 12345")
    cache = FeatureCache(claim_timeout=1.0)
    cache.claim_report_after = 0.2
    with caplog.at_level(logging.INFO, logger="cxrkit.feature_cache"):
        got = cache.get_many(
            "ns", ["a"], lambda pos: np.ones((1, 3), np.float32), cache_dir=tmp_path
        )
    np.testing.assert_array_equal(got, np.ones((1, 3)))
    assert re.search(
        r"Waited \d+ s for 1 cached feature\(s\) that another process is "
        r"computing in .* \(claimed by pid 12345 on host 'elsewhere', \d+ s ago\)\. "
        r"A claim older than 1 s is taken over",
        caplog.text,
    )
    assert re.search(
        r"Computing 1 cached feature\(s\) in .* whose claimer stopped: claimed by "
        r"pid 12345 on host 'elsewhere', \d+ s ago \(older than the claim timeout "
        r"of 1 s\)",
        caplog.text,
    )


def test_claim_older_than_the_default_timeout_is_broken_at_once(tmp_path):
    claim = _claim(tmp_path, "a", "elsewhere 12345", age=300)
    result = {}

    def work():
        result["rows"] = FeatureCache().get_many(
            "ns", ["a"], lambda pos: np.ones((1, 3), np.float32), cache_dir=tmp_path
        )

    t = threading.Thread(target=work, daemon=True)
    t.start()
    t.join(timeout=10)
    assert not t.is_alive(), "a 300 s old claim from another host was waited for"
    np.testing.assert_array_equal(result["rows"], np.ones((1, 3)))
    assert not claim.exists()
    assert FeatureCache().claim_timeout == 120.0

"""Feature cache: exactness, content keys shared by clones, bounds, disk store."""

from __future__ import annotations

import logging
import shutil
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, cross_validate

from cxrkit.architectures import create_architecture
from cxrkit.errors import ConfigurationError
from cxrkit.estimators import CXRClassifier, FeatureAwareNet
from cxrkit.estimators._cache import (
    DiskStore,
    FeatureCache,
    backbone_fingerprint,
    cached_features,
    clear_feature_cache,
    feature_cache_stats,
)


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_feature_cache()
    yield
    clear_feature_cache()


def _data(n: int = 24, size: int = 16, seed: int = 0):
    rng = np.random.default_rng(seed)
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
        lr_schedule="cyclic",
    )
    params.update(kw)
    return CXRClassifier("tiny_cnn", **params)


@pytest.mark.parametrize("freeze", ["backbone", "all_but_last"])
def test_cached_training_matches_uncached(freeze):
    X, y = _data()
    cached = _clf(freeze=freeze, feature_cache=True).fit(X, y)
    assert feature_cache_stats()["misses"] == 2 * len(X)  # two views per image
    plain = _clf(freeze=freeze, feature_cache=False).fit(X, y)
    np.testing.assert_allclose(cached.predict_proba(X), plain.predict_proba(X), atol=1e-5)
    np.testing.assert_allclose(
        cached.history_[:, "train_loss"], plain.history_[:, "train_loss"], atol=1e-5
    )
    # the full network is reachable, and it is what skorch trained
    assert cached.module_ is cached.net_.module_
    assert isinstance(cached.net_, FeatureAwareNet)


def test_cached_features_equal_backbone_output_in_eval_mode():
    X, _ = _data(8)
    net = create_architecture("tiny_cnn", freeze="backbone")
    prep = net.preprocessing.__class__(**{**net.preprocessing.to_dict(), "input_size": 16})
    images = (X / 255.0).astype(np.float16)
    feats = cached_features(net, images, prep, views=("orig", "hflip"))
    from cxrkit.estimators import to_tensor

    net.eval()
    with torch.no_grad():
        for view, flip in (("orig", False), ("hflip", True)):
            xb = torch.stack([to_tensor(im, prep, flip) for im in images])
            np.testing.assert_allclose(
                net.forward_head(torch.from_numpy(feats[view])), net(xb), atol=1e-5
            )


def test_frozen_backbone_parameters_unchanged():
    X, y = _data()
    clf = _clf(max_epochs=3)
    torch.manual_seed(0)
    before = {k: v.clone() for k, v in clf.build_module().backbone.state_dict().items()}
    clf.fit(X, y)
    after = clf.module_.backbone.state_dict()
    for k, v in before.items():
        assert torch.equal(v, after[k]), k
    head_before = _clf().build_module().head.state_dict()
    assert any(not torch.equal(v, clf.module_.head.state_dict()[k]) for k, v in head_before.items())


def test_clones_hit_the_same_cache():
    X, y = _data()
    first = _clf()
    first.fit(X, y)
    assert feature_cache_stats()["hits"] == 0
    n_miss = feature_cache_stats()["misses"]
    clone(first).fit(X, y)
    stats = feature_cache_stats()
    assert stats["misses"] == n_miss
    assert stats["hits"] == 2 * len(X)


def test_cross_validate_and_grid_search_share_features():
    X, y = _data()
    _clf(max_epochs=1).fit(X, y)  # computes every image's features once
    base = feature_cache_stats()["misses"]
    cross_validate(_clf(max_epochs=1), X, y, cv=3, scoring="roc_auc")
    GridSearchCV(_clf(max_epochs=1), {"lr": [1e-3, 1e-2]}, cv=2, scoring="roc_auc").fit(X, y)
    stats = feature_cache_stats()
    assert stats["misses"] == base
    assert stats["hits"] > 0


def test_different_weights_or_preprocessing_miss():
    X, y = _data()
    _clf().fit(X, y)
    m0 = feature_cache_stats()["misses"]
    _clf(random_state=1).fit(X, y)  # other random backbone weights
    m1 = feature_cache_stats()["misses"]
    assert m1 == 2 * m0
    _clf(interpolation="nearest", input_size=12).fit(X, y)
    assert feature_cache_stats()["misses"] == 3 * m0


def test_not_used_when_backbone_trains_and_says_why(caplog):
    X, y = _data()
    with caplog.at_level(logging.INFO, logger="cxrkit.feature_cache"):
        clf = _clf(freeze="none").fit(X, y)
    assert feature_cache_stats()["misses"] == 0
    assert "Feature cache not used: the backbone is trained (freeze='none')" in caplog.text
    assert clf.predict_proba(X).shape == (len(X), 2)


def test_not_used_with_random_transform(caplog):
    X, y = _data()

    class Jitter:
        deterministic = False

        def __call__(self, img):
            return img

        def __repr__(self):
            return "Jitter()"

    with caplog.at_level(logging.INFO, logger="cxrkit.feature_cache"):
        _clf(transforms=[Jitter()]).fit(X, y)
    assert feature_cache_stats()["misses"] == 0
    assert (
        "Feature cache not used: transform Jitter() is random (deterministic=False)." in caplog.text
    )


def test_switch_off_and_bad_value():
    X, y = _data()
    _clf(feature_cache=False).fit(X, y)
    assert feature_cache_stats()["misses"] == 0
    from cxrkit.errors import ConfigurationError

    with pytest.raises(
        ConfigurationError,
        match=r"The 'feature_cache' parameter of CXRClassifier must be a str among "
        r"\{'auto'\} or an instance of 'bool'.*\. Got 'yes' instead\.",
    ):
        _clf(feature_cache="yes").fit(X, y)


def test_fingerprint_changes_when_weights_change():
    net = create_architecture("tiny_cnn", freeze="backbone")
    fp = backbone_fingerprint(net)
    assert backbone_fingerprint(net) == fp
    with torch.no_grad():
        net.backbone[0].weight.add_(1.0)
    assert backbone_fingerprint(net) != fp


def test_lru_eviction_respects_byte_limit():
    cache = FeatureCache(max_bytes=3 * 40)  # three 10-float32 rows
    keys = [f"k{i}" for i in range(5)]
    calls = []

    def compute(pos):
        calls.append(list(pos))
        return np.ones((len(pos), 10), dtype=np.float32)

    cache.get_many("ns", keys, compute)
    stats = cache.stats()
    assert stats["bytes"] <= 120 and stats["entries"] == 3 and stats["evictions"] == 2
    cache.get_many("ns", keys[-3:], compute)  # most recent three: hits
    assert cache.stats()["hits"] == 3
    cache.get_many("ns", keys[:1], compute)  # evicted: recomputed
    assert calls[-1] == [0]


def test_disk_store_shared_between_caches(tmp_path):
    keys = ["x", "y"]
    rows = np.arange(6, dtype=np.float32).reshape(2, 3)
    a = FeatureCache()
    a.get_many("ns", keys, lambda pos: rows[pos], cache_dir=tmp_path)
    files = sorted(p.name for p in tmp_path.rglob("*.npy"))
    assert files == ["x.npy", "y.npy"]
    assert not list(tmp_path.rglob(".tmp-*"))
    b = FeatureCache()  # e.g. another process

    def fail(pos):
        raise AssertionError("should have been read from disk")

    got = b.get_many("ns", keys, fail, cache_dir=tmp_path)
    np.testing.assert_array_equal(got, rows)
    assert b.stats()["disk_hits"] == 2


def _slow_rows(rows, calls, seconds_per_row=0.02):
    def compute(pos):
        calls.append(list(pos))
        time.sleep(seconds_per_row * len(pos))  # long enough for the other "process" to arrive
        return rows[pos]

    return compute


def test_concurrent_misses_are_split_not_duplicated(tmp_path):
    """Two stores (as two worker processes) missing the same rows at once compute each
    row once between them: claimed rows are read when the claimer has written them."""
    keys = [f"k{i}" for i in range(40)]
    rows = np.arange(40 * 3, dtype=np.float32).reshape(40, 3)
    caches, calls = [FeatureCache(), FeatureCache()], [[], []]
    for c in caches:
        c.claim_chunk = 4
    out = [None, None]
    start = threading.Barrier(2)

    def work(j):
        start.wait()
        out[j] = caches[j].get_many(
            "ns", keys, _slow_rows(rows, calls[j], 0.05), cache_dir=tmp_path
        )

    threads = [threading.Thread(target=work, args=(j,)) for j in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for j in range(2):
        np.testing.assert_array_equal(out[j], rows)
    done = [sorted(i for c in calls[j] for i in c) for j in range(2)]
    assert sorted(done[0] + done[1]) == list(range(40))  # every row computed exactly once
    assert done[0] and done[1]  # and both did part of it
    stats = [c.stats() for c in caches]
    assert stats[0]["misses"] + stats[1]["misses"] == 40
    assert all(s["hits"] + s["misses"] == 40 for s in stats)
    assert not list(tmp_path.rglob("*.claim")) and len(list(tmp_path.rglob("*.npy"))) == 40


def _claim_file(tmp_path, key, text):
    path = DiskStore.entry_path(tmp_path, "ns", key).with_suffix(".claim")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_claim_of_a_dead_process_is_taken_over(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # its pid is now dead
    claim = _claim_file(tmp_path, "b", f"{socket.gethostname()} {proc.pid}")
    rows = np.arange(6, dtype=np.float32).reshape(2, 3)
    calls = []
    got = FeatureCache().get_many("ns", ["a", "b"], _slow_rows(rows, calls), cache_dir=tmp_path)
    np.testing.assert_array_equal(got, rows)
    assert calls == [[0], [1]] and not claim.exists()


def test_claim_from_another_host_waits_then_times_out(tmp_path):
    claim = _claim_file(tmp_path, "a", "elsewhere 12345")
    rows = np.ones((1, 3), dtype=np.float32)
    cache = FeatureCache()
    cache.claim_timeout = 0.3  # a live claim from another machine is waited for this long
    calls = []
    t0 = time.perf_counter()
    got = cache.get_many("ns", ["a"], _slow_rows(rows, calls), cache_dir=tmp_path)
    assert time.perf_counter() - t0 >= 0.25 and calls == [[0]] and not claim.exists()
    np.testing.assert_array_equal(got, rows)


def test_failed_computation_releases_its_claims(tmp_path):
    def boom(pos):
        raise RuntimeError("backbone failed")

    with pytest.raises(RuntimeError, match="backbone failed"):
        FeatureCache().get_many("ns", ["a", "b"], boom, cache_dir=tmp_path)
    assert not list(tmp_path.rglob("*.claim"))  # the next process is not kept waiting
    rows = np.zeros((2, 3), dtype=np.float32)
    calls = []
    FeatureCache().get_many("ns", ["a", "b"], _slow_rows(rows, calls), cache_dir=tmp_path)
    assert calls == [[0, 1]]


def test_unwritable_cache_dir_is_a_configuration_error(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    bad = tmp_path / "a-file" / "cache"
    with pytest.raises(
        ConfigurationError,
        match=r"^The feature cache folder '.*a-file/cache' "
        r"cannot be written \(.*\)\. Pass a writable cache_dir \(or set "
        r"CXRKIT_CACHE_DIR to one\), or cache_dir=None",
    ):
        FeatureCache().get_many(
            "ns", ["a"], lambda pos: np.zeros((1, 2), np.float32), cache_dir=bad
        )


def test_cache_dir_env_var(tmp_path, monkeypatch):
    monkeypatch.setenv("CXRKIT_CACHE_DIR", str(tmp_path))
    X, y = _data()
    _clf(max_epochs=1).fit(X, y)
    assert len(list(tmp_path.rglob("*.npy"))) == 2 * len(X)
    clear_feature_cache()
    _clf(max_epochs=1).fit(X, y)
    assert feature_cache_stats()["disk_hits"] == 2 * len(X)


def test_snapshot_ensemble_on_cached_features_matches_uncached():
    from cxrkit.estimators import SnapshotEnsembleClassifier

    X, y = _data()

    def ens(fc):
        return SnapshotEnsembleClassifier(
            _clf(feature_cache=fc), n_snapshots=3, interval=1, policy="cyclic"
        ).fit(X, y)

    cached, plain = ens(True), ens(False)
    assert feature_cache_stats()["misses"] == 2 * len(X)
    assert len(cached.members_) == 3
    np.testing.assert_allclose(cached.member_proba(X), plain.member_proba(X), atol=1e-5)


def test_prediction_reuses_training_features_exactly(tmp_path):
    """A fold's held-out images were training images of other folds: predicting
    them must hit the cache, and give the uncached path's probabilities."""
    from PIL import Image

    X, y = _data()
    paths = []
    for i, img in enumerate(X):  # through files too: the same pixels as in training
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(img).save(paths[-1])
    paths = np.asarray(paths, dtype=object)
    clf = _clf(freeze="backbone").fit(paths, y)
    before = feature_cache_stats()
    cached = clf.predict_proba(paths)
    after = feature_cache_stats()
    assert after["misses"] == before["misses"] and after["hits"] == before["hits"] + len(X)
    plain = clone(clf).set_params(feature_cache=False).fit(paths, y).predict_proba(paths)
    np.testing.assert_allclose(cached, plain, atol=1e-5)
    clf.set_params(feature_cache=False)
    np.testing.assert_allclose(clf.predict_proba(paths), cached, atol=1e-5)
    assert feature_cache_stats()["hits"] == after["hits"]  # switched off: not consulted


def test_unfrozen_network_predicts_without_cache():
    X, y = _data()
    clf = _clf(freeze="none", augment=None).fit(X, y)
    clf.predict_proba(X)
    assert feature_cache_stats()["hits"] == 0 and feature_cache_stats()["misses"] == 0


def test_head_training_on_cached_features_uses_one_thread_and_restores():
    from skorch.callbacks import Callback

    class Threads(Callback):
        def initialize(self):
            self.seen = set()
            return self

        def on_batch_end(self, net, **kw):
            self.seen.add(torch.get_num_threads())

    X, y = _data()
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        seen = Threads()
        _clf(feature_cache=True, callbacks=[seen]).fit(X, y)
        assert seen.seen == {1}
        assert torch.get_num_threads() == 2
        seen = Threads()
        _clf(freeze="none", callbacks=[seen]).fit(X, y)
        assert seen.seen == {2}  # images through the whole net: threads help there
    finally:
        torch.set_num_threads(before)


def _fit_in_worker(X, y, clear):
    """Fit in a joblib worker process; return its cache statistics and store folder."""
    from cxrkit.estimators._cache import worker_cache_dir

    if clear:
        clear_feature_cache()
    _clf(max_epochs=1).fit(X, y)
    return feature_cache_stats(), str(worker_cache_dir())


def test_worker_processes_share_an_on_disk_store_without_cache_dir(monkeypatch):
    from joblib import Parallel, delayed

    from cxrkit.estimators._cache import start_session, worker_cache_dir

    monkeypatch.delenv("CXRKIT_CACHE_DIR", raising=False)
    assert worker_cache_dir() is None  # the main process keeps features in memory only
    shared = start_session()  # the session folder, created on first use of the cache
    for entry in shared.iterdir():
        shutil.rmtree(entry)
    X, y = _data()
    with Parallel(n_jobs=2, backend="loky") as par:
        first = par(delayed(_fit_in_worker)(X, y, True) for _ in range(2))
        assert {d for _, d in first} == {str(shared)}
        # one file per distinct image and view, whichever worker computed it
        assert len(list(shared.rglob("*.npy"))) == 2 * len(X)
        # a worker with an empty memory cache reads every feature from the shared store
        second = par(delayed(_fit_in_worker)(X, y, True) for _ in range(2))
    for stats, _ in second:
        assert stats["misses"] == 0
        assert stats["disk_hits"] == 2 * len(X)
    assert feature_cache_stats()["misses"] == 0  # nothing was computed in this process


def test_resolve_cache_dir_order(monkeypatch, tmp_path):
    import cxrkit.estimators._cache._session as fc

    monkeypatch.delenv("CXRKIT_CACHE_DIR", raising=False)
    assert fc.resolve_cache_dir(None) is None  # main process: memory only
    own = fc.start_session()
    monkeypatch.setattr(fc, "_is_main_process", lambda: False)
    parents = tmp_path / "parent"
    parents.mkdir(mode=0o700)
    monkeypatch.setenv(fc.SESSION_ENV, str(parents))
    assert fc.resolve_cache_dir(None) == str(parents)
    monkeypatch.setenv("CXRKIT_CACHE_DIR", str(tmp_path / "env"))
    assert fc.resolve_cache_dir(None) == str(tmp_path / "env")
    assert fc.resolve_cache_dir(tmp_path / "explicit") == str(tmp_path / "explicit")
    monkeypatch.setenv(fc.SESSION_ENV, str(own))  # not a child of another process
    monkeypatch.delenv("CXRKIT_CACHE_DIR")
    assert fc.resolve_cache_dir(None) is None


@pytest.mark.parametrize(
    "opts",
    [
        {"shuffle": True},
        {"shuffle": False, "drop_last": True},
        {"shuffle": True, "generator": "seeded"},
    ],
)
def test_feature_batches_equal_dataloader_batches_and_rng_stream(opts):
    from torch.utils.data import DataLoader

    from cxrkit.estimators._cache import FeatureBatches, FeatureDataset

    rng = np.random.default_rng(0)
    ds = FeatureDataset(
        rng.normal(size=(21, 5)), np.arange(21) % 2, rng.normal(size=(21, 5)), hflip=True
    )

    def run(make):
        torch.manual_seed(3)
        kw = dict(opts)
        if kw.get("generator") == "seeded":
            kw["generator"] = torch.Generator().manual_seed(7)
        batches = [b for _ in range(2) for b in make(ds, batch_size=4, **kw)]
        return batches, torch.rand(3)  # where the global stream stands afterwards

    ref, after_ref = run(DataLoader)
    new, after_new = run(FeatureBatches)
    assert (
        len(new)
        == len(ref)
        == 2 * len(FeatureBatches(ds, 4, **{k: v for k, v in opts.items() if k != "generator"}))
    )
    for (xr, yr), (xn, yn) in zip(ref, new):
        assert torch.equal(xr, xn) and torch.equal(yr, yn)
    assert torch.equal(after_ref, after_new)


def test_cached_fit_uses_feature_batches_unless_the_iterator_is_customised():
    from torch.utils.data import DataLoader

    from cxrkit.estimators._cache import FeatureBatches, FeatureDataset

    X, y = _data()
    fast = _clf(feature_cache=True).fit(X, y)
    ds = FeatureDataset(np.zeros((4, 8)), np.zeros(4))
    assert isinstance(fast.net_.get_iterator(ds, training=True), FeatureBatches)
    # an option FeatureBatches does not reproduce: skorch's DataLoader, same trajectory
    slow = _clf(feature_cache=True, iterator_train__num_workers=0).fit(X, y)
    assert isinstance(slow.net_.get_iterator(ds, training=True), DataLoader)
    np.testing.assert_array_equal(fast.history_[:, "train_loss"], slow.history_[:, "train_loss"])


def test_optimizer_holds_only_trainable_parameters():
    X, y = _data()
    clf = _clf(feature_cache=True).fit(X, y)
    in_opt = {id(p) for g in clf.net_.optimizer_.param_groups for p in g["params"]}
    trainable = {id(p) for p in clf.module_.parameters() if p.requires_grad}
    frozen = {id(p) for p in clf.module_.backbone.parameters()}
    assert in_opt == trainable and frozen and not (in_opt & frozen)
    whole = _clf(freeze="none", feature_cache=False, max_epochs=1).fit(X, y)
    n_opt = sum(len(g["params"]) for g in whole.net_.optimizer_.param_groups)
    assert n_opt == len(list(whole.module_.parameters()))


def test_channels_last_inside_inference_mode_keeps_normal_parameters():
    # A snapshot ensemble asks for cached features inside torch.inference_mode;
    # converting the backbone there must not turn its weights into inference
    # tensors (they carry no version counter: the next fingerprint would fail).
    from cxrkit.estimators import as_image_source, prepare_images
    from cxrkit.estimators._cache import compute_features
    from cxrkit.estimators._cache._keys import backbone_fingerprint

    X, y = _data()
    clf = CXRClassifier.from_recipe(
        "hall2020", architecture="tiny_cnn", input_size=16, max_epochs=1, random_state=0
    ).fit(X, y)
    net, prep = clf.module_, clf.preprocessing_
    images = prepare_images(as_image_source(X[:4]), prep)
    net.backbone.to(memory_format=torch.contiguous_format)
    conv = [p for p in net.backbone.parameters() if p.ndim == 4]
    assert conv and not conv[0].is_contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        compute_features(net, images, [0, 1, 2, 3], prep, False, "cpu", 4, channels_last=True)
    assert not any(p.is_inference() for p in net.backbone.parameters())
    assert backbone_fingerprint(net) == backbone_fingerprint(net)

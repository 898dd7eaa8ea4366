"""Hall2020CV folds on a real Dask cluster (2 worker processes on loopback) equal the serial run."""

from __future__ import annotations

import numpy as np
import pytest

distributed = pytest.importorskip(
    "distributed", reason="dask.distributed is not installed (pip install 'cxrkit[dask]')"
)

from cxrkit.datasets import load_dataset  # noqa: E402
from cxrkit.errors import ConfigurationError  # noqa: E402
from cxrkit.evaluation.protocols import Hall2020CV  # noqa: E402
from cxrkit.parallel import parallel_backend  # noqa: E402

SETTINGS = {
    "architecture": "tiny_cnn",
    "input_size": 32,
    "n_bootstraps": 50,
    "n_splits": 4,
    "n_snapshots": 2,
    "interval": 1,
    "max_epochs": 3,
    "if_threshold_not_reached": "last",
    "probes": False,
}
TRAIN_WHOLE = {"freeze": "none", "lr": 3e-3, "lr_schedule": None, "optimizer": "adam"}


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(
        n_workers=2,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=40,
    ) as lc:
        yield lc


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Synthetic X-rays written as PNGs: only paths travel to the workers."""
    return load_dataset(
        "synthetic",
        root=tmp_path_factory.mktemp("png"),
        n_patients=16,
        images_per_patient=2,
        size=32,
    )


def _assert_same(serial, dask):
    np.testing.assert_array_equal(dask.folds, serial.folds)
    np.testing.assert_allclose(dask.y_score, serial.y_score, rtol=0, atol=1e-12)
    assert dask.metrics["auc"] == serial.metrics["auc"]
    assert dask.extra["last_epoch_network"]["auc"] == serial.extra["last_epoch_network"]["auc"]
    assert [r["snapshot_epochs"] for r in dask.per_fold] == [
        r["snapshot_epochs"] for r in serial.per_fold
    ]


@pytest.mark.filterwarnings("ignore:Snapshot threshold not met")
def test_hall2020_cv_on_dask_equals_serial(cluster, files, tmp_path):
    import cxrkit

    with distributed.Client(cluster) as client:
        # the workers import this checkout of cxrkit and use one torch thread each
        seen = client.run(lambda: (cxrkit.__file__, __import__("torch").get_num_threads()))
        assert set(seen.values()) == {(cxrkit.__file__, 1)}

        p = Hall2020CV(**SETTINGS, estimator_params=TRAIN_WHOLE)
        serial = p.run(files, progress=False)
        with parallel_backend(scheduler=client), distributed.get_task_stream(client) as ts:
            on_dask = p.run(files, progress=False)
        assert len({t["worker"] for t in ts.data}) == 2  # both workers trained folds
    assert not np.isnan(serial.y_score).any() and set(serial.folds) == {0, 1, 2, 3}
    _assert_same(serial, on_dask)
    assert p.config()["n_jobs"] is None
    assert p.fitted_.predict_proba(files.X[:3]).shape == (3, 2)  # the last fold, usable here
    assert len(on_dask.gradcam) > 0


@pytest.mark.filterwarnings("ignore:Snapshot threshold not met")
def test_shared_feature_cache_on_dask(cluster, files, tmp_path):
    """Frozen backbone: one worker's features are read from the shared cache_dir by the other."""
    from cxrkit.estimators import clear_feature_cache, feature_cache_stats

    frozen = {**TRAIN_WHOLE, "freeze": "backbone", "cache_dir": str(tmp_path / "cache")}
    p = Hall2020CV(**SETTINGS, estimator_params=frozen)
    with distributed.Client(cluster) as client:
        client.run(clear_feature_cache)
        with parallel_backend(scheduler=client):
            on_dask = p.run(files, progress=False)
        stats = client.run(feature_cache_stats)
    assert sum(s["disk_hits"] for s in stats.values()) > 0, stats
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 2 * len(files.y)  # orig + hflip
    clear_feature_cache()
    p.estimator_params = {**frozen, "cache_dir": None}
    _assert_same(p.run(files, progress=False), on_dask)


def test_unreachable_scheduler_is_a_clear_error():
    with pytest.raises(
        ConfigurationError,
        match=r"Could not reach the Dask scheduler at "
        r"'tcp://127\.0\.0\.1:9' within 0\.5 s .*Start "
        r"one with 'dask scheduler'",
    ):
        with parallel_backend(scheduler="tcp://127.0.0.1:9", timeout=0.5):
            pass


def test_grid_search_on_dask_equals_serial(cluster, files):
    """scikit-learn's own joblib parallelism (candidates x folds) runs on the cluster too."""
    from sklearn.model_selection import GridSearchCV, StratifiedGroupKFold

    from cxrkit.estimators import CXRClassifier

    search = GridSearchCV(
        CXRClassifier("tiny_cnn", input_size=32, max_epochs=2, batch_size=8, random_state=0),
        {"lr": [1e-3, 1e-2]},
        cv=StratifiedGroupKFold(2),
        scoring="roc_auc",
        refit=False,
    )
    serial = search.fit(files.X, files.y, groups=files.groups).cv_results_
    with (
        distributed.Client(cluster) as client,
        parallel_backend(scheduler=client),
        distributed.get_task_stream(client) as ts,
    ):
        on_dask = search.fit(files.X, files.y, groups=files.groups).cv_results_
    assert len(ts.data) > 0  # the fits ran on the workers
    for key in ("split0_test_score", "split1_test_score", "rank_test_score"):
        np.testing.assert_array_equal(on_dask[key], serial[key])

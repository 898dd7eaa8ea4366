"""cxrkit.parallel.parallel_backend and protocol n_jobs on one machine (joblib's loky processes)."""

from __future__ import annotations

import builtins

import joblib
import numpy as np
import pandas as pd
import pytest
import torch

from cxrkit.datasets import load_dataset
from cxrkit.errors import ConfigurationError
from cxrkit.evaluation.protocols import Hall2020CV
from cxrkit.parallel import parallel_backend


def _active_n_jobs() -> int | None:
    from joblib.parallel import get_active_backend

    return get_active_backend()[1]


def test_n_jobs_only_configures_joblib():
    with parallel_backend(n_jobs=3) as client:
        assert client is None and _active_n_jobs() == 3
        assert joblib.Parallel(n_jobs=None)(joblib.delayed(abs)(-i) for i in range(3)) == [0, 1, 2]


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2"])
def test_invalid_n_jobs(bad):
    with pytest.raises(
        ConfigurationError,
        match=r"^n_jobs must be None, -1 \(all cores\) or a "
        r"positive int\. Got .* instead\.$",
    ):
        with parallel_backend(n_jobs=bad):
            pass


def test_missing_dask_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def no_dask(name, *args, **kwargs):
        if name.startswith(("dask", "distributed")):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_dask)
    with pytest.raises(
        ConfigurationError,
        match=r"^--scheduler 'tcp://h:8786' needs "
        r"dask\.distributed, which is not installed "
        r"\(.*\)\. Install it with: pip install "
        r"'cxrkit\[dask\]'$",
    ):
        with parallel_backend(scheduler="tcp://h:8786"):
            pass


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Snapshot threshold not met")
@pytest.mark.filterwarnings("ignore:A worker stopped while some jobs")  # loky resizing its pool
def test_protocol_n_jobs_2_equals_serial():
    ds = load_dataset("synthetic", n_patients=12, images_per_patient=2, size=32)
    kw = {
        "architecture": "tiny_cnn",
        "input_size": 32,
        "n_bootstraps": 20,
        "n_splits": 3,
        "n_snapshots": 2,
        "interval": 1,
        "max_epochs": 2,
        "if_threshold_not_reached": "last",
        "probe_epochs": 1,
        "probe_splits": 2,
        "estimator_params": {"freeze": "none", "lr": 3e-3, "lr_schedule": None},
    }
    serial = Hall2020CV(**kw).run(ds, progress=True)
    p = Hall2020CV(**kw, n_jobs=2)
    parallel = p.run(ds, progress=False)
    assert p.config()["n_jobs"] == 2 and parallel.config["n_jobs"] == 2
    np.testing.assert_array_equal(parallel.y_score, serial.y_score)
    assert pd.DataFrame(parallel.per_fold).equals(pd.DataFrame(serial.per_fold))
    # The probes' folds run in the workers too, with the same result.
    probe = {r["name"]: r for r in serial.validity}["shortcut_probe"]
    assert "auc" in probe["numbers"]
    assert {r["name"]: r for r in parallel.validity}["shortcut_probe"] == probe
    # The efficiency figure says how it was measured: serial in this process's threads,
    # parallel per worker process (loky gives each worker a share of the cores).
    assert serial.efficiency["processes"] == 1
    assert serial.efficiency["threads"] == torch.get_num_threads()
    assert parallel.efficiency["processes"] == 2 and parallel.efficiency["threads"] >= 1

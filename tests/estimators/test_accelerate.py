"""Data-parallel training through skorch's AccelerateMixin: 2 CPU processes (gloo) = 1 process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone

from cxrkit.estimators import AcceleratedCXRClassifier, CXRClassifier

from ._accelerate_train import PARAMS, make_data

pytest.importorskip(
    "accelerate", reason="accelerate is not installed (pip install 'cxrkit[accelerate]')"
)

SCRIPT = Path(__file__).with_name("_accelerate_train.py")
SRC = Path(__file__).resolve().parents[2] / "src"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_params_clone_like_cxrclassifier():
    clf = AcceleratedCXRClassifier("tiny_cnn", input_size=32, optimizer__momentum=0.9)
    params = clf.get_params()
    assert params["accelerator"] is None and params["optimizer__momentum"] == 0.9
    assert set(params) == set(CXRClassifier("tiny_cnn").get_params()) | {
        "accelerator",
        "optimizer__momentum",
    }
    assert clone(clf).get_params() == params


def test_two_cpu_processes_match_single_process_training(tmp_path):
    out = tmp_path / "out.npz"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
        "OMP_NUM_THREADS": "1",
    }
    # ``accelerate launch --multi_gpu`` starts the processes through torchrun; without a GPU the default
    # accelerator of AcceleratedCXRClassifier trains on the CPU with the gloo backend.
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(_free_port()),
        str(SCRIPT),
        str(out),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=150)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = np.load(out)
    assert int(got["world_size"]) == 2 and str(got["backend"]) == "gloo"
    np.testing.assert_array_equal(got["all_ranks"][0], got["all_ranks"][1])  # same weights

    X, y = make_data()
    single = CXRClassifier("tiny_cnn", feature_cache=False, **PARAMS).fit(X, y)
    # Each process computes the gradient of half of every batch; DDP averages them, which
    # equals the full batch's gradient up to float rounding.
    np.testing.assert_allclose(got["proba"], single.predict_proba(X)[:, 1], rtol=0, atol=1e-5)
    np.testing.assert_allclose(got["train_acc"], single.history_[:, "train_acc"])

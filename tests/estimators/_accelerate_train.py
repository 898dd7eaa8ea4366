"""Trains a tiny AcceleratedCXRClassifier; launched by test_accelerate.py in 2 processes.

Usage: accelerate launch --cpu --num_processes 2 _accelerate_train.py OUT.npz
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)

# Shared with the single-process reference in test_accelerate.py.
PARAMS = {
    "input_size": 32,
    "freeze": "backbone",
    "module__dropout": 0.0,
    "batch_size": 8,
    "max_epochs": 4,
    "lr": 1e-2,
    "optimizer": "adam",
    "iterator_train__shuffle": False,
    "random_state": 0,
}


def make_data(n: int = 48, size: int = 32, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The separable toy task of tests/conftest.py (this file also runs as a script)."""
    root = str(Path(__file__).resolve().parents[2])
    if root not in sys.path:
        sys.path.insert(0, root)
    from tests.conftest import make_separable

    return make_separable(n, size, seed)


def main(out: str) -> None:
    from cxrkit.estimators import AcceleratedCXRClassifier

    X, y = make_data()
    clf = AcceleratedCXRClassifier("tiny_cnn", **PARAMS).fit(X, y)
    acc = clf.accelerator_
    proba = clf.predict_proba(X)[:, 1]
    gathered = acc.gather(torch.as_tensor(proba).unsqueeze(0)).cpu().numpy()  # every rank's
    if acc.is_main_process:
        np.savez(
            out,
            proba=proba,
            all_ranks=gathered,
            world_size=acc.num_processes,
            backend=str(acc.state.backend),
            train_acc=np.array(clf.history_[:, "train_acc"]),
        )
    # Tear the process group down before the interpreter exits: a gloo group left to the
    # interpreter's shutdown aborts now and then ("terminate called without an active exception").
    acc.end_training()


if __name__ == "__main__":
    main(sys.argv[1])

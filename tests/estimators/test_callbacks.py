"""Callbacks: the cosine-restart schedule is torch's, with the published LR sequence."""

from __future__ import annotations

import math

import numpy as np

from cxrkit.estimators import CosineRestarts, CXRClassifier


def _fit_recording(n_images: int, batch_size: int, max_epochs: int, cycle_epochs: int):  # type: ignore[no-untyped-def]
    from skorch.callbacks import Callback

    seen: list[float] = []

    class Record(Callback):
        def on_batch_begin(self, net, training=False, **kwargs):  # type: ignore[no-untyped-def]
            if training:
                seen.append(net.optimizer_.param_groups[0]["lr"])

    rng = np.random.default_rng(0)
    X = rng.integers(0, 255, (n_images, 8, 8), dtype=np.uint8)
    y = np.array([0, 1] * (n_images // 2))
    clf = CXRClassifier(
        "tiny_cnn",
        input_size=8,
        lr=0.01,
        lr_schedule="cosine_restarts",
        lr_schedule__cycle_epochs=cycle_epochs,
        batch_size=batch_size,
        max_epochs=max_epochs,
        random_state=0,
        callbacks=[("record", Record())],
    )
    clf.fit(X, y)
    return seen, clf


def test_cosine_restarts_gives_the_published_sequence():
    seen, clf = _fit_recording(n_images=10, batch_size=4, max_epochs=6, cycle_epochs=2)
    per_epoch = 3  # ceil(10 / 4)
    cycle = 2 * per_epoch
    expected = [0.01 / 2 * (math.cos(math.pi * (t % cycle) / cycle) + 1) for t in range(6 * 3)]
    assert len(seen) == len(expected)
    np.testing.assert_array_equal(seen, expected)  # the same floats, restarts included
    assert seen[cycle] == 0.01 and seen[2 * cycle] == 0.01
    assert isinstance(dict(clf.net_.callbacks_)["lr_schedule"], CosineRestarts)


def test_cosine_restarts_is_a_skorch_lr_scheduler():
    from skorch.callbacks import LRScheduler
    from torch.optim.lr_scheduler import CosineAnnealingWarmRestarts

    cb = CosineRestarts(cycle_epochs=3)
    assert isinstance(cb, LRScheduler)
    assert cb.policy is CosineAnnealingWarmRestarts and cb.step_every == "batch"
    assert cb.get_params()["cycle_epochs"] == 3


def test_recorded_lr_is_that_of_the_last_batch_of_the_epoch():
    seen, clf = _fit_recording(n_images=10, batch_size=4, max_epochs=4, cycle_epochs=2)
    recorded = list(clf.history_[:, "lr"])
    assert recorded == [seen[3 * (e + 1) - 1] for e in range(4)]
    assert recorded[1] < 0.01 * 0.2  # the end of a cycle, not the restart that follows

"""The process heap: freed memory goes back to the OS in long predictions; kept for reuse in training."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import cxrkit
from cxrkit._memory import glibc_malloc_available, release_free_memory, retain_freed_memory


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc_trim is Linux-only")
def test_release_free_memory_returns_heap_to_the_os():
    # Freeing one mmapped 3 MiB block makes glibc raise its mmap threshold, so the
    # next blocks of that size come from the heap; freed below a live block, they
    # stay resident -- the creep seen in long predictions.
    first = np.ones(3 * 2**20 // 8 + 1000)
    del first
    blocks = [np.ones(3 * 2**20 // 8) for _ in range(40)]  # 40 x 3 MiB, touched
    keep = blocks[-1]
    del blocks
    held = _rss_mb()
    assert release_free_memory() is True
    assert held - _rss_mb() > 60, "malloc_trim returned less than half of 120 MiB freed"
    assert keep.sum() > 0


_FAULTS_SCRIPT = """
import json, resource, sys
import torch
from cxrkit._memory import retain_freed_memory

def faults(n=9, mib=48):
    # Fewest minor page faults of allocating, touching and freeing a `mib` MiB buffer
    # (the fewest: glibc may cycle through a few chunks before it reuses one).
    out = []
    for _ in range(n):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        buf = torch.empty(mib * 2**20 // 4)
        buf.fill_(1.0)
        del buf
        out.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return min(out)

outside = faults()
with retain_freed_memory() as tuned:
    inside = faults()  # the heap grows for the first one or two
# After the block the heap still holds the (trimmed) 48 MiB chunk and may serve 48 MiB
# from it; a size larger than any chunk it holds shows whether mmap is back.
after = faults(mib=160)
print(json.dumps({"tuned": tuned, "outside": outside, "inside": inside, "after": after}))
"""


needs_glibc = pytest.mark.skipif(
    not glibc_malloc_available(), reason="the allocator tuning needs glibc's malloc (Linux)"
)


@needs_glibc
def test_retain_freed_memory_stops_page_faulting_large_buffers_in_again():
    # 48 MiB is above glibc's largest mmap threshold (32 MiB): by default every such buffer
    # is a fresh mmap whose pages fault in again when touched; inside the block the freed
    # buffer stays in the heap and the next one reuses its pages. Measured in a fresh
    # process: in a test worker, a free heap chunk of 48 MiB left by earlier tests would
    # serve the buffer without mmap and hide the default behaviour.
    import json
    import subprocess

    run = subprocess.run(
        [sys.executable, "-c", _FAULTS_SCRIPT], capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-2000:]
    r = json.loads(run.stdout.strip().splitlines()[-1])
    assert r["tuned"] is True
    assert r["outside"] >= 24, r  # at least one fault per 2 MiB huge page
    assert r["inside"] * 10 < r["outside"], r
    # 160 MiB buffers fault in every time again: the mmap threshold is back below them.
    assert r["after"] >= 80, ("the default behaviour is back after the block", r)


@needs_glibc
def test_retain_freed_memory_nests_and_gives_memory_back_on_exit():
    import cxrkit._memory as mem

    with retain_freed_memory():
        with retain_freed_memory():
            assert mem._depth == 2
        assert mem._depth == 1
        keep = np.ones(3 * 2**20 // 8)
        blocks = [np.ones(3 * 2**20 // 8) for _ in range(30)]  # 90 MiB from the heap
        del blocks
        held = _rss_mb()
    assert mem._depth == 0
    assert held - _rss_mb() > 45, "leaving the block did not trim the retained heap"
    assert keep.sum() > 0


def test_retain_freed_memory_disabled_is_a_no_op():
    import cxrkit._memory as mem

    with retain_freed_memory(False) as tuned:
        assert tuned is False and mem._depth == 0


def test_fit_and_predict_tune_the_allocator_on_cpu_unless_switched_off(monkeypatch, separable):
    import cxrkit.estimators._classifier as clf_mod
    from cxrkit import CXRClassifier

    seen: list[bool] = []
    real = clf_mod.retain_freed_memory

    def spy(enabled: bool = True):  # type: ignore[no-untyped-def]
        seen.append(enabled)
        return real(enabled)

    import cxrkit.estimators._predict as predict_mod
    import cxrkit.estimators._training as training_mod

    monkeypatch.setattr(clf_mod, "retain_freed_memory", spy)  # fit
    monkeypatch.setattr(predict_mod, "retain_freed_memory", spy)  # prediction
    monkeypatch.setattr(training_mod, "glibc_malloc_available", lambda: True)
    X, y = separable
    params = {"input_size": 16, "max_epochs": 2, "random_state": 0, "device": "cpu"}
    a = CXRClassifier("tiny_cnn", **params).fit(X, y)
    with cxrkit.config_context(tune_malloc=False):
        b = CXRClassifier("tiny_cnn", **params).fit(X, y)
    assert seen == [True, False]
    # the allocator cannot change the arithmetic; prediction is tuned the same way
    pa = a.predict_proba(X)
    with cxrkit.config_context(tune_malloc=False):
        pb = b.predict_proba(X)
    np.testing.assert_array_equal(pa, pb)
    assert seen == [True, False, True, False]


def test_tune_malloc_is_validated():
    from cxrkit.errors import ConfigurationError

    with pytest.raises(
        ConfigurationError, match="'tune_malloc' configuration key.*'auto', True or False"
    ):
        cxrkit.set_config(tune_malloc="yes")

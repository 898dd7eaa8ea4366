"""Micro-batching: concurrent requests' images gathered into one forward pass.

One worker thread owns the network. It takes the oldest waiting request and
adds the requests queued behind it until the batch holds ``max_batch`` images
or ``max_wait_ms`` have passed since it took the first one. It waits only while
more requests are known to be on their way (announced with :meth:`reserve`
while their uploads are being decoded), so a lone client never pays the wait,
and under load the batch fills from the backlog at once.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import CxrkitError

__all__ = ["MicroBatcher", "ServerBusy", "MAX_BATCH", "MAX_WAIT_MS", "MAX_QUEUE"]

#: Default most images in one forward pass.
MAX_BATCH = 16
#: Default longest wait for companions after the first request of a batch, in milliseconds.
MAX_WAIT_MS = 10.0
#: Default most images waiting for the worker; beyond it requests get 503.
MAX_QUEUE = 256


class ServerBusy(CxrkitError, RuntimeError):
    """The batching queue is full; the client should retry later (HTTP 503)."""


@dataclass
class _Job:
    images: list[np.ndarray] | None
    future: Future = field(default_factory=Future)
    call: Callable[[], Any] | None = None


_STOP = _Job(images=None)


class MicroBatcher:
    """Run ``predict(batch)`` on batches gathered from concurrent :meth:`submit` calls.

    Parameters
    ----------
    predict : callable
        ``predict(batch)`` with ``batch`` of shape ``(n, S, S)`` returns a tuple of
        arrays whose first axis is ``n`` (or ``None``); each request gets its rows.
    max_batch : int, default=16
        Most images in one call of ``predict`` (a single request with more runs alone).
    max_wait_ms : float, default=10.0
        Longest wait for more requests after the first of a batch.
    max_queue : int, default=256
        Most images waiting; :meth:`submit` raises :class:`ServerBusy` beyond it.
    """

    def __init__(
        self,
        predict: Callable[[np.ndarray], tuple[Any, ...]],
        *,
        max_batch: int = MAX_BATCH,
        max_wait_ms: float = MAX_WAIT_MS,
        max_queue: int = MAX_QUEUE,
    ) -> None:
        self.predict = predict
        self.max_batch = max_batch
        self.max_wait_ms = max_wait_ms
        self.max_queue = max_queue
        self._queue: queue.Queue[_Job] = queue.Queue()
        self._lock = threading.Lock()
        self._queued_images = 0
        self._reserved = 0
        self._thread: threading.Thread | None = None
        self.n_batches = 0
        self.n_images = 0
        self.largest_batch = 0

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> MicroBatcher:
        """Start the worker thread (idempotent)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="cxrkit-batcher", daemon=True
                )
                self._thread.start()
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the queued work and stop the worker."""
        thread = self._thread
        if thread is not None and thread.is_alive():
            self._queue.put(_STOP)
            thread.join(timeout)
        self._thread = None

    # -- client side -----------------------------------------------------------------
    def reserve(self) -> None:
        """Announce a request whose images are still being decoded."""
        with self._lock:
            self._reserved += 1

    def release(self) -> None:
        """Withdraw an announcement (the request failed before :meth:`submit`)."""
        with self._lock:
            self._reserved = max(0, self._reserved - 1)

    def submit(self, images: list[np.ndarray], *, reserved: bool = False) -> Future:
        """Queue one request's prepared images; the future gives its rows of each output."""
        with self._lock:
            if reserved:
                self._reserved = max(0, self._reserved - 1)
            if self._queued_images + len(images) > self.max_queue:
                raise ServerBusy(
                    f"The server has {self._queued_images} images waiting (limit "
                    f"{self.max_queue}, cxrkit serve --max-queue); retry in a moment."
                )
            self._queued_images += len(images)
        self.start()
        job = _Job(images=images)
        self._queue.put(job)
        return job.future

    def call(self, fn: Callable[[], Any]) -> Future:
        """Run ``fn`` on the worker thread between batches (e.g. Grad-CAM)."""
        self.start()
        job = _Job(images=None, call=fn)
        self._queue.put(job)
        return job.future

    def stats(self) -> dict[str, Any]:
        """Batches run, images predicted, mean and largest batch, and the settings."""
        return {
            "batches": self.n_batches,
            "images": self.n_images,
            "mean_batch": round(self.n_images / self.n_batches, 2) if self.n_batches else None,
            "largest_batch": self.largest_batch,
            "max_batch": self.max_batch,
            "max_wait_ms": self.max_wait_ms,
            "max_queue": self.max_queue,
        }

    # -- worker ----------------------------------------------------------------------
    def _more_expected(self) -> bool:
        with self._lock:
            return self._reserved > 0

    def _gather(self, first: _Job) -> tuple[list[_Job], _Job | None]:
        jobs, n = [first], len(first.images or ())
        deadline = time.monotonic() + self.max_wait_ms / 1000.0
        while n < self.max_batch:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._more_expected():
                    break
                try:
                    nxt = self._queue.get(timeout=remaining)
                except queue.Empty:
                    break
            if nxt.images is None or n + len(nxt.images) > self.max_batch:
                return jobs, nxt  # a call, the stop signal or a request that does not fit
            jobs.append(nxt)
            n += len(nxt.images)
        return jobs, None

    def _run_batch(self, jobs: list[_Job]) -> None:
        sizes = [len(j.images or ()) for j in jobs]
        with self._lock:
            self._queued_images -= sum(sizes)
        try:
            outputs = self.predict(np.stack([im for j in jobs for im in j.images or ()]))
        except BaseException as exc:  # noqa: BLE001 - every waiting request gets the error
            for j in jobs:
                j.future.set_exception(exc)
            return
        self.n_batches += 1
        self.n_images += sum(sizes)
        self.largest_batch = max(self.largest_batch, sum(sizes))
        start = 0
        for j, k in zip(jobs, sizes):
            j.future.set_result(tuple(None if o is None else o[start : start + k] for o in outputs))
            start += k

    def _run(self) -> None:
        carry: _Job | None = None
        while True:
            job = carry if carry is not None else self._queue.get()
            carry = None
            if job is _STOP:
                return
            if job.call is not None:
                try:
                    job.future.set_result(job.call())
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    job.future.set_exception(exc)
                continue
            jobs, carry = self._gather(job)
            self._run_batch(jobs)

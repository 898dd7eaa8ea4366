"""Processes sharing an on-disk store split the missing features between them.

Before computing a missing row, a process claims it: it creates
``<entry>.claim`` exclusively (``O_CREAT | O_EXCL``), holding its host name and
pid. Rows another process has claimed are not computed again but read once
their claimer has written them; a claimer that died (a pid that no longer exists
on this host) or whose claim is older than ``timeout`` seconds (a claimer on
another machine that stopped) is taken over.

Why not a lock library: ``filelock``/``fcntl`` locks make the others *wait*
for the holder, while here they go on with the rows nobody holds and read the
held ones later; ``fcntl`` locks are unreliable on network file systems, where
``O_EXCL`` creation is atomic; and a lock cannot say who holds it and since
when, which is what a waiting user needs to hear. ``diskcache`` keeps its
index in SQLite, which is unsafe on network file systems too, and offers no
claim-and-split either.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["Claim", "ClaimPolicy", "compute_shared", "read_claim", "try_claim", "release"]

logger = logging.getLogger("cxrkit.feature_cache")


@dataclass(frozen=True)
class Claim:
    """Who claimed an entry: ``host``, ``pid`` and the claim's ``age`` in seconds."""

    host: str
    pid: int
    age: float

    def describe(self) -> str:
        return f"pid {self.pid} on host {self.host!r}, {self.age:.0f} s ago"


@dataclass
class ClaimPolicy:
    """How a process shares the work of a disk store.

    Attributes
    ----------
    chunk : int
        Rows claimed (and computed) at a time.
    timeout : float
        Seconds after which a claim without a result is taken over.
    poll : float
        Seconds between two looks for rows another process is computing.
    report_after : float
        Seconds of waiting after which a warning names the claimer, repeated
        every ``report_every`` seconds.
    report_every : float
    """

    chunk: int = 32
    timeout: float = 120.0
    poll: float = 0.05
    report_after: float = 5.0
    report_every: float = 30.0


def _claim_file(entry: Path) -> Path:
    return entry.with_suffix(".claim")


def try_claim(entry: Path) -> bool:
    """Atomically mark ``entry`` as being computed by this process."""
    try:
        fd = os.open(_claim_file(entry), os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{socket.gethostname()} {os.getpid()}")
    return True


def release(entry: Path) -> None:
    """Remove this process's (or a stale) claim of ``entry``."""
    with contextlib.suppress(OSError):
        os.unlink(_claim_file(entry))


def read_claim(entry: Path) -> Claim | None:
    """Return the claim of ``entry``, or ``None`` if it was released or cannot be read."""
    path = _claim_file(entry)
    try:
        host, pid = path.read_text().split()
        return Claim(host, int(pid), time.time() - path.stat().st_mtime)
    except (OSError, ValueError):
        return None


def _claimer_gone(claim: Claim | None, timeout: float) -> bool:
    """Return a released or unreadable claim, a dead process on this host, or an old claim."""
    if claim is None:
        return True
    if claim.host == socket.gethostname():
        try:
            os.kill(claim.pid, 0)
        except ProcessLookupError:
            return True
        except OSError:
            pass  # alive but not ours to signal
    return claim.age > timeout


class _Waiting:
    """Reports, every so often, which claims the process is waiting for."""

    def __init__(self, policy: ClaimPolicy) -> None:
        self.policy = policy
        self.since = time.monotonic()
        self.next_report = self.since + policy.report_after

    def report(self, waiting: Sequence[int], paths: dict[int, Path]) -> None:
        now = time.monotonic()
        if now < self.next_report or not waiting:
            return
        self.next_report = now + self.policy.report_every
        claim = read_claim(paths[waiting[0]])
        who = claim.describe() if claim else "a process that just finished"
        logger.warning(
            "Waited %.0f s for %d cached feature(s) that another process is computing in %s "
            "(claimed by %s). A claim older than %g s is taken over; delete the .claim files "
            "there to stop waiting now.",
            now - self.since,
            len(waiting),
            paths[waiting[0]].parent,
            who,
            self.policy.timeout,
        )


def _report_takeover(claims: list[Claim], folder: Path, timeout: float) -> None:
    old = [c for c in claims if c.age > timeout]
    example = old[0] if old else claims[0]
    why = f"older than the claim timeout of {timeout:g} s" if old else "that process has ended"
    logger.log(
        logging.WARNING if old else logging.INFO,
        "Computing %d cached feature(s) in %s whose claimer stopped: claimed by %s (%s).",
        len(claims),
        folder,
        example.describe(),
        why,
    )


def compute_shared(
    missing: Sequence[int],
    paths: dict[int, Path],
    *,
    read: Callable[[int], np.ndarray | None],
    take: Callable[[int, np.ndarray], None],
    compute: Callable[[list[int]], list[np.ndarray]],
    write: Callable[[int, np.ndarray], None],
    policy: ClaimPolicy,
) -> tuple[int, int]:
    """Fill the ``missing`` rows, splitting the work with other processes.

    Parameters
    ----------
    missing : sequence of int
        Positions of the rows to fill.
    paths : dict
        Entry file of each position.
    read, take, compute, write : callable
        ``read(i)``: the stored row or ``None``; ``take(i, row)``: hand the row
        to the caller; ``compute(positions)``: new rows; ``write(i, row)``:
        store a computed row.
    policy : ClaimPolicy

    Returns
    -------
    tuple of int
        ``(rows computed here, rows read from the store)``.
    """
    fill = _SharedFill(paths, read, take, compute, write, policy)
    deferred: list[int] = []
    for s in range(0, len(missing), policy.chunk):
        deferred += fill.sweep(missing[s : s + policy.chunk], stale_ok=False)
    waiting = _Waiting(policy)
    while deferred:  # rows other processes are computing
        before = len(deferred)
        deferred = fill.sweep(deferred, stale_ok=True)
        if deferred and len(deferred) == before:
            waiting.report(deferred, paths)
            time.sleep(policy.poll)
    return fill.computed, fill.read_count


class _SharedFill:
    """One process's part of :func:`compute_shared`: claim, read or compute rows."""

    def __init__(
        self,
        paths: dict[int, Path],
        read: Callable[[int], np.ndarray | None],
        take: Callable[[int, np.ndarray], None],
        compute: Callable[[list[int]], list[np.ndarray]],
        write: Callable[[int, np.ndarray], None],
        policy: ClaimPolicy,
    ) -> None:
        self.paths = paths
        self.read = read
        self.take = take
        self.compute = compute
        self.write = write
        self.policy = policy
        self.computed = 0
        self.read_count = 0
        self.taken_over: list[Claim] = []

    def claim_or_read(self, i: int, stale_ok: bool = False) -> str:
        """Return "read" (the row is in the store), "mine" (claimed) or "wait"."""
        path = self.paths[i]
        for _ in range(2):
            arr = self.read(i)
            if arr is not None:
                self.take(i, arr)
                return "read"
            if try_claim(path):
                # The claimer writes the row before releasing its claim: a row finished
                # between the read above and this claim is in the store now.
                arr = self.read(i)
                if arr is None:
                    return "mine"
                release(path)
                self.take(i, arr)
                return "read"
            claim = read_claim(path)
            if not (stale_ok and _claimer_gone(claim, self.policy.timeout)):
                return "wait"
            if claim is not None:
                self.taken_over.append(claim)
            release(path)  # a stopped claimer's: remove it and try once more
        return "wait"

    def run(self, mine: list[int]) -> None:
        """Compute, hand over and store the claimed rows ``mine``; release their claims."""
        try:
            for i, arr in zip(mine, self.compute(mine)):
                self.take(i, arr)
                self.write(i, arr)
            self.computed += len(mine)
        finally:
            for i in mine:
                release(self.paths[i])

    def sweep(self, rows: Sequence[int], stale_ok: bool) -> list[int]:
        """Read or claim ``rows``; compute the claimed ones; return those still waited for."""
        mine: list[int] = []
        waiting: list[int] = []
        for i in rows:
            got = self.claim_or_read(i, stale_ok)
            if got == "read":
                self.read_count += 1
            else:
                (mine if got == "mine" else waiting).append(i)
        if self.taken_over:
            _report_takeover(self.taken_over, self.paths[rows[0]].parent, self.policy.timeout)
            self.taken_over.clear()
        if mine:
            self.run(mine)
        return waiting

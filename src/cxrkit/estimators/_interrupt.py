"""Telling a user's Ctrl-C from skorch's way of ending training early.

skorch's ``NeuralNet.partial_fit`` catches :class:`KeyboardInterrupt`, because
its callbacks (and cxrkit's snapshot callback) raise it to stop training. A real
Ctrl-C would then look like a finished ``fit``. :func:`watch_sigint` records
whether ``SIGINT`` arrived while training ran, so the estimator can re-raise it
and mark itself as interrupted (:func:`refuse_interrupted`).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

from ..errors import TrainingInterruptedError

__all__ = ["SigintFlag", "watch_sigint", "refuse_interrupted"]


class SigintFlag:
    """Set to true by :func:`watch_sigint` when ``SIGINT`` arrived."""

    def __init__(self) -> None:
        self.seen = False


@contextlib.contextmanager
def watch_sigint() -> Iterator[SigintFlag]:
    """Record ``SIGINT`` while the block runs, then behave as before.

    The previous handler still runs (Python's default raises
    :class:`KeyboardInterrupt`). Outside the main thread, or where ``SIGINT``
    is ignored or not handled by Python, nothing is installed (and the flag
    stays false).
    """
    flag = SigintFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous):  # SIG_IGN, SIG_DFL or a handler set outside Python
        yield flag
        return

    def handler(signum: int, frame: Any) -> None:
        flag.seen = True
        previous(signum, frame)

    signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


def refuse_interrupted(estimator: Any, action: str) -> None:
    """Raise :class:`TrainingInterruptedError` if ``estimator``'s ``fit`` did not finish.

    Parameters
    ----------
    estimator : estimator
        Its ``interrupted_`` attribute describes an unfinished ``fit`` (``None``
        after a complete one).
    action : str
        What was asked, e.g. ``"predict"``.
    """
    why = getattr(estimator, "interrupted_", None)  # absent on models built by hand
    if why:
        raise TrainingInterruptedError(
            f"This {type(estimator).__name__}'s training was interrupted ({why}), so it cannot "
            f"{action}: its weights are those of an unfinished run. Call fit again and let it "
            "finish."
        )

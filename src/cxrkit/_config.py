"""Global configuration: switches that change how fast cxrkit runs, not what it learns.

Modelled on :func:`sklearn.set_config` / :func:`sklearn.config_context`: the
estimators' ``__init__`` keeps only the parameters that change the fitted
model, while memory formats, allocator tuning, thread counts and chunk sizes
are read from here when ``fit``, ``predict`` or ``transform`` runs.

The configuration is thread-local, as scikit-learn's: each thread starts from
the defaults and :func:`set_config` / :func:`config_context` change it for
the calling thread only. cxrkit's own decoding threads receive what they need
from the calling thread, so they follow its configuration.

>>> import cxrkit
>>> with cxrkit.config_context(tune_malloc=False):
...     cxrkit.get_config()["tune_malloc"]
False
>>> cxrkit.get_config()["tune_malloc"]
'auto'
"""

from __future__ import annotations

import difflib
import numbers
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .errors import ConfigurationError

__all__ = ["get_config", "set_config", "config_context", "resolve_decode_threads"]


def _auto_bool(value: Any) -> bool:
    return value is True or value is False or value == "auto"


def _positive_int_or_none(value: Any) -> bool:
    return value is None or (
        isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= 1
    )


def _positive_int(value: Any) -> bool:
    return value is not None and _positive_int_or_none(value)


# key -> (default, check, what the check expects)
_KEYS: dict[str, tuple[Any, Callable[[Any], bool], str]] = {
    "grayscale_conv": ("auto", _auto_bool, "'auto', True or False"),
    "channels_last": ("auto", _auto_bool, "'auto', True or False"),
    "tune_malloc": ("auto", _auto_bool, "'auto', True or False"),
    "decode_threads": (None, _positive_int_or_none, "None or an int in the range [1, inf)"),
    "predict_batch_size": (None, _positive_int_or_none, "None or an int in the range [1, inf)"),
    "trim_every": (8, _positive_int, "an int in the range [1, inf)"),
    "show_progress": ("auto", _auto_bool, "'auto', True or False"),
}

_DEFAULTS: dict[str, Any] = {k: d for k, (d, _, _) in _KEYS.items()}
_threadlocal = threading.local()


def _local() -> dict[str, Any]:
    """Return the calling thread's mutable configuration (the defaults at first use)."""
    if not hasattr(_threadlocal, "config"):
        _threadlocal.config = dict(_DEFAULTS)
    config: dict[str, Any] = _threadlocal.config
    return config


def get_config() -> dict[str, Any]:
    """Return the calling thread's configuration (a copy).

    Returns
    -------
    dict
        Keys are the options of :func:`set_config`.

    See Also
    --------
    set_config, config_context
    """
    return dict(_local())


def _check(options: dict[str, Any]) -> None:
    for key, value in options.items():
        if key not in _KEYS:
            close = difflib.get_close_matches(key, _KEYS, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigurationError(
                f"{key!r} is not a cxrkit configuration key.{hint} "
                f"Known keys: {', '.join(sorted(_KEYS))}."
            )
        _, ok, expected = _KEYS[key]
        if not ok(value):
            raise ConfigurationError(
                f"The {key!r} configuration key of cxrkit must be {expected}. "
                f"Got {value!r} instead."
            )


def set_config(**options: Any) -> None:
    """Set configuration keys for the calling thread.

    Parameters
    ----------
    grayscale_conv : {"auto", True, False}, default="auto"
        Compute the first convolution from one of the identical grayscale input
        channels (exact; see :func:`cxrkit.architectures.grayscale_first_conv`).
        ``"auto"``: when the whole network is trained (``freeze="none"``) and its
        first ``Conv2d`` reads the input (``CXRNet.first_conv_reads_input``).
    channels_last : {"auto", True, False}, default="auto"
        Channels-last memory format for the network and its inputs. ``"auto"``:
        in prediction and in the backbone passes that fill the feature cache
        always, in training when the whole network is trained. Results agree up
        to float rounding, except that dropout draws its masks in memory order.
    tune_malloc : {"auto", True, False}, default="auto"
        While ``fit`` and prediction run, keep large freed buffers in glibc's
        heap (:func:`cxrkit._memory.retain_freed_memory`). ``"auto"``: on the CPU.
    decode_threads : int or None, default=None
        Threads that decode image files; ``None``: the CPU count, at most 8.
    predict_batch_size : int or None, default=None
        Images per batch in prediction, embedding and feature-cache passes;
        ``None``: the estimator's ``batch_size``, at least 32.
    trim_every : int, default=8
        Batches of a prediction between two returns of freed memory to the
        operating system (:func:`cxrkit._memory.release_free_memory`).
    show_progress : {"auto", True, False}, default="auto"
        A progress bar over the epochs of ``fit``; ``"auto"``: when standard
        error is a terminal.

    Raises
    ------
    ConfigurationError
        For an unknown key or a value outside its range; nothing is changed then.

    See Also
    --------
    get_config, config_context
    """
    _check(options)
    _local().update(options)


@contextmanager
def config_context(**options: Any) -> Iterator[None]:
    """Set configuration keys within a ``with`` block, then restore the previous values.

    Parameters
    ----------
    **options
        As for :func:`set_config`.

    Yields
    ------
    None

    Examples
    --------
    >>> import cxrkit
    >>> with cxrkit.config_context(decode_threads=2):
    ...     cxrkit.get_config()["decode_threads"]
    2
    """
    _check(options)
    old = get_config()
    _local().update(options)
    try:
        yield
    finally:
        _local().clear()
        _local().update(old)


def resolve_decode_threads() -> int:
    """Return the number of threads that decode image files (``decode_threads``)."""
    n = _local()["decode_threads"]
    return int(n) if n is not None else max(1, min(8, os.cpu_count() or 1))

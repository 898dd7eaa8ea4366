"""Run folds and grid-search candidates in parallel: on this machine or on a Dask cluster.

cxrkit does not schedule work itself. Every place that trains several models
independently (the folds of :class:`~cxrkit.evaluation.protocols.Hall2020CV`,
scikit-learn's ``cross_validate`` and ``GridSearchCV``) goes through
:class:`joblib.Parallel`, so joblib decides where the fits run:

- ``n_jobs=N`` on one machine (joblib's ``loky`` worker processes);
- a running Dask cluster through joblib's ``"dask"`` backend, when a
  ``scheduler`` address is given.

Estimators and datasets pickle small (parameters and image paths, never
decoded images), each worker picks its own device (``device="auto"``), and
every fit is seeded by ``random_state``, so results equal those of a serial
run (at the same number of torch threads per process; Dask workers start with
``OMP_NUM_THREADS=1``).

Examples
--------
>>> from cxrkit.parallel import parallel_backend
>>> with parallel_backend(n_jobs=1):
...     pass  # protocol.run(dataset) / GridSearchCV(...).fit(...) here

Against a cluster started with ``dask scheduler`` and ``dask worker``::

    with parallel_backend(scheduler="tcp://10.0.0.1:8786"):
        result = Hall2020CV(n_splits=10).run(dataset)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from .errors import ConfigurationError

__all__ = ["parallel_backend", "DASK_INSTALL_HINT"]

#: How to get the optional Dask dependencies.
DASK_INSTALL_HINT = "pip install 'cxrkit[dask]'"


def _dask_client(scheduler: str, timeout: float) -> Any:
    try:
        from dask.distributed import Client
    except ImportError as exc:
        raise ConfigurationError(
            f"--scheduler {scheduler!r} needs dask.distributed, which is not installed "
            f"({exc}). Install it with: {DASK_INSTALL_HINT}"
        ) from None
    try:
        return Client(scheduler, timeout=timeout)
    except (OSError, TimeoutError) as exc:
        raise ConfigurationError(
            f"Could not reach the Dask scheduler at {scheduler!r} within {timeout:g} s "
            f"({type(exc).__name__}: {exc}). Start one with 'dask scheduler' (it prints its "
            "address, e.g. tcp://10.0.0.1:8786) and workers with 'dask worker ADDRESS', "
            "then pass that address."
        ) from None


def _check_n_jobs(n_jobs: Any) -> None:
    if n_jobs is None:
        return
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
        raise ConfigurationError(
            f"n_jobs must be None, -1 (all cores) or a positive int. Got {n_jobs!r} instead."
        )


@contextlib.contextmanager
def parallel_backend(
    n_jobs: int | None = None, scheduler: str | Any | None = None, *, timeout: float = 30.0
) -> Iterator[Any]:
    """Make every :class:`joblib.Parallel` inside the block use ``n_jobs`` or a Dask cluster.

    Parameters
    ----------
    n_jobs : int or None, default=None
        Number of fits run at the same time. Without ``scheduler``: worker
        processes on this machine (``-1``: one per core; ``None`` or 1: serial).
        With ``scheduler``: the most tasks in flight on the cluster (``None``:
        as many as the cluster has worker threads).
    scheduler : str, dask.distributed.Client or None, default=None
        Address of a running Dask scheduler (``tcp://host:8786``), or an
        existing client. A client created here is closed when the block ends.
    timeout : float, default=30.0
        Seconds to wait for the scheduler.

    Yields
    ------
    dask.distributed.Client or None
        The client in use (``None`` without ``scheduler``).

    Raises
    ------
    ConfigurationError
        ``n_jobs`` is invalid, Dask is not installed, or the scheduler cannot
        be reached.

    See Also
    --------
    cxrkit.evaluation.protocols.Protocol : ``n_jobs`` of the protocols.
    """
    import joblib

    _check_n_jobs(n_jobs)
    if scheduler is None:
        with joblib.parallel_config(n_jobs=n_jobs):
            yield None
        return
    own = isinstance(scheduler, str)
    client = _dask_client(scheduler, timeout) if own else scheduler
    try:
        with joblib.parallel_config(backend="dask", n_jobs=n_jobs if n_jobs else -1, client=client):
            yield client
    finally:
        if own and not isinstance(client, str):
            client.close()

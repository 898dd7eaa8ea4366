"""Where worker processes share features when no ``cache_dir`` is given.

The main process creates a private session folder on first use of the feature
cache (:func:`start_session`: ``tempfile.mkdtemp``, so an unpredictable name
and mode 0700), names it in the environment variable :data:`SESSION_ENV` and
removes it when it exits. Worker processes started after that (joblib/loky,
``multiprocessing`` pools, a local Dask cluster) inherit the variable and use
the folder as their shared on-disk store, but only if it is a real folder
owned by this user and closed to others: anything else is refused with a
warning, and that worker keeps its features in memory.
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing
import os
import shutil
import stat
import tempfile
import threading
from pathlib import Path

from ._disk import CACHE_DIR_ENV

__all__ = [
    "SESSION_ENV",
    "start_session",
    "worker_cache_dir",
    "resolve_cache_dir",
    "session_folder_problem",
    "session_for_workers",
    "join_session",
]

logger = logging.getLogger("cxrkit.feature_cache")

#: Set by the main process (the session folder) and inherited by its worker processes.
SESSION_ENV = "CXRKIT_SESSION_DIR"

_lock = threading.Lock()
_own: dict[int, Path] = {}  # pid -> the session folder that process created
_announced: set[str] = set()


def _is_main_process() -> bool:
    return multiprocessing.current_process().name == "MainProcess"


def _remove_session(path: Path, pid: int) -> None:
    if os.getpid() == pid:  # not in a forked child that inherited the handler
        shutil.rmtree(path, ignore_errors=True)


def start_session() -> Path | None:
    """Create this main process's session folder (once) and publish it in :data:`SESSION_ENV`.

    Called on first use of the feature cache; call it before starting worker
    processes by other means, so that they share features. A worker process
    does not start a session of its own.

    Returns
    -------
    Path or None
        The folder; ``None`` in a worker process.
    """
    if not _is_main_process():
        return None
    pid = os.getpid()
    with _lock:
        if pid not in _own:
            path = Path(tempfile.mkdtemp(prefix="cxrkit-features-"))
            atexit.register(_remove_session, path, pid)
            _own[pid] = path
        os.environ[SESSION_ENV] = os.fspath(_own[pid])
        return _own[pid]


def session_for_workers() -> str | None:
    """Return the session folder to hand to worker processes inside a pickled estimator.

    Worker processes inherit :data:`SESSION_ENV` only if they start after the
    session; a pool started earlier (joblib reuses its loky workers) learns the
    folder from the estimators it receives (:func:`join_session`).

    Returns
    -------
    str or None
        The main process's folder (the session starts now if it has not), the
        inherited one in a worker process, or ``None``.
    """
    started = start_session()
    return os.fspath(started) if started is not None else os.environ.get(SESSION_ENV)


def join_session(path: str | None) -> None:
    """In a worker process that did not inherit :data:`SESSION_ENV`, use ``path``.

    The folder is checked when it is used (:func:`worker_cache_dir`).
    """
    if path and not _is_main_process() and not os.environ.get(SESSION_ENV):
        os.environ[SESSION_ENV] = path


def session_folder_problem(path: Path) -> str | None:
    """Why ``path`` must not be used as a shared session folder, or ``None``."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "it does not exist (the main process may have ended)"
    except OSError as exc:
        return f"it cannot be inspected ({exc})"
    if stat.S_ISLNK(st.st_mode):
        return "it is a symbolic link"
    if not stat.S_ISDIR(st.st_mode):
        return "it is not a folder"
    if st.st_uid != os.getuid():
        return f"it is owned by uid {st.st_uid}, not by this user (uid {os.getuid()})"
    if st.st_mode & 0o077:
        return f"other users can use it (mode {stat.S_IMODE(st.st_mode):04o}, expected 0700)"
    return None


def worker_cache_dir() -> Path | None:
    """Return the on-disk store shared by the worker processes of one main process.

    ``None`` in the main process itself (it keeps features in memory), in a
    process that did not inherit :data:`SESSION_ENV`, and when the folder it
    names is not safe to use (see :func:`session_folder_problem`; a warning
    says so).
    """
    raw = os.environ.get(SESSION_ENV)
    if _is_main_process() or not raw or Path(raw) == _own.get(os.getpid()):
        return None
    path = Path(raw)
    problem = session_folder_problem(path)
    if problem is not None:
        if raw not in _announced:
            _announced.add(raw)
            gone = not os.path.lexists(raw)
            logger.log(
                logging.INFO if gone else logging.WARNING,
                "Process %d does not share cached features through %r (named by %s): %s. "
                "Its features stay in its own memory; pass cache_dir= (or set %s) to share "
                "them in a folder of your choice.",
                os.getpid(),
                raw,
                SESSION_ENV,
                problem,
                CACHE_DIR_ENV,
            )
        return None
    return path


def resolve_cache_dir(cache_dir: str | os.PathLike[str] | None) -> str | None:
    """Return the on-disk store to use.

    ``cache_dir``, else ``CXRKIT_CACHE_DIR``, else :func:`worker_cache_dir`
    (worker processes only), else none (memory only).
    """
    explicit = cache_dir or os.environ.get(CACHE_DIR_ENV)
    if explicit:
        return os.fspath(explicit)
    shared = worker_cache_dir()
    if shared is None:
        return None
    if str(shared) not in _announced:
        _announced.add(str(shared))
        logger.info(
            "Worker process %d: sharing cached features with the other workers in %s "
            "(removed when the main process exits).",
            os.getpid(),
            shared,
        )
    return os.fspath(shared)

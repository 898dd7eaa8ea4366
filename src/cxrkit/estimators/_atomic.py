"""Writing a folder all at once: build it under a temporary name, then swap it in.

:func:`atomic_folder` yields an empty folder next to the target. When the
``with`` block ends normally, every file in it is flushed to disk and the folder
replaces the target: on Linux with one atomic ``renameat2(RENAME_EXCHANGE)``,
elsewhere with two renames (the old folder is moved aside first, so an
interruption between them leaves the old folder under a hidden name that
:func:`interrupted_saves` finds). When the block raises, or the process is
interrupted, the temporary folder is removed (or, after ``SIGKILL``, left under
its hidden name, never at the target).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import OutputPathError

__all__ = ["atomic_folder", "file_digest", "interrupted_saves"]

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def file_digest(path: Path) -> dict[str, object]:
    """``{"sha256": hex, "size": bytes}`` of a file, read in chunks."""
    h = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
            size += len(chunk)
    return {"sha256": h.hexdigest(), "size": size}


def _prefix(target: Path, what: str) -> str:
    return f".{target.name}.{what}-{socket.gethostname()}-{os.getpid()}-"


def interrupted_saves(target: Path) -> list[Path]:
    """Hidden folders that an interrupted save of ``target`` left next to it, newest first."""
    parent = target.parent
    if not parent.is_dir():
        return []
    found = [p for p in parent.glob(f".{target.name}.old-*") if p.is_dir()]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def _remove_stale(target: Path, what: str) -> None:
    """Remove the hidden ``what`` folders (``"partial"``, ``"old"``) that earlier saves of ``target`` by processes of this host, no longer running, left behind."""
    host = socket.gethostname()
    for p in target.parent.glob(f".{target.name}.{what}-{host}-*"):
        try:
            pid = int(p.name.split("-")[-2])
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(p, ignore_errors=True)
        except (ValueError, IndexError, PermissionError):
            continue


def _fsync_tree(folder: Path) -> None:
    for p in folder.iterdir():
        with open(p, "rb") as fh:
            os.fsync(fh.fileno())
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2``); False where unsupported."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    try:
        fn = ctypes.CDLL(libc_name, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    return rc == 0


def _swap_in(tmp: Path, target: Path) -> None:
    if not target.exists():
        os.rename(tmp, target)
        return
    if _exchange(tmp, target):
        shutil.rmtree(tmp, ignore_errors=True)  # tmp now holds the previous folder
        return
    old = Path(tempfile.mkdtemp(prefix=_prefix(target, "old"), dir=target.parent))
    os.rename(target, old)  # replaces the empty folder `old`
    os.rename(tmp, target)
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_folder(target: Path, is_replaceable: Callable[[Path], bool]) -> Iterator[Path]:
    """Yield an empty folder that replaces ``target`` when the block succeeds.

    Parameters
    ----------
    target : Path
        The folder to (re)write.
    is_replaceable : callable
        Whether an existing non-empty ``target`` may be replaced (e.g. it is a
        model folder); otherwise :class:`OutputPathError` is raised before
        anything is written.
    """
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise OutputPathError(f"'{target}' exists and is not a folder; choose another path.")
    if target.is_dir() and any(target.iterdir()) and not is_replaceable(target):
        raise OutputPathError(
            f"'{target}' exists and is not a cxrkit model folder; refusing to replace its "
            "contents. Choose another folder or remove it."
        )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale(target, "partial")
        tmp = Path(tempfile.mkdtemp(prefix=_prefix(target, "partial"), dir=target.parent))
    except OSError as exc:
        raise OutputPathError(
            f"Cannot write the folder '{target}' ({exc.strerror or exc}). "
            "Choose a writable location."
        ) from None
    try:
        yield tmp
        _fsync_tree(tmp)
        os.chmod(tmp, 0o755)  # mkdtemp made it private
        _swap_in(tmp, target)
        _remove_stale(target, "old")  # copies kept by interrupted saves are superseded now
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

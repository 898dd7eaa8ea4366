"""The on-disk store of the feature cache: one ``.npy`` file per feature vector.

Files are written atomically (a temporary file in the same folder, then
``os.replace``), so a reader sees no file or a whole one, and processes on one
machine or on a shared file system can use the same folder at once. What is
read is checked (shape, dtype, finite values) before it is used: a file
written by something else, or damaged, is reported and treated as missing.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from ...errors import ConfigurationError

__all__ = ["DiskStore", "CACHE_DIR_ENV"]

CACHE_DIR_ENV = "CXRKIT_CACHE_DIR"


class DiskStore:
    """Feature vectors as ``root/<ns[:2]>/<ns>/<key>.npy`` files.

    Parameters
    ----------
    root : path
        Folder of the store (created on first write).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    @staticmethod
    def entry_path(root: str | os.PathLike[str], namespace: str, key: str) -> Path:
        """Where the entry ``key`` of ``namespace`` lives under ``root``."""
        return Path(root) / namespace[:2] / namespace / f"{key}.npy"

    def path(self, namespace: str, key: str) -> Path:
        """Where the entry ``key`` of ``namespace`` lives in this store."""
        return self.entry_path(self.root, namespace, key)

    def make_folder(self, namespace: str) -> None:
        """Create the folder of ``namespace``, or say why it cannot be written."""
        folder = self.path(namespace, "x").parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(
                f"The feature cache folder {os.fspath(self.root)!r} cannot be written ({exc}). "
                f"Pass a writable cache_dir (or set {CACHE_DIR_ENV} to one), or cache_dir=None "
                "to keep features in memory only."
            ) from None

    @staticmethod
    def read(path: Path, width: int | None = None) -> tuple[np.ndarray | None, str | None]:
        """``(features, None)``, ``(None, None)`` if absent, ``(None, problem)`` if invalid.

        A valid entry is a 1-D float32 array of ``width`` finite values (any
        length when ``width`` is None); it is returned read-only.
        """
        try:
            arr = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            return None, None
        except (OSError, ValueError, EOFError) as exc:
            return None, f"unreadable ({type(exc).__name__}: {exc})"
        problem = check_features(arr, width)
        if problem is not None:
            return None, problem
        arr.setflags(write=False)
        return arr, None

    @staticmethod
    def write(path: Path, arr: np.ndarray) -> None:
        """Write ``arr`` to ``path`` atomically (readers see the old file or the whole new one)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npy")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, arr, allow_pickle=False)
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise


def check_features(arr: np.ndarray, width: int | None) -> str | None:
    """Say what is wrong with ``arr`` as one stored feature vector, or ``None``."""
    if arr.dtype != np.float32:
        return f"dtype {arr.dtype}, expected float32"
    if arr.ndim != 1 or (width is not None and arr.shape[0] != width):
        expected = f"({width},)" if width is not None else "one dimension"
        return f"shape {arr.shape}, expected {expected}"
    if not np.isfinite(arr).all():
        return "contains NaN or infinity"
    return None

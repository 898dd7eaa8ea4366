"""A cache of thumbnails and hashes keyed by image content (one SQLite file)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ThumbnailCache", "content_key", "CACHE_VERSION"]

# Bump when the thumbnail or hash algorithms change: old entries are then never matched.
CACHE_VERSION = "dup-thumbs-v1"
_SIDE = 64
_BATCH = 500  # keys per SELECT (below SQLite's variable limit)


def content_key(item: Any) -> str | None:
    """Hash of a file's bytes (or of an array's dtype, shape and pixels).

    Returns
    -------
    str or None
        ``None`` for a path that cannot be read; decoding reports it.
    """
    h = hashlib.blake2b(CACHE_VERSION.encode(), digest_size=20)
    if isinstance(item, (str, os.PathLike)):
        try:
            with open(item, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
        except OSError:
            return None
        return "f" + h.hexdigest()
    a = np.ascontiguousarray(np.asarray(item))
    h.update(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    return "a" + h.hexdigest()


def _encode(thumb: np.ndarray, bits: np.ndarray) -> tuple[bytes, int, bytes]:
    small = thumb.astype(np.uint8)
    if np.array_equal(small, thumb):  # 8-bit sources give integer thumbnails: store 4 KiB
        return small.tobytes(), 1, np.packbits(bits, axis=1).tobytes()
    return np.ascontiguousarray(thumb, np.float32).tobytes(), 4, np.packbits(bits, axis=1).tobytes()


def _decode(blob: bytes, width: int, packed: bytes) -> tuple[np.ndarray, np.ndarray]:
    dtype = np.uint8 if width == 1 else np.float32
    thumb = np.frombuffer(blob, dtype).reshape(_SIDE, _SIDE).astype(np.float32)
    bits = np.unpackbits(np.frombuffer(packed, np.uint8).reshape(3, 8), axis=1).astype(bool)
    return thumb, bits


class ThumbnailCache:
    """Thumbnails (64 x 64) and the three 64-bit hashes of images, by content key.

    Parameters
    ----------
    folder : path
        Where ``thumbnails.sqlite`` is kept; created when absent.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.folder / "thumbnails.sqlite")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS thumbs "
            "(key TEXT PRIMARY KEY, thumb BLOB, width INTEGER, bits BLOB)"
        )

    def get_many(self, keys: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Look up keys; return the stored ``(thumbnail, bits of shape (3, 64))`` found."""
        out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        for t in range(0, len(keys), _BATCH):
            part = keys[t : t + _BATCH]
            q = "SELECT key, thumb, width, bits FROM thumbs WHERE key IN ({})"
            for key, blob, width, packed in self._db.execute(
                q.format(",".join("?" * len(part))), part
            ):
                out[key] = _decode(blob, width, packed)
        return out

    def put_many(self, records: Iterable[tuple[str, np.ndarray, np.ndarray]]) -> None:
        """Store ``(key, thumbnail, bits)`` records (replacing equal keys)."""
        rows = [(k, *_encode(t, b)) for k, t, b in records]
        with self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO thumbs (key, thumb, width, bits) VALUES (?, ?, ?, ?)",
                rows,
            )

    def close(self) -> None:
        """Close the database."""
        self._db.close()

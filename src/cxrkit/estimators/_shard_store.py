"""The files of a shard run: ``manifest.json``, ``shards/part-NNNNN.*``, written atomically.

A shard is complete once its file (Parquet) or its ``.npy`` (after its
``.ids.csv``) is in place: each is written under a temporary name, flushed and
renamed, so a killed run leaves complete shards and hidden temporaries only
(removed by the next run on the same host).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigurationError, DataError, OutputPathError

__all__ = ["MANIFEST", "read_manifest", "iter_shards", "read_shards"]

MANIFEST = "manifest.json"
FOLDER_KIND = "cxrkit-shards"
# what must agree for an existing folder to be resumed
MATCH = ("kind", "format", "fingerprint", "n_images", "shard_size", "ids_sha256", "images_sha256")


def stem(k: int) -> str:
    return f"part-{k:05d}"


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Write ``path`` through ``write(tmp)`` under a temporary name, then rename it into place."""
    tmp = path.with_name(f".tmp-{socket.gethostname()}-{os.getpid()}-{path.name}")
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_shard(
    folder: Path, k: int, ids: np.ndarray, vals: np.ndarray, columns: list[str], fmt: str
) -> None:
    import pandas as pd

    folder.mkdir(parents=True, exist_ok=True)
    if fmt == "parquet":
        frame = pd.DataFrame(vals, columns=columns)
        frame.insert(0, "id", ids)
        atomic_write(folder / f"{stem(k)}.parquet", lambda p: frame.to_parquet(p, index=False))
        return
    # the ids first: a shard is complete once its .npy is in place
    atomic_write(
        folder / f"{stem(k)}.ids.csv", lambda p: pd.DataFrame({"id": ids}).to_csv(p, index=False)
    )
    atomic_write(folder / f"{stem(k)}.npy", lambda p: np.save(p, vals))


def complete(folder: Path, k: int, rows: int, fmt: str) -> bool:
    """Whether shard ``k`` is in ``folder`` with ``rows`` rows."""
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            path = folder / f"{stem(k)}.parquet"
            return path.is_file() and pq.read_metadata(path).num_rows == rows
        npy, ids = folder / f"{stem(k)}.npy", folder / f"{stem(k)}.ids.csv"
        return npy.is_file() and ids.is_file() and np.load(npy, mmap_mode="r").shape[0] == rows
    except (OSError, ValueError):  # unreadable: computed again
        return False


def read_shard(folder: Path, k: int, manifest: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    dtype = np.dtype(manifest["dtype"])
    if manifest["format"] == "parquet":
        frame = pd.read_parquet(folder / f"{stem(k)}.parquet")
        return frame["id"].astype(str).to_numpy(), frame[manifest["columns"]].to_numpy(dtype)
    ids = pd.read_csv(folder / f"{stem(k)}.ids.csv", dtype=str, keep_default_na=False)
    return ids["id"].to_numpy(), np.load(folder / f"{stem(k)}.npy").astype(dtype, copy=False)


def resolve_format(fmt: str, out: Path) -> str:
    if fmt not in ("auto", "parquet", "npy"):
        raise ConfigurationError(f"fmt must be 'auto', 'parquet' or 'npy'. Got {fmt!r} instead.")
    have_arrow = importlib.util.find_spec("pyarrow") is not None
    if fmt == "auto":
        try:  # resume in the format an earlier run chose
            earlier = json.loads((out / MANIFEST).read_text()).get("format")
        except (OSError, ValueError, AttributeError):
            earlier = None
        if earlier == "npy" or (earlier == "parquet" and have_arrow):
            return str(earlier)
        return "parquet" if have_arrow else "npy"
    if fmt == "parquet" and not have_arrow:
        raise ConfigurationError(
            "fmt='parquet' needs pyarrow, which is not installed. Install it "
            "(pip install pyarrow) or use fmt='npy'."
        )
    return fmt


def prepare(out: Path, manifest: dict[str, Any], overwrite: bool) -> None:
    """Check ``out`` against ``manifest`` (resume, refuse or start again) and write the manifest."""
    if out.exists() and not out.is_dir():
        raise OutputPathError(f"'{out}' exists and is not a folder; choose another output folder.")
    path = out / MANIFEST
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except ValueError as exc:
            raise OutputPathError(
                f"'{path}' is not valid JSON ({exc}); it was not written by a shard run. "
                "Choose a new folder or delete it."
            ) from None
        if not isinstance(old, dict) or old.get("folder") != FOLDER_KIND:
            raise OutputPathError(
                f"'{out}' holds a manifest.json that is not a shard run's (a model folder?); "
                "choose a new output folder."
            )
        differ = [k for k in MATCH if old.get(k) != manifest[k]]
        if differ and not overwrite:
            what = "; ".join(
                f"{k}: {_short(old.get(k))} there, {_short(manifest[k])} now" for k in differ
            )
            raise OutputPathError(
                f"'{out}' holds shards of another run ({what}), so it cannot be resumed. "
                "Use a new folder, or overwrite=True (--overwrite) to replace them."
            )
        if not differ and not overwrite:
            _remove_stale_temporaries(out / "shards")
            return
        shutil.rmtree(out / "shards", ignore_errors=True)
    elif (out / "config.json").is_file():
        raise OutputPathError(
            f"'{out}' holds a config.json (a model folder?); choose a new output folder."
        )
    elif (out / "shards").is_dir() and any((out / "shards").iterdir()):
        raise OutputPathError(
            f"'{out}/shards' exists but '{path}' does not, so its shards cannot be checked. "
            "Choose a new folder or delete the shards folder."
        )
    (out / "shards").mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(out / "shards")
    created = {**manifest, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    text = json.dumps(created, indent=2, default=str)
    atomic_write(path, lambda p: p.write_text(text))


def _remove_stale_temporaries(folder: Path) -> None:
    host = socket.gethostname()
    for p in folder.glob(f".tmp-{host}-*"):
        try:
            os.kill(int(p.name[len(f".tmp-{host}-") :].split("-")[0]), 0)
        except ProcessLookupError:
            p.unlink(missing_ok=True)
        except (ValueError, PermissionError):
            continue


def _short(value: Any) -> str:
    text = repr(value)
    return text[:14] + "...'" if isinstance(value, str) and len(value) > 16 else text


def read_manifest(out: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the ``manifest.json`` of a shard folder (kind, columns, n_images, shard_size, ...)."""
    path = Path(out) / MANIFEST
    try:
        manifest: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(
            f"'{path}' cannot be read ({exc}); pass a folder written by embed_to_shards, "
            "predict_to_shards, `cxrkit embed --format shards` or `cxrkit predict --out`."
        ) from None
    return manifest


def iter_shards(out: str | os.PathLike[str]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(ids, values)`` shard by shard, in image order (one shard in memory at a time)."""
    manifest = read_manifest(out)
    folder = Path(out) / "shards"
    n, size, fmt = manifest["n_images"], manifest["shard_size"], manifest["format"]
    missing = [
        k
        for k in range(manifest["n_shards"])
        if not complete(folder, k, min(n, (k + 1) * size) - k * size, fmt)
    ]
    if missing:
        raise DataError(
            f"{len(missing)} of {manifest['n_shards']} shards in '{out}' are missing or "
            f"incomplete (first: {stem(missing[0])}); the run was interrupted. Run it again "
            "with the same model and images: it computes only the missing shards."
        )
    for k in range(manifest["n_shards"]):
        yield read_shard(folder, k, manifest)


def read_shards(out: str | os.PathLike[str], *, as_frame: bool = False) -> Any:
    """All shards of ``out``: ``(ids, values)`` (a DataFrame with ``id`` and an ndarray), or one DataFrame.

    Parameters
    ----------
    out : path
        A folder written by :func:`embed_to_shards` or :func:`predict_to_shards`.
    as_frame : bool, default=False
        Return one DataFrame: ``id`` then the manifest's columns.
    """
    import pandas as pd

    manifest = read_manifest(out)
    parts = list(iter_shards(out))
    ids = np.concatenate([p[0] for p in parts])
    width = len(manifest["columns"])
    values = np.concatenate([p[1] for p in parts]) if parts else np.empty((0, width))
    if as_frame:
        frame = pd.DataFrame(values, columns=manifest["columns"])
        frame.insert(0, "id", ids)
        return frame
    return pd.DataFrame({"id": ids}), values

"""Embeddings and predictions of many images, written shard by shard and resumable.

:func:`embed_to_shards` and :func:`predict_to_shards` split the images into
shards of ``shard_size``, compute one shard at a time (its images decoded batch
by batch) and write each shard as soon as it is done, so memory holds one
shard's results whatever the number of images. Layout of ``out``::

    manifest.json                      model fingerprint, n images, shard size, ids hash
    shards/part-00000.parquet          "id" + one column per value (with pyarrow)
    shards/part-00000.npy + .ids.csv   the same without pyarrow

Each file is written under a temporary name and renamed into place, so a
killed run leaves only complete shards; running the same call again computes
the missing shards only. With ``scheduler`` (a Dask address or client), the
shards run on the cluster's workers, which write them to ``out`` (a folder
all workers can reach), with the same values as a serial run.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigurationError
from ._data import ImageSource, as_image_source
from ._fingerprint import hash_images, hash_strings, image_ids, model_fingerprint
from ._shard_store import (
    FOLDER_KIND,
    complete,
    iter_shards,
    prepare,
    read_manifest,
    read_shards,
    resolve_format,
    write_shard,
)

__all__ = [
    "ShardRun",
    "embed_to_shards",
    "predict_to_shards",
    "read_shards",
    "iter_shards",
    "read_manifest",
    "model_fingerprint",
]

_DTYPES = {"embeddings": np.float32, "predict_proba": np.float64}


@dataclass(frozen=True)
class ShardRun:
    """What :func:`embed_to_shards` or :func:`predict_to_shards` did.

    Attributes
    ----------
    out : Path
        The folder holding ``manifest.json`` and ``shards/``.
    n_shards : int
        Shards of the whole run.
    n_done : int
        Shards computed by this call.
    n_skipped_resumed : int
        Shards already complete in ``out`` (from an earlier, interrupted run) and kept.
    seconds : float
        Wall time of this call.
    n_images : int
    """

    out: Path
    n_shards: int
    n_done: int
    n_skipped_resumed: int
    seconds: float
    n_images: int


def embed_to_shards(
    embedder: Any,
    X: Any,
    out: str | os.PathLike[str],
    *,
    ids: Sequence[Any] | None = None,
    shard_size: int = 1024,
    scheduler: Any = None,
    progress: bool = True,
    overwrite: bool = False,
    feature_cache: bool = False,
    fmt: str = "auto",
    meta: dict[str, Any] | None = None,
) -> ShardRun:
    """Write the embeddings of ``X`` to ``out`` shard by shard (float32, one row per image).

    Parameters
    ----------
    embedder : CXREmbedder or transformer
        A :class:`~cxrkit.estimators.CXREmbedder` (fitted here if it is not:
        its ``fit`` reads no images) or a fitted transformer with ``n_features_out_``.
    X : sequence of paths or ndarray of shape (n, H, W)
        The images; pass paths for large runs (only those travel to workers).
    out : path
        Output folder (created); an earlier run's folder is resumed.
    ids : sequence or None, default=None
        One id per image, stored with the values (default: the paths, or
        ``"0"``, ``"1"``, ... for an array).
    shard_size : int, default=1024
        Images per shard: memory holds one shard's results.
    scheduler : str, dask.distributed.Client or None, default=None
        Run the shards on a Dask cluster (its workers must see ``out`` and the images).
    progress : bool, default=True
        A progress bar over the images, with rate and time left.
    overwrite : bool, default=False
        Delete the shards an earlier run left in ``out`` and start again;
        required when they belong to another model or other images.
    feature_cache : bool, default=False
        Use the embedder's feature cache; by default it is bypassed, so memory
        stays flat and the shards are the only store.
    fmt : {"auto", "parquet", "npy"}, default="auto"
        ``"auto"``: Parquet when pyarrow is installed.
    meta : dict or None, default=None
        Extra JSON fields for the manifest (not compared on resume).

    Returns
    -------
    ShardRun

    Raises
    ------
    OutputPathError
        ``out`` holds shards of another model or other images (without ``overwrite``).

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from cxrkit.estimators import CXREmbedder, embed_to_shards, read_shards
    >>> X = np.random.default_rng(0).integers(0, 255, (6, 16, 16), dtype=np.uint8)
    >>> tmp = tempfile.TemporaryDirectory()
    >>> embed_to_shards(CXREmbedder("tiny_cnn", input_size=16), X, tmp.name, shard_size=4,
    ...                 progress=False).n_shards
    2
    >>> read_shards(tmp.name)[1].shape
    (6, 32)
    >>> tmp.cleanup()
    """
    if not hasattr(embedder, "n_features_out_") and hasattr(embedder, "iter_embeddings"):
        embedder.fit()
    width = getattr(embedder, "n_features_out_", None)
    if width is None:
        raise ConfigurationError(
            f"embed_to_shards needs a fitted CXREmbedder (or a transformer with "
            f"n_features_out_); got {type(embedder).__name__} without it. Fit it first."
        )
    columns = [f"f{i}" for i in range(int(width))]
    return _run(
        "embeddings",
        embedder,
        X,
        out,
        columns,
        ids=ids,
        shard_size=shard_size,
        scheduler=scheduler,
        progress=progress,
        overwrite=overwrite,
        feature_cache=feature_cache,
        fmt=fmt,
        meta=meta,
    )


def predict_to_shards(
    model: Any,
    X: Any,
    out: str | os.PathLike[str],
    *,
    ids: Sequence[Any] | None = None,
    shard_size: int = 1024,
    scheduler: Any = None,
    progress: bool = True,
    overwrite: bool = False,
    feature_cache: bool = False,
    fmt: str = "auto",
    meta: dict[str, Any] | None = None,
) -> ShardRun:
    """Write ``model.predict_proba(X)`` to ``out`` shard by shard (columns ``p(<label>)``).

    Parameters are those of :func:`embed_to_shards`; ``model`` is a fitted
    classifier (:class:`CXRClassifier`, a snapshot or voting ensemble, or any
    estimator with ``predict_proba`` and ``classes_``). The columns follow
    ``labels_`` where the model has them (multi-label: the findings), else
    ``classes_``.

    Returns
    -------
    ShardRun
    """
    labels = getattr(model, "labels_", None)
    if labels is None:
        labels = getattr(model, "classes_", None)
    if labels is None:
        raise ConfigurationError(
            f"predict_to_shards needs a fitted classifier with classes_; "
            f"{type(model).__name__} has none. Fit or load it first."
        )
    columns = [f"p({c})" for c in labels]
    return _run(
        "predict_proba",
        model,
        X,
        out,
        columns,
        ids=ids,
        shard_size=shard_size,
        scheduler=scheduler,
        progress=progress,
        overwrite=overwrite,
        feature_cache=feature_cache,
        fmt=fmt,
        meta=meta,
    )


def _run(
    kind: str,
    model: Any,
    X: Any,
    out_: Any,
    columns: list[str],
    *,
    ids: Sequence[Any] | None,
    shard_size: int,
    scheduler: Any,
    progress: bool,
    overwrite: bool,
    feature_cache: bool,
    fmt: str,
    meta: dict[str, Any] | None,
) -> ShardRun:
    from tqdm.auto import tqdm

    t0 = time.perf_counter()
    if (
        isinstance(shard_size, bool)
        or not isinstance(shard_size, (int, np.integer))
        or shard_size < 1
    ):
        raise ConfigurationError(f"shard_size must be an int >= 1. Got {shard_size!r} instead.")
    src = as_image_source(X)
    n = len(src)
    id_values = image_ids(src, ids)
    out = Path(out_)
    fmt = resolve_format(fmt, out)
    size = int(shard_size)
    n_shards = -(-n // size)
    manifest: dict[str, Any] = {
        "folder": FOLDER_KIND,
        "kind": kind,
        "format": fmt,
        "fingerprint": model_fingerprint(model),
        "model": type(model).__name__,
        "n_images": n,
        "shard_size": size,
        "n_shards": n_shards,
        "ids_sha256": hash_strings(id_values),
        "images_sha256": hash_images(src),
        "columns": columns,
        "dtype": np.dtype(_DTYPES[kind]).name,
        "meta": meta or {},
    }
    prepare(out, manifest, overwrite)
    folder = out / "shards"
    bounds = [(k, k * size, min(n, (k + 1) * size)) for k in range(n_shards)]
    todo = [b for b in bounds if not complete(folder, b[0], b[2] - b[1], fmt)]
    worker = model if feature_cache else _without_feature_cache(model)
    task = _ShardTask(kind, str(folder), fmt, columns)
    bar = tqdm(
        total=n,
        initial=n - sum(stop - start for _, start, stop in todo),
        unit="img",
        desc=kind.replace("_", " "),
        disable=not progress,
        smoothing=0.1,
    )
    try:
        if scheduler is None:
            for k, start, stop in todo:
                part = src.subset(np.arange(start, stop))
                task(worker, k, part, id_values[start:stop], bar.update)
        else:
            _run_on_dask(scheduler, worker, task, todo, src, id_values, bar.update)
    finally:
        bar.close()
    return ShardRun(
        out, len(bounds), len(todo), len(bounds) - len(todo), time.perf_counter() - t0, n
    )


@dataclass(frozen=True)
class _ShardTask:
    """Compute and write one shard (in this process or on a Dask worker)."""

    kind: str
    folder: str
    fmt: str
    columns: list[str]

    def __call__(
        self,
        model: Any,
        k: int,
        src: ImageSource,
        ids: np.ndarray,
        on_images: Callable[[int], Any] | None = None,
    ) -> int:
        from .._memory import release_free_memory

        vals = _compute(model, self.kind, src, len(self.columns), on_images or (lambda _: None))
        if vals.shape != (len(ids), len(self.columns)):
            raise ConfigurationError(
                f"{type(model).__name__} returned values of shape {vals.shape} for shard {k}; "
                f"expected {(len(ids), len(self.columns))} (columns {self.columns[:3]}...)."
            )
        write_shard(Path(self.folder), k, ids, vals, self.columns, self.fmt)
        del vals
        release_free_memory()
        return len(ids)


def _compute(
    model: Any, kind: str, src: ImageSource, width: int, on_images: Callable[[int], Any]
) -> np.ndarray:
    data = src.paths if src.is_paths else src.array
    dtype = _DTYPES[kind]
    if kind == "embeddings" and hasattr(model, "iter_embeddings"):
        vals = np.empty((len(src), width), dtype=dtype)
        for start, feats in model.iter_embeddings(data):
            vals[start : start + len(feats)] = feats
            on_images(len(feats))
        return vals
    vals = np.asarray(model.transform(data) if kind == "embeddings" else model.predict_proba(data))
    on_images(len(vals))
    return vals.astype(dtype, copy=False)


def _run_on_dask(
    scheduler: Any,
    model: Any,
    task: _ShardTask,
    todo: list[tuple[int, int, int]],
    src: ImageSource,
    ids: np.ndarray,
    on_images: Callable[[int], Any],
) -> None:
    from ..parallel import _dask_client

    own = isinstance(scheduler, str)
    client = _dask_client(scheduler, 30.0) if own else scheduler
    from distributed import as_completed

    try:
        remote = client.scatter(model, broadcast=True, hash=False)
        # a few shards per worker thread in flight: only their inputs travel at a time
        window = max(2, 2 * sum(client.nthreads().values()))
        pending = iter(todo)

        def submit(k: int, start: int, stop: int) -> Any:
            part = src.subset(np.arange(start, stop))
            return client.submit(task, remote, k, part, ids[start:stop], pure=False)

        running = as_completed([submit(*b) for _, b in zip(range(window), pending)])
        for fut in running:
            on_images(fut.result())  # re-raises a worker's error
            nxt = next(pending, None)
            if nxt is not None:
                running.add(submit(*nxt))
    finally:
        if own:
            client.close()


def _without_feature_cache(obj: Any, depth: int = 0) -> Any:
    """Return a shallow copy of ``obj`` (and of its members) whose feature cache is off."""
    changed = copy.copy(obj)
    touched = False
    if getattr(obj, "feature_cache", False) is not False:
        changed.feature_cache = False
        touched = True
    for name in ("estimators_", "estimator_"):
        inner = getattr(obj, name, None)
        if inner is None or depth > 4:
            continue
        if isinstance(inner, list):
            setattr(changed, name, [_without_feature_cache(m, depth + 1) for m in inner])
        else:
            setattr(changed, name, _without_feature_cache(inner, depth + 1))
        touched = True
    return changed if touched else obj

"""A content-keyed cache of frozen-backbone features, so only the head is retrained.

When the backbone of a :class:`~cxrkit.architectures.CXRNet` is frozen (its
parameters *and* batch-norm statistics fixed, dropout off) and the only
training-time augmentation is a horizontal flip, the pooled backbone output of
an image never changes during training. :class:`CXRClassifier` then computes
``CXRNet.features`` once per distinct image and view (original, flipped) and
trains the head on those features; every epoch, snapshot, CV fold and
grid-search candidate with the same backbone, weights and preprocessing reuses
them, because entries are keyed by *content*:

``key = H(prepared image bytes) + view`` inside a namespace
``H(architecture name, backbone+pool state_dict bytes, preprocessing)``.

The process-wide in-memory store is bounded in bytes (least-recently-used
eviction; evicted entries are recomputed or re-read from disk). With a
``cache_dir`` (or the environment variable ``CXRKIT_CACHE_DIR``) entries are
also written as ``.npy`` files, atomically (temporary file + ``os.replace``),
so concurrent processes share them safely. Without either, worker processes
(``n_jobs > 1`` in ``cross_validate``, ``GridSearchCV``, cxrkit's protocols, a
local Dask cluster) still share an on-disk store: :func:`resolve_cache_dir`
gives them a folder in the temporary directory named after the main process,
which that process removes when it exits.
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import logging
import multiprocessing
import os
import shutil
import socket
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from skorch import NeuralNet
from skorch.utils import to_tensor
from torch.utils.data import Dataset

from ..architectures import CXRNet, Preprocessing
from ..errors import ConfigurationError
from ._data import _to_tensor

__all__ = [
    "FeatureCache",
    "FeatureDataset",
    "FeatureAwareNet",
    "FeatureBatches",
    "HeadOnly",
    "get_feature_cache",
    "feature_cache_stats",
    "clear_feature_cache",
    "feature_cache_reason",
    "cached_features",
    "backbone_fingerprint",
    "DEFAULT_CACHE_BYTES",
    "CACHE_DIR_ENV",
    "resolve_cache_dir",
    "worker_cache_dir",
]

logger = logging.getLogger("cxrkit.feature_cache")

CACHE_DIR_ENV = "CXRKIT_CACHE_DIR"
#: Set by the main process on import (its pid) and inherited by its worker processes.
SESSION_ENV = "CXRKIT_SESSION_PID"
CACHE_BYTES_ENV = "CXRKIT_FEATURE_CACHE_BYTES"
#: Default in-memory limit: 1 GiB (about 130,000 ResNet50 feature vectors).
DEFAULT_CACHE_BYTES = 1 << 30
VIEWS = ("orig", "hflip")


def _new_hash() -> Any:
    """SHA-256 (hardware-accelerated on current x86 and ARM CPUs: 94 MB of ResNet50
    weights in 0.06 s here, against 0.14 s for BLAKE2b), truncated to 128 bits."""
    return hashlib.sha256()


def _hash_bytes(*parts: bytes | memoryview) -> str:
    h = _new_hash()
    for p in parts:
        h.update(p)
    return h.hexdigest()[:32]


def _tensor_bytes(t: torch.Tensor) -> memoryview:
    """The tensor's bytes, without a copy for a contiguous CPU tensor."""
    t = t.detach().to("cpu").contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().reshape(-1).view(np.uint8).data


def backbone_fingerprint(net: CXRNet) -> str:
    """Hash of the architecture name and the backbone's and pool's tensors.

    Computed once per module: the result is stored on the module together with
    the tensors' version counters and recomputed only when a tensor changed
    in place (e.g. after training an unfrozen backbone).
    """
    tensors = [(k, v) for part in ("backbone", "pool")
               for k, v in getattr(net, part).state_dict(prefix=part + ".").items()]
    versions = tuple(int(getattr(v, "_version", 0)) for _, v in tensors)
    cached = getattr(net, "_cxrkit_fingerprint", None)
    if cached is not None and cached[0] == versions:
        return cached[1]
    h = _new_hash()
    h.update(str(getattr(net, "arch_name", type(net).__name__)).encode())
    h.update(repr(net.pool).encode())
    for k, v in tensors:
        h.update(k.encode())
        h.update(str(v.dtype).encode())
        h.update(str(tuple(v.shape)).encode())
        h.update(_tensor_bytes(v))
    fp = h.hexdigest()[:32]
    object.__setattr__(net, "_cxrkit_fingerprint", (versions, fp))
    return fp


def _preprocessing_fingerprint(prep: Preprocessing) -> str:
    return repr(sorted(prep.to_dict().items()))


def _session_dir(pid: int | str) -> Path:
    return Path(tempfile.gettempdir()) / f"cxrkit-features-{pid}"


def _is_main_process() -> bool:
    return multiprocessing.current_process().name == "MainProcess"


def _start_session() -> None:
    """Name this process as the session its worker processes share a feature store in."""
    if _is_main_process():
        os.environ[SESSION_ENV] = str(os.getpid())
        atexit.register(shutil.rmtree, _session_dir(os.getpid()), True)


_start_session()
_announced_worker_dir = False


def worker_cache_dir() -> Path | None:
    """The on-disk store shared by the worker processes of one main process.

    ``None`` in the main process itself (it keeps features in memory), and in a
    process that did not inherit the main process's :data:`SESSION_ENV`.
    Workers of joblib/loky, ``multiprocessing`` pools and a local Dask cluster
    inherit it, so the folds and grid-search candidates they run share the
    features each of them computes.
    """
    pid = os.environ.get(SESSION_ENV)
    if _is_main_process() or not pid or pid == str(os.getpid()):
        return None
    return _session_dir(pid)


def resolve_cache_dir(cache_dir: str | os.PathLike[str] | None) -> str | None:
    """The on-disk store to use: ``cache_dir``, else ``CXRKIT_CACHE_DIR``, else
    :func:`worker_cache_dir` (worker processes only), else none (memory only)."""
    global _announced_worker_dir
    explicit = cache_dir or os.environ.get(CACHE_DIR_ENV)
    if explicit:
        return os.fspath(explicit)
    shared = worker_cache_dir()
    if shared is None:
        return None
    if not _announced_worker_dir:
        _announced_worker_dir = True
        logger.info("Worker process %d: sharing cached features with the other workers in %s "
                    "(removed when the main process exits).", os.getpid(), shared)
    return os.fspath(shared)


class FeatureCache:
    """A bounded, thread-safe LRU store of feature vectors, optionally backed by disk.

    Parameters
    ----------
    max_bytes : int
        Limit of the in-memory store; least-recently-used entries are evicted.

    Attributes
    ----------
    hits, misses, disk_hits, evictions : int
        Counters since creation or the last :meth:`clear`.
    """

    def __init__(self, max_bytes: int = DEFAULT_CACHE_BYTES) -> None:
        self.max_bytes = int(max_bytes)
        self._store: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = self.disk_hits = self.evictions = 0
        self.compute_seconds = 0.0

    #: Rows claimed (and computed) at a time by a process sharing a disk store.
    claim_chunk = 32
    #: Seconds after which a claim without a result is taken over (a claimer on another host).
    claim_timeout = 600.0
    #: Seconds between two looks for rows another process is computing.
    claim_poll = 0.05

    # -- memory store ----------------------------------------------------------
    def _get_mem(self, key: tuple[str, str]) -> np.ndarray | None:
        with self._lock:
            arr = self._store.get(key)
            if arr is not None:
                self._store.move_to_end(key)
            return arr

    def _put_mem(self, key: tuple[str, str], arr: np.ndarray) -> None:
        if arr.nbytes > self.max_bytes:
            return
        with self._lock:
            old = self._store.pop(key, None)
            if old is not None:
                self._bytes -= old.nbytes
            self._store[key] = arr
            self._bytes += arr.nbytes
            while self._bytes > self.max_bytes and self._store:
                _, ev = self._store.popitem(last=False)
                self._bytes -= ev.nbytes
                self.evictions += 1

    # -- disk store --------------------------------------------------------------
    @staticmethod
    def _path(cache_dir: Path, namespace: str, key: str) -> Path:
        return cache_dir / namespace[:2] / namespace / f"{key}.npy"

    @staticmethod
    def _read_disk(path: Path) -> np.ndarray | None:
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None  # absent, or a file from an interrupted foreign writer

    @staticmethod
    def _write_disk(path: Path, arr: np.ndarray) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npy")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, arr, allow_pickle=False)
            os.replace(tmp, path)  # atomic: readers see the old file or the whole new one
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def _computed_rows(self, compute: Callable[[list[int]], np.ndarray],
                       positions: list[int]) -> list[np.ndarray]:
        """``compute(positions)`` as read-only float32 rows, its time added to the statistics."""
        t0 = time.perf_counter()
        new = np.asarray(compute(positions), dtype=np.float32)
        with self._lock:
            self.compute_seconds += time.perf_counter() - t0
        out = []
        for row in new:
            arr = np.ascontiguousarray(row)
            arr.setflags(write=False)
            out.append(arr)
        return out

    # -- claims: processes sharing a disk store split the missing work -----------------
    @staticmethod
    def _claim(path: Path) -> bool:
        """Atomically mark ``path`` as being computed by this process (``O_EXCL``)."""
        try:
            fd = os.open(path.with_suffix(".claim"), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w") as fh:
            fh.write(f"{socket.gethostname()} {os.getpid()}")
        return True

    @staticmethod
    def _release(path: Path) -> None:
        with contextlib.suppress(OSError):
            os.unlink(path.with_suffix(".claim"))

    def _claim_is_stale(self, path: Path) -> bool:
        """The claimer is gone: a dead process on this host, or no result for
        ``claim_timeout`` seconds (a claimer on another machine)."""
        claim = path.with_suffix(".claim")
        try:
            host, pid = claim.read_text().split()
            age = time.time() - claim.stat().st_mtime
        except (OSError, ValueError):
            return True  # released meanwhile, or an unreadable leftover
        if host == socket.gethostname():
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                return True
            except (OSError, ValueError):
                pass  # alive but not ours to signal
        return age > self.claim_timeout

    def _compute_shared(self, namespace: str, keys: Sequence[str], missing: list[int],
                        compute: Callable[[list[int]], np.ndarray], cdir: Path,
                        rows: list[np.ndarray | None]) -> tuple[int, int]:
        """Fill ``rows[missing]`` with processes that share ``cdir`` splitting the work.

        The missing rows are claimed ``claim_chunk`` at a time (an exclusive
        ``.claim`` file per row); rows another process has claimed are not
        computed again but read once it has written them. Returns ``(computed
        here, read from the store)``.
        """
        paths = {i: self._path(cdir, namespace, keys[i]) for i in missing}
        folder = next(iter(paths.values())).parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(
                f"The feature cache folder {os.fspath(cdir)!r} cannot be written ({exc}). Pass a "
                f"writable cache_dir (or set {CACHE_DIR_ENV} to one), or cache_dir=None to keep "
                "features in memory only."
            ) from None
        computed = read = 0
        deferred: list[int] = []

        def take(found: int, arr: np.ndarray) -> None:
            rows[found] = arr
            self._put_mem((namespace, keys[found]), arr)

        def claim_or_read(i: int, stale_ok: bool = False) -> str:
            """"read" (the row is in the store), "mine" (claimed) or "wait"."""
            for _ in range(2):
                arr = self._read_disk(paths[i])
                if arr is not None:
                    take(i, arr)
                    return "read"
                if self._claim(paths[i]):
                    # The claimer writes the row before releasing its claim: a row finished
                    # between the read above and this claim is in the store now.
                    arr = self._read_disk(paths[i])
                    if arr is None:
                        return "mine"
                    self._release(paths[i])
                    take(i, arr)
                    return "read"
                if not (stale_ok and self._claim_is_stale(paths[i])):
                    return "wait"
                self._release(paths[i])  # a dead claimer's: remove it and try once more
            return "wait"

        def run(mine: list[int]) -> None:
            nonlocal computed
            try:
                for i, arr in zip(mine, self._computed_rows(compute, mine)):
                    take(i, arr)
                    self._write_disk(paths[i], arr)
                computed += len(mine)
            finally:
                for i in mine:
                    self._release(paths[i])

        for s in range(0, len(missing), self.claim_chunk):
            mine: list[int] = []
            for i in missing[s:s + self.claim_chunk]:
                got = claim_or_read(i)
                if got == "read":
                    read += 1
                else:
                    (mine if got == "mine" else deferred).append(i)
            if mine:
                run(mine)
        while deferred:  # rows other processes are computing
            waiting: list[int] = []
            mine = []
            for i in deferred:
                got = claim_or_read(i, stale_ok=True)
                if got == "read":
                    read += 1
                else:
                    (mine if got == "mine" else waiting).append(i)
            if mine:
                logger.info("Computing %d cached features whose claimer stopped.", len(mine))
                run(mine)
            elif waiting:
                time.sleep(self.claim_poll)
            deferred = waiting
        return computed, read

    # -- public API ----------------------------------------------------------------
    def get_many(self, namespace: str, keys: Sequence[str], compute: Callable[[list[int]], np.ndarray],
                 cache_dir: str | os.PathLike[str] | None = None) -> np.ndarray:
        """Look ``keys`` up; ``compute(missing_positions)`` returns the missing rows.

        With ``cache_dir``, processes that miss the same rows at the same time
        split them (see :meth:`_compute_shared`) instead of each computing all.

        Returns an array of shape ``(len(keys), ...)`` in the order of ``keys``.
        """
        cdir = Path(cache_dir) if cache_dir else None
        rows: list[np.ndarray | None] = [None] * len(keys)
        missing: list[int] = []
        n_hits = n_disk = 0
        for i, k in enumerate(keys):
            arr = self._get_mem((namespace, k))
            if arr is None and cdir is not None:
                arr = self._read_disk(self._path(cdir, namespace, k))
                if arr is not None:
                    n_disk += 1
                    self._put_mem((namespace, k), arr)
            if arr is None:
                missing.append(i)
            else:
                n_hits += 1
                rows[i] = arr
        if missing and cdir is not None:
            computed, read = self._compute_shared(namespace, keys, missing, compute, cdir, rows)
            n_hits += read
            n_disk += read
            n_missed = computed
        elif missing:
            for i, arr in zip(missing, self._computed_rows(compute, missing)):
                rows[i] = arr
                self._put_mem((namespace, keys[i]), arr)
            n_missed = len(missing)
        else:
            n_missed = 0
        with self._lock:
            self.hits += n_hits
            self.disk_hits += n_disk
            self.misses += n_missed
        return np.stack(rows)  # type: ignore[arg-type]

    def stats(self) -> dict[str, Any]:
        """``hits``, ``misses``, ``disk_hits`` (part of ``hits``), ``evictions``,
        ``entries``, ``bytes``, ``max_bytes`` and ``compute_seconds`` (time spent
        computing missing features)."""
        with self._lock:
            return {"hits": self.hits, "misses": self.misses, "disk_hits": self.disk_hits,
                    "evictions": self.evictions, "entries": len(self._store),
                    "bytes": self._bytes, "max_bytes": self.max_bytes,
                    "compute_seconds": round(self.compute_seconds, 3)}

    def clear(self) -> None:
        """Drop all in-memory entries and reset the counters (files on disk stay)."""
        with self._lock:
            self._store.clear()
            self._bytes = 0
            self.hits = self.misses = self.disk_hits = self.evictions = 0
            self.compute_seconds = 0.0


_CACHE: FeatureCache | None = None
_CACHE_LOCK = threading.Lock()


def get_feature_cache() -> FeatureCache:
    """The process-wide cache (limit from ``CXRKIT_FEATURE_CACHE_BYTES``, default 1 GiB)."""
    global _CACHE
    with _CACHE_LOCK:
        if _CACHE is None:
            raw = os.environ.get(CACHE_BYTES_ENV)
            try:
                limit = int(raw) if raw else DEFAULT_CACHE_BYTES
            except ValueError:
                raise ConfigurationError(
                    f"{CACHE_BYTES_ENV} must be an integer number of bytes; got {raw!r}."
                ) from None
            _CACHE = FeatureCache(limit)
        return _CACHE


def feature_cache_stats() -> dict[str, Any]:
    """Statistics of the process-wide feature cache.

    Returns
    -------
    dict
        ``hits``, ``misses``, ``disk_hits``, ``evictions``, ``entries``,
        ``bytes`` (in memory), ``max_bytes`` and ``compute_seconds``.
    """
    return get_feature_cache().stats()


def clear_feature_cache() -> None:
    """Empty the process-wide in-memory feature cache and reset its statistics."""
    get_feature_cache().clear()


def feature_cache_reason(module: CXRNet, augment: str | None,
                         transforms: Sequence[Any]) -> str | None:
    """Why cached features would be wrong for this training run, or ``None`` if they are exact."""
    if not isinstance(module, CXRNet):
        return f"the network is a {type(module).__name__}, not a CXRNet with a features/head split"
    if not module.backbone_frozen:
        return (f"the backbone is trained (freeze={module.freeze_mode!r}); use "
                "freeze='backbone' or 'all_but_last' to train the head on cached features")
    if any(p.requires_grad for p in module.backbone.parameters()):
        return "some backbone parameters require gradients"
    if augment not in (None, "hflip"):
        return f"augmentation {augment!r} changes the backbone input every epoch"
    for t in transforms:
        if getattr(t, "deterministic", True) is False:
            return f"transform {t!r} is random (deterministic=False)"
    return None


def _image_key(img: np.ndarray) -> str:
    a = np.ascontiguousarray(img)
    return _hash_bytes(str(a.dtype).encode(), str(a.shape).encode(),
                       a.reshape(-1).view(np.uint8).data)


def cached_features(module: CXRNet, images: np.ndarray, prep: Preprocessing, *,
                    views: Sequence[str] = ("orig",), device: str = "cpu",
                    cache_dir: str | os.PathLike[str] | None = None, batch_size: int = 32,
                    cache: FeatureCache | None = None,
                    channels_last: bool = False) -> dict[str, np.ndarray]:
    """Pooled backbone features of prepared images, from the cache where possible.

    Parameters
    ----------
    module : CXRNet
        Network whose ``features`` are wanted (evaluated in eval mode).
    images : ndarray of shape (n, S, S)
        Prepared (transformed and resized) grayscale images.
    prep : Preprocessing
        Normalisation and channel count applied to each image.
    views : sequence of {"orig", "hflip"}
        Which views to return.
    device : str
        Where missing features are computed.
    cache_dir : path, optional
        On-disk store shared between processes.
    channels_last : bool, default=False
        Compute missing features with channels-last input (faster on CPU for
        most torchvision backbones; equal within float rounding).

    Returns
    -------
    dict
        ``view -> float32 array of shape (n, num_features)``.
    """
    cache = cache or get_feature_cache()
    namespace = _hash_bytes(backbone_fingerprint(module).encode(),
                            _preprocessing_fingerprint(prep).encode(), b"float32-v2")
    img_keys = [_image_key(img) for img in images]
    out: dict[str, np.ndarray] = {}
    for view in views:
        if view not in VIEWS:
            raise ValueError(f"view must be one of {VIEWS}; got {view!r}.")
        flip = view == "hflip"
        keys = [f"{k}-{view}" for k in img_keys]

        def compute(positions: list[int], flip: bool = flip) -> np.ndarray:
            return _compute(module, images, positions, prep, flip, device, batch_size,
                            channels_last)

        out[view] = cache.get_many(namespace, keys, compute, cache_dir)
    return out


def _compute(module: CXRNet, images: np.ndarray, positions: list[int], prep: Preprocessing,
             flip: bool, device: str, batch_size: int,
             channels_last: bool = False) -> np.ndarray:
    was_training = module.training
    module.eval()
    if channels_last:
        _backbone_channels_last(module)
    chunks = []
    try:
        with torch.inference_mode():
            for s in range(0, len(positions), batch_size):
                idx = positions[s:s + batch_size]
                xb = torch.stack([_to_tensor(images[i], prep, flip) for i in idx]).to(device)
                if channels_last:
                    xb = xb.contiguous(memory_format=torch.channels_last)
                chunks.append(module.features(xb).float().cpu().numpy())
    finally:
        module.train(was_training)
    return np.concatenate(chunks)


def _backbone_channels_last(module: CXRNet) -> None:
    """Store the backbone's 4-D weights channels-last (once; the values are unchanged,
    so the fingerprint stays the same), so channels-last input is not converted back."""
    weights = [p for p in module.backbone.parameters() if p.ndim == 4]
    if weights and not weights[0].is_contiguous(memory_format=torch.channels_last):
        module.backbone.to(memory_format=torch.channels_last)  # type: ignore[call-overload]


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` intra-op threads, then restore the previous number."""
    old = torch.get_num_threads()
    if old == n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


class FeatureDataset(Dataset):
    """Cached feature vectors -> ``(features, label)`` pairs.

    With ``hflip=True`` each access picks the flipped view with probability
    1/2, drawing from torch's global generator exactly as
    :class:`~cxrkit.estimators._data.ImageTensorDataset` does, so a seeded run
    flips the same samples in the same epochs with or without the cache.
    """

    def __init__(self, orig: np.ndarray, y: np.ndarray, flipped: np.ndarray | None = None,
                 hflip: bool = False) -> None:
        if hflip and flipped is None:
            raise ValueError("hflip=True needs the flipped view's features.")
        self.orig = torch.from_numpy(np.ascontiguousarray(orig, dtype=np.float32))
        self.flipped = (torch.from_numpy(np.ascontiguousarray(flipped, dtype=np.float32))
                        if flipped is not None else None)
        self.y = torch.as_tensor(np.asarray(y, dtype=np.float32))
        self.hflip = hflip
        self._views = (torch.cat([self.orig, self.flipped])
                       if hflip and self.flipped is not None else self.orig)

    def __len__(self) -> int:
        return len(self.orig)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        flip = bool(self.hflip and torch.rand(()) < 0.5)
        src = self.flipped if flip else self.orig
        return src[i], self.y[i]  # type: ignore[index]

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """A whole batch at once (``DataLoader`` calls this instead of ``__getitem__``).

        Draws the flips as one ``torch.rand(n)``, which yields the same numbers as
        ``n`` calls of ``torch.rand(())``: a seeded run flips the same samples.
        """
        return list(zip(*self.batch(indices)))

    def batch(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(features, labels)`` of ``indices`` as two tensors, drawing the flips as
        :meth:`__getitems__` does."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        if self.hflip:
            flip = torch.rand(len(idx)) < 0.5
            # rows n..2n-1 of `_views` are the flipped views: one gather per batch
            x = torch.index_select(self._views, 0, idx + flip * len(self.orig))
        else:
            x = torch.index_select(self.orig, 0, idx)
        return x, torch.index_select(self.y, 0, idx)


class FeatureBatches:
    """Mini-batches of a :class:`FeatureDataset`, without ``DataLoader``'s per-batch
    machinery (fetcher, collation of per-sample pairs).

    The head of a ResNet50 trains in well under a millisecond per batch, so that
    machinery was a fifth of the time of a cached fit. Each pass draws from
    torch's global generator exactly as a single-process ``DataLoader`` with the
    same ``batch_size``/``shuffle``/``drop_last``/``generator`` does (its base-seed
    draw, then the sampler's permutation, then the flips of each batch), so a
    seeded run yields the same batches either way.
    """

    #: ``iterator_train__``/``iterator_valid__`` options this class reproduces.
    OPTIONS = frozenset({"batch_size", "shuffle", "drop_last", "generator"})

    def __init__(self, dataset: FeatureDataset, batch_size: int = 1, shuffle: bool = False,
                 drop_last: bool = False, generator: torch.Generator | None = None) -> None:
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.generator = generator

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        from torch.utils.data import BatchSampler, RandomSampler, SequentialSampler

        # DataLoader's iterator draws a base seed for its workers, even with none.
        torch.empty((), dtype=torch.int64).random_(generator=self.generator)
        sampler = (RandomSampler(self.dataset, generator=self.generator) if self.shuffle
                   else SequentialSampler(self.dataset))
        for indices in BatchSampler(sampler, self.batch_size, self.drop_last):
            yield self.dataset.batch(indices)


class HeadOnly(torch.nn.Module):
    """Features -> logit through a CXRNet's head (shares the CXRNet's parameters)."""

    def __init__(self, net: CXRNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.net.forward_head(feats)


class FeatureAwareNet(NeuralNet):
    """A skorch net whose ``module_`` is the full :class:`CXRNet` and that
    accepts either images ``(N, C, H, W)`` or cached features ``(N, F)``.

    Feature batches go through ``module_.forward_head`` only, so callbacks see
    the real network (its ``state_dict``, ``trainable_state_dict``, head) and
    schedules, accuracy and snapshot callbacks work unchanged.
    """

    def fit_loop(self, X: Any, y: Any = None, epochs: int | None = None,
                 **fit_params: Any) -> FeatureAwareNet:
        # The head's tensors are small (16 x 2048 features, a 2048 x 64 layer): splitting
        # each op over threads gains nothing, and on a busy CPU every op waits for a
        # descheduled thread. B1 (one 80-epoch fit of a ResNet50 head, a second process
        # busy on the same 2 cores): 83 s with 2 threads, 2.8 s with 1.
        one = isinstance(X, FeatureDataset) and str(self.device).startswith("cpu")
        with _torch_threads(1) if one else contextlib.nullcontext():
            return super().fit_loop(X, y, epochs=epochs, **fit_params)  # type: ignore[no-any-return]

    def get_all_learnable_params(self) -> Iterator[tuple[str, torch.nn.Parameter]]:
        """skorch's learnable parameters, less those that do not require gradients
        when the optimizer is built (a frozen backbone's).

        ``torch.optim`` skips parameters without a gradient anyway, but looks at
        every one of them in every ``zero_grad`` and ``step``: the 161 frozen
        tensors of a ResNet50 cost more than the step of its ``hall2020`` head.
        Parameters frozen later by a callback (skorch's ``Freezer``) stay in the
        optimizer, so ``Unfreezer`` works as usual.
        """
        for name, param in super().get_all_learnable_params():
            if param.requires_grad:
                yield name, param

    def get_iterator(self, dataset: Any, training: bool = False) -> Any:
        """:class:`FeatureBatches` for cached features with the default ``DataLoader``
        and options it reproduces; otherwise skorch's iterator."""
        iterator = self.iterator_train if training else self.iterator_valid
        kwargs = self.get_params_for("iterator_train" if training else "iterator_valid")
        if (isinstance(dataset, FeatureDataset) and iterator is torch.utils.data.DataLoader
                and set(kwargs) <= FeatureBatches.OPTIONS):
            bs = kwargs.pop("batch_size", self.batch_size)
            return FeatureBatches(dataset, len(dataset) if bs == -1 else bs, **kwargs)
        return super().get_iterator(dataset, training=training)

    def infer(self, x: Any, **fit_params: Any) -> torch.Tensor:
        x = to_tensor(x, device=self.device)
        if (isinstance(x, torch.Tensor) and x.ndim == 2
                and isinstance(self.module_, CXRNet)
                and x.shape[1] == self.module_.num_features):
            return self.module_.forward_head(x, **fit_params)
        if (isinstance(x, torch.Tensor) and x.ndim == 4
                and getattr(self, "channels_last_input", False)):
            x = x.contiguous(memory_format=torch.channels_last)
        return super().infer(x, **fit_params)


def cached_dataset_factory(clf: Any, module: CXRNet,
                           images: np.ndarray) -> Callable[..., Dataset] | None:
    """For :meth:`CXRClassifier.fit`: ``(index, y, hflip) -> FeatureDataset`` when
    cached features are exact for ``clf``'s settings, else ``None`` (with a log line)."""
    switch = getattr(clf, "feature_cache", "auto")
    if switch not in (True, False, "auto"):
        raise ConfigurationError(
            "The 'feature_cache' parameter of CXRClassifier must be True, False or 'auto'. "
            f"Got {switch!r} instead."
        )
    if switch is False:
        return None
    reason = feature_cache_reason(module, clf.augment, clf._transform_callables())
    if reason is not None:
        level = logging.WARNING if switch is True else logging.INFO
        logger.log(level, "Feature cache not used: %s.", reason)
        return None
    cache_dir = resolve_cache_dir(getattr(clf, "cache_dir", None))
    views = ("orig", "hflip") if clf.augment == "hflip" else ("orig",)
    channels_last = getattr(clf, "channels_last", "auto") in (True, "auto")
    feats = cached_features(module, images, clf.preprocessing_, views=views, device=clf.device_,
                            cache_dir=cache_dir, batch_size=max(int(clf.batch_size), 32),
                            channels_last=channels_last)
    logger.info("Feature cache used: %d images x %d view(s); %s.", len(images), len(views),
                feature_cache_stats())

    def make(idx: Any, y: np.ndarray, hflip: bool) -> FeatureDataset:
        return FeatureDataset(feats["orig"][idx], y,
                              feats["hflip"][idx] if "hflip" in feats else None, hflip=hflip)

    return make

"""What a shard run's outputs depend on: ids, images and the model, as hashes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import DataError
from ._data import ImageSource

__all__ = ["model_fingerprint", "image_ids", "hash_strings", "hash_images"]

# parameters that change speed or output location, not the values
_RUNTIME_PARAMS = {"batch_size", "device", "progress", "feature_cache", "cache_dir", "n_jobs"}


def image_ids(src: ImageSource, ids: Sequence[Any] | None) -> np.ndarray:
    if ids is None:
        values = src.paths if src.is_paths else np.arange(len(src))
        return np.asarray([str(v) for v in values], dtype=object)  # type: ignore[union-attr]
    out = np.asarray([str(v) for v in ids], dtype=object)
    if len(out) != len(src):
        raise DataError(f"ids has {len(out)} entries for {len(src)} images; give one id per image.")
    return out


def hash_strings(values: np.ndarray) -> str:
    h = hashlib.sha256()
    for v in values:
        h.update(str(v).encode() + b"\0")
    return h.hexdigest()


def hash_images(src: ImageSource) -> str:
    """Hash the paths of files (their contents are not read), the pixels' for an array."""
    if src.is_paths:
        return hash_strings(src.paths)  # type: ignore[arg-type]
    arr = np.ascontiguousarray(src.array)
    h = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(arr.reshape(-1).view(np.uint8).data)
    return h.hexdigest()


def model_fingerprint(model: Any) -> str:
    """Hash what a model's outputs depend on: class, value parameters, preprocessing, classes, weights.

    Ensemble members and pipeline steps are included; models without a torch
    network are hashed with :func:`joblib.hash`.

    Parameters that change only speed or where files go (``batch_size``,
    ``device``, ``progress``, ``feature_cache``, ``cache_dir``) are left out.
    """
    h = hashlib.sha256()
    _feed(h, model, 0)
    return h.hexdigest()


def _feed(h: Any, obj: Any, depth: int) -> None:
    h.update(f"{type(obj).__module__}.{type(obj).__qualname__}".encode())
    if hasattr(obj, "get_params"):
        params = obj.get_params(deep=False)
        simple = {
            k: v
            for k, v in params.items()
            if k not in _RUNTIME_PARAMS and isinstance(v, (str, int, float, bool, type(None)))
        }
        h.update(json.dumps(simple, sort_keys=True).encode())
    prep: Any = getattr(obj, "preprocessing_", None)
    if hasattr(prep, "to_dict"):
        h.update(json.dumps(prep.to_dict(), sort_keys=True, default=str).encode())
    for name in ("classes_", "labels_"):
        if getattr(obj, name, None) is not None:
            h.update(repr([str(c) for c in getattr(obj, name)]).encode())
    found = False
    module: Any
    try:
        module = obj.module_
    except Exception:  # noqa: BLE001 - unfitted or no network
        module = None
    if hasattr(module, "state_dict"):
        _feed_state(h, module.state_dict())
        found = True
    for member in getattr(obj, "members_", None) or ():  # snapshot ensembles' state dicts
        if isinstance(member, dict):
            _feed_state(h, member)
    for name in ("estimators_", "estimator_", "steps"):
        inner = getattr(obj, name, None)
        if inner is None or depth > 4:
            continue
        for sub in inner if isinstance(inner, (list, tuple)) else [inner]:
            sub = sub[-1] if isinstance(sub, tuple) else sub  # a pipeline step
            if hasattr(sub, "get_params"):
                _feed(h, sub, depth + 1)
                found = True
    if not found:
        import joblib

        h.update(joblib.hash(obj).encode())


def _feed_state(h: Any, state: dict[str, Any]) -> None:
    import torch

    for key in sorted(state):
        t = state[key]
        if not isinstance(t, torch.Tensor):
            continue
        t = t.detach().cpu()
        t = t.float() if t.dtype == torch.bfloat16 else t
        h.update(f"{key}{tuple(t.shape)}{t.dtype}".encode())
        h.update(np.ascontiguousarray(t.numpy()).tobytes())

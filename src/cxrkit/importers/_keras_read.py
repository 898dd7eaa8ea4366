"""Read a Keras HDF5 file's architecture and weights with :mod:`h5py` only (no Keras needed).

The file is refused unless all its data is stored in it (no external links,
external storage or virtual datasets); weight names are normalised across
Keras versions. :mod:`cxrkit.importers.keras_hdf5` loads the result into torch.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import WeightsError

__all__ = ["read_keras_hdf5"]

_KERNEL_ALIASES = {
    "kernel": "kernel",
    "W": "kernel",
    "bias": "bias",
    "b": "bias",
    "gamma": "gamma",
    "beta": "beta",
    "moving_mean": "moving_mean",
    "moving_variance": "moving_variance",
    "running_mean": "moving_mean",
    "running_std": "moving_variance",
}


def _decode(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.ndarray):
        return [_decode(v) for v in value.tolist()]
    return value


def _short_weight_name(layer: str, full: str) -> str:
    """``conv1/kernel:0`` / ``conv1_W_1:0`` / ``kernel`` -> ``kernel``."""
    name = full.split("/")[-1]
    name = re.sub(r":\d+$", "", name)
    if name.startswith(layer + "_"):  # Keras 1: block1_conv1_W_1
        name = name[len(layer) + 1 :]
        name = re.sub(r"_\d+$", "", name)
    return _KERNEL_ALIASES.get(name, name)


def _layer_weights(group: Any, layer: str) -> dict[str, np.ndarray]:
    import h5py

    names = _decode(group.attrs["weight_names"]) if "weight_names" in group.attrs else None
    out: dict[str, np.ndarray] = {}
    if names:
        for full in names:
            out[_short_weight_name(layer, full)] = np.asarray(group[full])
        return out
    found: list[tuple[str, Any]] = []
    group.visititems(
        lambda n, obj: found.append((n, obj)) if isinstance(obj, h5py.Dataset) else None
    )
    for full, ds in found:
        out[_short_weight_name(layer, full)] = np.asarray(ds)
    return out


def _check_self_contained(f: Any, p: Path) -> None:
    """Refuse a file whose data lives outside it: external links, datasets with external storage, virtual datasets (each can make h5py read any local file)."""
    import h5py

    def refuse(name: str, what: str) -> WeightsError:
        return WeightsError(
            f"Keras file '{p}' is refused: '{name}' is {what}, so reading it would read another "
            "file. cxrkit reads only weights stored in the file itself; re-save the model with "
            "Keras (model.save or model.save_weights) to get a self-contained file."
        )

    def problem(name: str, link: Any) -> str | None:
        if isinstance(link, h5py.ExternalLink):
            return f"an external link to '{link.filename}:{link.path}'"
        if not isinstance(link, h5py.HardLink):
            return None  # soft links name a path inside this file; what they reach is visited
        obj = f.get(name)
        if not isinstance(obj, h5py.Dataset):
            return None
        if obj.is_virtual:
            return f"a virtual dataset mapped from {sorted({s.file_name for s in obj.virtual_sources()})}"
        dcpl = obj.id.get_create_plist()
        if dcpl.get_external_count() > 0:
            ext = dcpl.get_external(0)[0]
            return (
                "a dataset with external storage in "
                f"'{ext.decode(errors='replace') if isinstance(ext, bytes) else ext}'"
            )
        return None

    # A non-None return value stops the visit (raising inside it is not supported by h5py).
    found = f.visititems_links(
        lambda name, link: (name, what) if (what := problem(name, link)) else None
    )
    if found is not None:
        raise refuse(*found)


def read_keras_hdf5(
    path: str | os.PathLike[str],
) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
    """Read the architecture and the weights of a Keras HDF5 file.

    Parameters
    ----------
    path : str or path-like
        A file written by Keras' ``model.save`` (``model_config`` attribute and
        ``model_weights`` group), ``model.save_weights`` or a Keras-applications
        weight file (layer groups at the root).

    Returns
    -------
    config : dict
        The parsed ``model_config`` JSON (``{}`` for weight-only files), plus
        ``"keras_version"`` and ``"backend"`` when the file records them.
    weights : dict of str to dict of str to ndarray
        Layer name -> ``{"kernel": ..., "bias": ...}`` for every layer with
        weights, in Keras layout (conv kernels ``(H, W, in, out)``). Weight names
        are normalised (``kernel:0``, ``W_1:0`` -> ``kernel``; ``b`` -> ``bias``).

    Raises
    ------
    WeightsError
        The file is missing or is not a Keras HDF5 file, or its data is not all
        stored in it (external links, external storage, virtual datasets).
    """
    import h5py

    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"Keras weights file '{p}' does not exist.")
    try:
        f = h5py.File(p, "r")
    except OSError as exc:
        raise WeightsError(
            f"Keras weights file '{p}' could not be opened as HDF5 ({exc}). Pass a Keras .h5/.hdf5 "
            "file written by model.save or model.save_weights."
        ) from None
    with f:
        _check_self_contained(f, p)
        config: dict[str, Any] = {}
        if "model_config" in f.attrs:
            raw = _decode(f.attrs["model_config"])
            try:
                config = json.loads(raw)
            except (TypeError, ValueError) as exc:
                raise WeightsError(
                    f"Keras file '{p}' has a model_config attribute that is not valid JSON ({exc})."
                ) from None
        root = f["model_weights"] if "model_weights" in f else f
        for key in ("keras_version", "backend"):
            if key in root.attrs and config:
                config[key] = _decode(root.attrs[key])
        if "layer_names" in root.attrs:
            layer_names = _decode(root.attrs["layer_names"])
        else:
            layer_names = [k for k in root.keys() if isinstance(root[k], h5py.Group)]
        if not layer_names:
            raise WeightsError(
                f"Keras file '{p}' holds no layers (no 'layer_names' attribute and no layer "
                "groups). Is it a Keras HDF5 weights file?"
            )
        weights: dict[str, dict[str, np.ndarray]] = {}
        for name in layer_names:
            if name not in root:
                raise WeightsError(
                    f"Keras file '{p}' lists layer {name!r} but has no group for it."
                )
            w = _layer_weights(root[name], name)
            if w:
                weights[name] = w
    return config, weights

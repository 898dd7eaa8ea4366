"""Saving and loading fitted models in safe formats.

A model folder holds ``config.json`` (parameters, classes, preprocessing) and
``model.safetensors`` (the network's tensors). Loading rebuilds the network
from the registered architecture and reads tensors only: no pickled code runs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..architectures import Preprocessing, create_architecture
from ..errors import ConfigurationError

__all__ = ["save_model", "load_model"]

_JSON = (int, float, str, bool, type(None))


def _jsonable_params(est: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in est.get_params(deep=False).items():
        if k in ("callbacks", "accelerator"):  # a saved model loads as a CXRClassifier
            continue
        if k == "transforms":
            v = [t for t in (v or ()) if isinstance(t, str)]
        if isinstance(v, _JSON) or (isinstance(v, list) and all(isinstance(t, _JSON) for t in v)):
            out[k] = v
        elif k == "optimizer":
            out[k] = getattr(v, "__name__", str(v)).lower()
    return out


def save_model(estimator: Any, directory: str | os.PathLike[str]) -> Path:
    """Save a fitted :class:`CXRClassifier` (or a snapshot ensemble) to ``directory``."""
    from safetensors.torch import save_file

    if hasattr(estimator, "members_"):
        return estimator.save(directory)
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    module = estimator.module_
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    save_file(state, str(out / "model.safetensors"))
    config = {
        "kind": "CXRClassifier",
        "format": 1,
        "params": _jsonable_params(estimator),
        "classes": np.asarray(estimator.classes_).tolist(),
        "preprocessing": estimator.preprocessing_.to_dict(),
    }
    (out / "config.json").write_text(json.dumps(config, indent=2))
    return out


def load_model(directory: str | os.PathLike[str], device: str = "auto") -> Any:
    """Load a model written by :func:`save_model` (a classifier or a snapshot ensemble)."""
    d = Path(directory)
    if (d / "ensemble.json").is_file():
        from ._snapshot import SnapshotEnsembleClassifier

        if not (d / "config.json").is_file():
            raise ConfigurationError(f"'{d}' has ensemble.json but no config.json.")
        return SnapshotEnsembleClassifier.load(d)
    return load_classifier(d, device=device)


def load_classifier(directory: str | os.PathLike[str], device: str = "auto") -> Any:
    """Load the single network of a model folder as a fitted :class:`CXRClassifier`."""
    from safetensors.torch import load_file

    from ._classifier import CXRClassifier

    d = Path(directory)
    if not (d / "config.json").is_file() or not (d / "model.safetensors").is_file():
        raise ConfigurationError(
            f"'{d}' is not a cxrkit model folder: expected config.json and model.safetensors "
            "(written by cxrkit.save_model or `cxrkit run --save`)."
        )
    config = json.loads((d / "config.json").read_text())
    params = dict(config["params"])
    params["pretrained"] = None  # the saved tensors replace any initial weights
    module_kw = {k[len("module__"):]: v for k, v in params.items() if k.startswith("module__")}
    module = create_architecture(params["architecture"], pretrained=None, head=params.get("head"),
                                 freeze=params.get("freeze", "none"), **module_kw)
    module.load_state_dict(load_file(str(d / "model.safetensors")))
    prep = Preprocessing(**{**config["preprocessing"],
                            "mean": tuple(config["preprocessing"]["mean"]),
                            "std": tuple(config["preprocessing"]["std"])})
    params.pop("architecture")
    params["device"] = device
    return CXRClassifier.from_module(module, config["classes"], preprocessing=prep, **params)

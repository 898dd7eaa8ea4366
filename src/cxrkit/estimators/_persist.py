"""Saving and loading fitted models in safe formats.

A model folder holds ``config.json`` (parameters, classes, preprocessing),
``model.safetensors`` (the network's tensors), for a snapshot ensemble
``ensemble.json`` and one ``member_NN.safetensors`` per member, and
``manifest.json``: the format version, the kind of model, and the size and
SHA-256 of every other file.

Saving writes the whole folder into a temporary folder next to the target and
then swaps it into place, so an interrupted save leaves either the previous
model or the new one, never a mix. Loading checks every file against the
manifest and every JSON file against its schema
(:mod:`cxrkit.estimators._model_schema`) before building anything, rebuilds the
network from the registered architecture and reads tensors only: no pickled
code runs.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import clone

from .._outputs import is_model_folder
from ..architectures import Preprocessing, create_architecture
from ..errors import CxrkitError, ModelFormatError
from ._atomic import atomic_folder, file_digest, interrupted_saves
from ._classifier import CXRClassifier
from ._interrupt import refuse_interrupted
from ._model_schema import (
    CONFIG_SCHEMA,
    ENSEMBLE_SCHEMA,
    FORMAT,
    MANIFEST_FORMATS,
    MANIFEST_SCHEMA,
    read_json,
    upgrade_config,
    validate,
)
from ._snapshot import SnapshotEnsembleClassifier
from ._snapshot_callback import _nbytes

__all__ = ["save_model", "load_model", "load_classifier", "check_model_folder"]

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


def _write_classifier(estimator: Any, folder: Path) -> dict[str, Any]:
    from safetensors.torch import save_file

    refuse_interrupted(estimator, "be saved")
    module = estimator.module_
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    config = {
        "kind": "CXRClassifier",
        "format": FORMAT,
        "params": _jsonable_params(estimator),
        "task": estimator.task_,
        # the logits' labels: the classes, or the finding names of a multi-label model
        "classes": (
            list(estimator.labels_)
            if estimator.task_ == "multilabel-indicator"
            else np.asarray(estimator.classes_).tolist()
        ),
        "preprocessing": estimator.preprocessing_.to_dict(),
    }
    text = json.dumps(config, indent=2)
    validate(json.loads(text), CONFIG_SCHEMA, "config.json (to be saved)")
    save_file(state, str(folder / "model.safetensors"))
    (folder / "config.json").write_text(text)
    return config


def _write_ensemble(ens: Any, folder: Path) -> None:
    from safetensors.torch import save_file
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(ens, "members_")
    refuse_interrupted(ens, "be saved")
    _write_classifier(ens.estimator_, folder)
    for j, member in enumerate(ens.members_):
        save_file(
            {k: v.contiguous() for k, v in member.items()},
            str(folder / f"member_{j:02d}.safetensors"),
        )
    meta = {
        "kind": "SnapshotEnsembleClassifier",
        "n_members": len(ens.members_),
        "snapshots": ens.snapshots_,
        "params": {
            k: v
            for k, v in ens.get_params(deep=False).items()
            if k != "estimator" and isinstance(v, (int, float, str, type(None)))
        },
    }
    text = json.dumps(meta, indent=2)
    validate(json.loads(text), ENSEMBLE_SCHEMA, "ensemble.json (to be saved)")
    (folder / "ensemble.json").write_text(text)


def save_model(estimator: Any, directory: str | os.PathLike[str]) -> Path:
    """Save a fitted :class:`CXRClassifier` (or a snapshot ensemble) to ``directory``.

    The folder is written next to ``directory`` under a temporary name and
    swapped into place when complete, so an interruption (Ctrl-C, a killed
    process) leaves the previous model or the new one, never a mix. An existing
    ``directory`` is replaced only if it is empty or a cxrkit model folder.

    Parameters
    ----------
    estimator : CXRClassifier or SnapshotEnsembleClassifier
        Fitted, and not interrupted during ``fit``.
    directory : path
        The model folder.

    Returns
    -------
    Path
        ``directory``.

    Raises
    ------
    TrainingInterruptedError
        ``fit`` was interrupted; the weights are those of an unfinished run.
    OutputPathError
        ``directory`` exists and is not a model folder, or cannot be written.
    """
    is_ensemble = hasattr(estimator, "members_")
    kind = "SnapshotEnsembleClassifier" if is_ensemble else "CXRClassifier"
    with atomic_folder(Path(directory), is_replaceable=is_model_folder) as tmp:
        if is_ensemble:
            _write_ensemble(estimator, tmp)
        else:
            _write_classifier(estimator, tmp)
        files = {p.name: file_digest(p) for p in sorted(tmp.iterdir())}
        manifest = {"format": FORMAT, "kind": kind, "files": files}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return Path(directory)


def _missing_folder_error(d: Path) -> ModelFormatError:
    hint = ""
    leftovers = interrupted_saves(d)
    if leftovers:
        hint = (
            f" A save of this folder was interrupted; the last complete model may be in "
            f"'{leftovers[0]}' (rename it to '{d.name}')."
        )
    return ModelFormatError(
        f"'{d}' is not a cxrkit model folder: expected manifest.json, config.json and "
        f"model.safetensors (written by cxrkit.save_model or `cxrkit run --save`).{hint}"
    )


def check_model_folder(directory: str | os.PathLike[str]) -> str:
    """Check a model folder's files against its manifest and return its kind.

    Returns
    -------
    {"CXRClassifier", "SnapshotEnsembleClassifier"}

    Raises
    ------
    ModelFormatError
        A file is missing, truncated or changed since it was saved, the format is
        one this cxrkit does not read, or a JSON file does not fit its schema.
    """
    d = Path(directory)
    if not d.is_dir():
        raise _missing_folder_error(d)
    if not (d / "manifest.json").is_file():
        if not (d / "config.json").is_file():
            raise _missing_folder_error(d)
        config = read_json(d / "config.json")
        validate(upgrade_config(config), CONFIG_SCHEMA, d / "config.json")
        if config["format"] != 1:
            raise ModelFormatError(
                f"'{d / 'manifest.json'}' is missing, but config.json says format "
                f"{config['format']}, whose folders always have one: the save was interrupted "
                "or the folder was copied in part. Save the model again."
            )
        warnings.warn(
            f"'{d}' is a format-1 model folder without a manifest, so its files "
            "cannot be checked for consistency. Save it again to upgrade it.",
            UserWarning,
            stacklevel=3,
        )
        return "SnapshotEnsembleClassifier" if (d / "ensemble.json").is_file() else "CXRClassifier"
    manifest = read_json(d / "manifest.json")
    validate(manifest, MANIFEST_SCHEMA, d / "manifest.json")
    if manifest["format"] not in MANIFEST_FORMATS:
        raise ModelFormatError(
            f"'{d / 'manifest.json'}' has format {manifest['format']!r}; this cxrkit reads "
            f"manifests of formats {', '.join(map(str, MANIFEST_FORMATS))}. Upgrade cxrkit, or "
            "save the model again with this one."
        )
    needed = {"config.json", "model.safetensors"}
    if manifest["kind"] == "SnapshotEnsembleClassifier":
        needed.add("ensemble.json")
    for name in sorted(needed - set(manifest["files"])):
        raise ModelFormatError(
            f"'{d / 'manifest.json'}' does not list {name}; a "
            f"{manifest['kind']} folder needs it. Save the model again."
        )
    for name, want in manifest["files"].items():
        p = d / name
        if not p.is_file():
            raise ModelFormatError(
                f"'{p}' is listed in the manifest but missing: the folder "
                "is incomplete. Save the model again or copy the whole folder."
            )
        got: dict[str, Any] = file_digest(p)
        if got != want:
            raise ModelFormatError(
                f"'{p}' does not match the manifest ({got['size']} bytes, sha256 "
                f"{got['sha256'][:12]}..., expected {want['size']} bytes, sha256 "
                f"{want['sha256'][:12]}...): it is truncated or was changed after saving. "
                "Save the model again or copy the whole folder."
            )
    return str(manifest["kind"])


def load_model(directory: str | os.PathLike[str], device: str = "auto") -> Any:
    """Load a model written by :func:`save_model` (a classifier or a snapshot ensemble).

    Raises
    ------
    ModelFormatError
        The folder is incomplete, damaged, or not a cxrkit model folder (see
        :func:`check_model_folder`); every failure names the file and the field.
    """
    d = Path(directory)
    if check_model_folder(d) == "SnapshotEnsembleClassifier":
        return _load_ensemble(d, device)
    return _load_classifier(d, device)


def load_classifier(directory: str | os.PathLike[str], device: str = "auto") -> Any:
    """Load the single network of a model folder as a fitted :class:`CXRClassifier`."""
    d = Path(directory)
    check_model_folder(d)
    return _load_classifier(d, device)


def _read_tensors(path: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except Exception as exc:  # safetensors raises its own error type for damaged files
        raise ModelFormatError(
            f"'{path}' could not be read as safetensors ({exc}). The file is "
            "truncated or damaged; save the model again."
        ) from None


def _load_classifier(d: Path, device: str) -> Any:
    config = upgrade_config(read_json(d / "config.json"))
    validate(config, CONFIG_SCHEMA, d / "config.json")
    params = dict(config["params"])
    params["pretrained"] = None  # the saved tensors replace any initial weights
    module_kw = {k[len("module__") :]: v for k, v in params.items() if k.startswith("module__")}
    try:
        module = create_architecture(
            params["architecture"],
            pretrained=None,
            head=params.get("head"),
            freeze=params.get("freeze", "none"),
            **module_kw,
        )
        task = config.get("task", "binary")  # folders written before multi-class were binary
        module.set_outputs(1 if task == "binary" else len(config["classes"]))
    except CxrkitError as exc:
        raise ModelFormatError(
            f"'{d / 'config.json'}': field 'params.architecture': {exc}"
        ) from None
    except (TypeError, ValueError) as exc:
        raise ModelFormatError(
            f"'{d / 'config.json'}': the network {params['architecture']!r} could not be built "
            f"from the fields 'params.head', 'params.module__*' ({exc})."
        ) from None
    try:
        module.load_state_dict(_read_tensors(d / "model.safetensors"))
    except RuntimeError as exc:
        raise ModelFormatError(
            f"'{d / 'model.safetensors'}' does not fit the network described in config.json "
            f"({str(exc).splitlines()[0]} ...). The two files come from different models; "
            "save the model again."
        ) from None
    prep = Preprocessing(
        **{
            **config["preprocessing"],
            "mean": tuple(config["preprocessing"]["mean"]),
            "std": tuple(config["preprocessing"]["std"]),
        }
    )
    params.pop("architecture")
    params["device"] = device
    return CXRClassifier.from_module(
        module, config["classes"], task=task, preprocessing=prep, **params
    )


def _load_ensemble(d: Path, device: str) -> Any:
    meta = read_json(d / "ensemble.json")
    validate(meta, ENSEMBLE_SCHEMA, d / "ensemble.json")
    est = _load_classifier(d, device)
    shapes = {k: tuple(v.shape) for k, v in est.module_.state_dict().items()}
    members = []
    for j in range(meta["n_members"]):
        path = d / f"member_{j:02d}.safetensors"
        if not path.is_file():
            raise ModelFormatError(
                f"'{path}' is missing; ensemble.json says the ensemble has "
                f"{meta['n_members']} members. Save the model again."
            )
        member = _read_tensors(path)
        bad = [k for k, v in member.items() if shapes.get(k) != tuple(v.shape)]
        if bad:
            raise ModelFormatError(
                f"'{path}' holds tensors that do not fit the network of "
                f"config.json (e.g. {bad[0]!r}). Save the model again."
            )
        members.append(member)
    ens = SnapshotEnsembleClassifier(estimator=clone(est), **meta["params"])
    ens.estimator_ = est
    ens.members_ = members
    ens.snapshots_ = meta["snapshots"]
    ens.snapshot_nbytes_ = int(sum(_nbytes(m) for m in members))
    ens.copy_target(est)
    ens.interrupted_ = None
    return ens

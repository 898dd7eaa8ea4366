"""JSON schemas of the files in a saved model folder, and their validation.

A model folder may come from anywhere, so every JSON file in it is checked
against a schema (types, ranges, known keys, the format version) before
anything is built from it; a failure is a :class:`~cxrkit.errors.ModelFormatError`
naming the file and the field.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from ..errors import ModelFormatError

__all__ = [
    "FORMAT",
    "READABLE_FORMATS",
    "MAX_INPUT_SIZE",
    "CONFIG_SCHEMA",
    "ENSEMBLE_SCHEMA",
    "MANIFEST_SCHEMA",
    "read_json",
    "upgrade_config",
    "validate",
]

#: Version of the model-folder layout written by :func:`cxrkit.save_model`.
#:
#: * 1: ``config.json``, ``model.safetensors`` (and ``ensemble.json``, members), no manifest.
#: * 2: adds ``manifest.json`` (sizes and SHA-256 of every file).
#: * 3: the speed switches ``grayscale_conv``, ``channels_last`` and ``tune_malloc`` are no
#:   longer classifier parameters (they are :func:`cxrkit.set_config` keys).
FORMAT = 3
#: Versions this cxrkit reads; older ones are upgraded by :func:`upgrade_config`.
READABLE_FORMATS = (1, 2, 3)
#: Versions whose folders have a ``manifest.json``.
MANIFEST_FORMATS = (2, 3)
#: Classifier parameters of formats 1-2 that became configuration keys in format 3.
MOVED_TO_CONFIG = ("grayscale_conv", "channels_last", "tune_malloc")
#: Largest accepted network input side, in pixels (a larger value in a
#: foreign ``config.json`` would allocate gigabytes per batch).
MAX_INPUT_SIZE = 2048
_MAX_JSON_BYTES = 1 << 20

_AUTO_BOOL = {"enum": ["auto", True, False]}
_SCALAR = {"type": ["string", "number", "boolean", "null"]}
_ROUTED = "^(optimizer|module|lr_schedule|iterator_train|iterator_valid|callbacks|criterion)__"
_INPUT_SIZE = {"type": "integer", "minimum": 1, "maximum": MAX_INPUT_SIZE}

_CLASSIFIER_PARAMS = {
    "architecture": {"type": "string", "minLength": 1, "maxLength": 200},
    "pretrained": {"type": ["string", "null"]},
    "head": {"type": ["string", "null"]},
    "freeze": {"enum": ["none", "backbone", "all_but_last"]},
    "input_size": {"anyOf": [{"type": "null"}, _INPUT_SIZE]},
    "interpolation": {"enum": [None, "nearest", "bilinear", "bicubic", "lanczos", "skimage"]},
    "augment": {"type": ["string", "null"], "maxLength": 200},
    "tta": {"enum": [None, "hflip"]},
    "transforms": {"type": "array", "items": {"type": "string"}, "maxItems": 100},
    "optimizer": {"enum": ["sgd", "rmsprop", "adam", "adamw"]},
    "lr": {"type": "number", "exclusiveMinimum": 0},
    "lr_schedule": {"enum": [None, "cyclic", "cosine_restarts"]},
    "batch_size": {"type": "integer", "minimum": 1, "maximum": 1 << 16},
    "max_epochs": {"type": "integer", "minimum": 1},
    "validation": {"type": ["number", "null"], "minimum": 0},
    "device": {"type": "string"},
    "random_state": {"type": ["integer", "null"]},
    "verbose": {"type": "integer", "minimum": 0},
    "feature_cache": _AUTO_BOOL,
    "cache_dir": {"type": ["string", "null"]},
    "amp": {"enum": [None, "bf16", "fp16"]},
    "uncertain": {"enum": ["ignore", "ones", "zeros"]},
    "class_weight": {"type": ["string", "null"]},
    "threshold": {
        "anyOf": [
            {"type": ["number", "null"], "minimum": 0, "maximum": 1},
            {"type": "array", "items": {"type": "number"}, "maxItems": 1000},
        ]
    },
}

CONFIG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["kind", "format", "params", "classes", "preprocessing"],
    "additionalProperties": False,
    "properties": {
        "kind": {"const": "CXRClassifier"},
        "format": {"enum": list(READABLE_FORMATS)},
        "params": {
            "type": "object",
            "required": ["architecture"],
            "properties": _CLASSIFIER_PARAMS,
            "patternProperties": {
                _ROUTED: {"anyOf": [_SCALAR, {"type": "array", "items": _SCALAR}]}
            },
            "additionalProperties": False,
        },
        "task": {"enum": ["binary", "multiclass", "multilabel-indicator"]},
        "classes": {
            "type": "array",
            "minItems": 2,
            "maxItems": 1000,
            "uniqueItems": True,
            "items": {"type": ["string", "number", "boolean"]},
        },
        "preprocessing": {
            "type": "object",
            "required": ["input_size", "interpolation", "mean", "std", "channels"],
            "additionalProperties": False,
            "properties": {
                "input_size": _INPUT_SIZE,
                "interpolation": {"enum": ["nearest", "bilinear", "bicubic", "lanczos", "skimage"]},
                "mean": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 4,
                    "items": {"type": "number"},
                },
                "std": {
                    "type": "array",
                    "minItems": 1,
                    "maxItems": 4,
                    "items": {"type": "number", "exclusiveMinimum": 0},
                },
                "channels": {"type": "integer", "minimum": 1, "maximum": 4},
                "crop": {"enum": ["none", "square"]},
                "crop_pct": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            },
        },
    },
}

_NUM_OR_NULL = {"type": ["number", "null"]}
ENSEMBLE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["kind", "n_members", "snapshots", "params"],
    "additionalProperties": False,
    "properties": {
        "kind": {"const": "SnapshotEnsembleClassifier"},
        "n_members": {"type": "integer", "minimum": 1, "maximum": 1000},
        "snapshots": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "epoch": {"type": ["integer", "null"]},
                    "monitor": {"type": ["string", "null"]},
                    "value": _NUM_OR_NULL,
                    "lr": _NUM_OR_NULL,
                    "nbytes": {"type": "integer", "minimum": 0},
                },
            },
        },
        "params": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "n_snapshots": {"type": "integer", "minimum": 1},
                "interval": {"type": "integer", "minimum": 1},
                "policy": {"enum": ["threshold", "cyclic", "last"]},
                "monitor": {"enum": ["train_acc", "valid_acc"]},
                "threshold": {"type": "number"},
                "validation": _NUM_OR_NULL,
                "max_epochs": {"type": ["integer", "null"], "minimum": 1},
                "if_threshold_not_reached": {"enum": ["raise", "last"]},
            },
        },
    },
}

MANIFEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["format", "kind", "files"],
    "additionalProperties": False,
    "properties": {
        "format": {"type": "integer"},
        "kind": {"enum": ["CXRClassifier", "SnapshotEnsembleClassifier"]},
        "files": {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": False,
            "patternProperties": {
                r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$": {
                    "type": "object",
                    "required": ["sha256", "size"],
                    "additionalProperties": False,
                    "properties": {
                        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                        "size": {"type": "integer", "minimum": 0},
                    },
                }
            },
        },
    },
}


def read_json(path: Path) -> Any:
    """Parse a JSON file of a model folder; a :class:`ModelFormatError` names what failed."""
    try:
        size = path.stat().st_size
        if size > _MAX_JSON_BYTES:
            raise ModelFormatError(
                f"'{path}' is {size} bytes; a cxrkit model file of this kind is at most "
                f"{_MAX_JSON_BYTES} bytes. The folder was not written by cxrkit.save_model."
            )
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelFormatError(
            f"'{path}' is missing. A cxrkit model folder holds manifest.json, config.json and "
            "model.safetensors (written by cxrkit.save_model or `cxrkit run --save`)."
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(
            f"'{path}' is not valid JSON ({exc}). The file is truncated or damaged; save the "
            "model again."
        ) from None


def upgrade_config(data: Any) -> Any:
    """Return ``config.json`` data of an older readable format in the current format's terms.

    Format 1-2 files may hold ``grayscale_conv``, ``channels_last`` and
    ``tune_malloc`` among their parameters: switches that changed speed, not the
    trained weights, and are :func:`cxrkit.set_config` keys since format 3. They
    are dropped (the configuration of the loading process applies). Data that is
    not a readable config is returned unchanged, for :func:`validate` to report.
    """
    if not isinstance(data, dict) or data.get("format") not in READABLE_FORMATS:
        return data
    out = dict(data)
    if out["format"] < 3 and isinstance(out.get("params"), dict):
        out["params"] = {k: v for k, v in out["params"].items() if k not in MOVED_TO_CONFIG}
    return out


def _field(error: Any) -> str:
    return ".".join(str(p) for p in error.absolute_path) or "(top level)"


def _message(error: Any) -> str:
    if error.validator != "additionalProperties" or not isinstance(error.instance, dict):
        return str(error.message)
    known = error.schema.get("properties", {})
    patterns = error.schema.get("patternProperties", {})
    extra = sorted(
        k for k in error.instance if k not in known and not any(re.search(p, k) for p in patterns)
    )
    routed = " or a routed parameter (optimizer__*, module__*, ...)" if patterns else ""
    return f"unknown key(s) {extra}; expected one of {sorted(known)}{routed}"


def validate(data: Any, schema: dict[str, Any], path: Path | str) -> None:
    """Raise :class:`ModelFormatError` naming ``path`` and the first bad field.

    The ``format`` field is checked first, so a folder from a newer cxrkit
    says so instead of listing the fields this version does not know.
    """
    import jsonschema

    fmt = data.get("format") if isinstance(data, dict) else None
    if (
        "format" in schema.get("properties", {})
        and fmt is not None
        and fmt not in READABLE_FORMATS
        and schema is not MANIFEST_SCHEMA
    ):
        raise ModelFormatError(
            f"'{path}' has format {fmt!r}; this cxrkit reads model formats "
            f"{', '.join(map(str, READABLE_FORMATS))}. It was written by another cxrkit version: "
            "upgrade cxrkit, or save the model again with this one."
        )
    validator = jsonschema.Draft202012Validator(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is not None:
        raise ModelFormatError(
            f"'{path}' is not a valid cxrkit model file: field '{_field(error)}': "
            f"{_message(error)}. Save the model again with cxrkit.save_model, or correct the field."
        )

"""Saving and loading a fitted ``LungSegmenter`` (safetensors + JSON)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import ConfigurationError, WeightsError
from ._estimator import LungSegmenter
from ._network import create_segmentation_network

__all__ = [
    "save_segmenter",
    "load_segmenter",
    "default_segmenter",
    "SEGMENTER_ENV",
    "FORMAT_VERSION",
]

FORMAT_VERSION = 1
#: Environment variable naming the folder of the segmenter that ``lung_crop``,
#: ``lung_mask`` and the lung guards use when given none.
SEGMENTER_ENV = "CXRKIT_LUNG_SEGMENTER"
_FIELDS = ("lung_fraction_range_", "n_train_images_", "fit_seconds_", "fingerprint_")


def save_segmenter(seg: LungSegmenter, folder: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``model.safetensors`` (the network's state dict, loadable as the architecture's ``pretrained=`` file), ``segmenter.json`` (parameters and fitted values) and ``mean_mask.png`` (the average training mask).

    Returns
    -------
    dict
        ``{"weights": ..., "config": ..., "mean_mask": ...}`` paths.
    """
    from safetensors.torch import save_file
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(seg, "module_")
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "weights": out / "model.safetensors",
        "config": out / "segmenter.json",
        "mean_mask": out / "mean_mask.png",
    }
    state = {k: v.detach().cpu().contiguous() for k, v in seg.module_.state_dict().items()}
    save_file(state, str(paths["weights"]))
    config: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "class": "LungSegmenter",
        "params": seg.get_params(deep=False),
    }
    config["fitted"] = {k: getattr(seg, k) for k in _FIELDS}
    paths["config"].write_text(json.dumps(config, indent=2, default=list) + "\n")
    Image.fromarray((np.clip(seg.mean_mask_, 0, 1) * 255).round().astype(np.uint8)).save(
        paths["mean_mask"]
    )
    return paths


def load_segmenter(folder: str | os.PathLike[str], device: str = "cpu") -> LungSegmenter:
    """Read a segmenter written by :func:`save_segmenter` (or ``cxrkit train-lungs``)."""
    root = Path(folder)
    cfg_path = root / "segmenter.json"
    if not cfg_path.is_file():
        raise WeightsError(
            f"'{root}' holds no segmenter.json. Pass a folder written by `cxrkit train-lungs "
            "--out DIR` or cxrkit.segmentation.save_segmenter."
        )
    config = json.loads(cfg_path.read_text())
    if config.get("format_version") != FORMAT_VERSION:
        raise WeightsError(
            f"'{cfg_path}' has format version {config.get('format_version')!r}; this cxrkit reads "
            f"version {FORMAT_VERSION}. Re-train it with `cxrkit train-lungs`."
        )
    params = dict(config["params"], device=device)
    seg = LungSegmenter(**params)
    seg.module_ = (
        create_segmentation_network(
            seg.architecture,
            pretrained=str(root / "model.safetensors"),
            **(seg.architecture_params or {}),
        )
        .to(device)
        .eval()
    )
    fitted = config["fitted"]
    lo, hi = (float(v) for v in fitted["lung_fraction_range_"])
    seg.lung_fraction_range_ = (lo, hi)
    seg.n_train_images_ = int(fitted["n_train_images_"])
    seg.fit_seconds_ = float(fitted["fit_seconds_"])
    with Image.open(root / "mean_mask.png") as im:
        seg.mean_mask_ = np.asarray(im, dtype=np.float32) / 255.0
    seg.fingerprint_ = seg._fingerprint()
    return seg


def default_segmenter(required: bool = True) -> LungSegmenter | None:
    """Return the segmenter in the folder named by ``$CXRKIT_LUNG_SEGMENTER``.

    Returns ``None`` when the variable is unset and ``required`` is false.
    """
    folder = os.environ.get(SEGMENTER_ENV)
    if not folder:
        if not required:
            return None
        raise ConfigurationError(
            f"No lung segmenter was given and {SEGMENTER_ENV} is not set. Train one with "
            "`cxrkit train-lungs --masks ../shared/data/lung-masks --out DIR`, then pass "
            f"segmenter='DIR' or set {SEGMENTER_ENV}=DIR."
        )
    return load_segmenter(folder)

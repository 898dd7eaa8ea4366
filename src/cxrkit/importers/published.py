"""Published networks, ready to predict: the Hall et al. (2020) small-CNN snapshot ensemble."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..architectures import CXRNet
from ..architectures._hall2020 import HALL2020_PREPROCESSING
from ..errors import WeightsError
from .keras_hdf5 import load_hall2020_keras

__all__ = [
    "HALL2020_CLASSES",
    "hall2020_weight_files",
    "load_hall2020_networks",
    "load_hall2020_published",
]

#: The authors' class order: Keras sorted the class folders, covid = 0, so the
#: sigmoid output is the probability of other pneumonia (``classes_[1]``).
HALL2020_CLASSES = ("covid", "pneumonia")

_FILE_RE = re.compile(r"-(?P<epoch>\d+)-(?P<val_acc>\d+(?:\.\d+)?)\.(?:hdf5|h5)$")


def hall2020_weight_files(
    weights_dir: str | os.PathLike[str], n_expected: int | None = 7
) -> list[dict[str, Any]]:
    """Return the snapshot files in ``weights_dir``, sorted by epoch.

    Parameters
    ----------
    weights_dir : str or path-like
        Folder holding ``weights2-improvement-EPOCH-VALACC.hdf5`` files.
    n_expected : int or None, default=7
        Number of files the folder must hold (the published ensemble has 7);
        ``None`` accepts any positive number.

    Returns
    -------
    list of dict
        ``{"path", "epoch", "val_acc"}`` per file (``epoch``/``val_acc`` are
        ``None`` when the name does not follow the authors' pattern).

    Raises
    ------
    WeightsError
        The folder is missing, holds no Keras files, or not ``n_expected`` of them.
    """
    d = Path(weights_dir)
    if not d.is_dir():
        raise WeightsError(
            f"Weights folder '{d}' does not exist. Pass the folder holding the seven "
            "weights2-improvement-*.hdf5 files of Hall et al. (2020)."
        )
    files = sorted(p for p in d.iterdir() if p.suffix in (".hdf5", ".h5") and p.is_file())
    if not files:
        raise WeightsError(f"Weights folder '{d}' holds no .hdf5/.h5 files.")
    if n_expected is not None and len(files) != n_expected:
        raise WeightsError(
            f"Weights folder '{d}' holds {len(files)} Keras files; the published ensemble has "
            f"{n_expected}. Remove other files, or pass n_expected=None to use all of them."
        )
    entries = []
    for p in files:
        m = _FILE_RE.search(p.name)
        entries.append(
            {
                "path": str(p),
                "epoch": int(m["epoch"]) if m else None,
                "val_acc": float(m["val_acc"]) if m else None,
            }
        )
    entries.sort(key=lambda e: (e["epoch"] is None, e["epoch"] or 0, e["path"]))
    return entries


def load_hall2020_networks(
    weights_dir: str | os.PathLike[str], n_expected: int | None = 7
) -> tuple[list[CXRNet], list[dict[str, Any]]]:
    """Return the snapshot networks (eval mode) and their ``{"path", "epoch", "val_acc"}`` records."""
    files = hall2020_weight_files(weights_dir, n_expected)
    return [load_hall2020_keras(f["path"]) for f in files], files


def load_hall2020_published(weights_dir: str | os.PathLike[str], n_expected: int | None = 7) -> Any:
    """Return the published Hall et al. (2020) small-CNN snapshot ensemble, fitted.

    Each of the authors' Keras 2 files is checked against ``hall2020_cnn`` and
    imported (:func:`cxrkit.importers.load_hall2020_keras`); the members are
    averaged in probability, as in the paper.

    Parameters
    ----------
    weights_dir : str or path-like
        Folder with the seven ``weights2-improvement-EPOCH-VALACC.hdf5`` files
        (epochs 45, 55, ..., 105).
    n_expected : int or None, default=7
        Number of snapshot files required.

    Returns
    -------
    SnapshotEnsembleClassifier
        Fitted, with ``classes_ == ["covid", "pneumonia"]`` (the sigmoid output is
        the probability of other pneumonia, ``classes_[1]``) and the authors'
        preprocessing: grayscale repeated to 3 channels, 100 x 100
        nearest-neighbour resize, values / 255. ``snapshots_`` records each
        member's ``file``, ``epoch`` and validation accuracy (``value``, from the
        file name; ``monitor="valid_acc"``).

    Raises
    ------
    WeightsError
        A file is missing or does not hold the Hall et al. small CNN.

    Examples
    --------
    >>> ens = load_hall2020_published("shared/weights/hall2020-usf-small-cnn")  # doctest: +SKIP
    >>> p_covid = ens.predict_proba(paths)[:, 0]  # doctest: +SKIP
    """
    from ..estimators import SnapshotEnsembleClassifier

    nets, files = load_hall2020_networks(weights_dir, n_expected)
    snapshots = [
        {
            "epoch": f["epoch"],
            "monitor": "valid_acc",
            "value": f["val_acc"],
            "lr": None,
            "nbytes": int(sum(t.numel() * t.element_size() for t in net.state_dict().values())),
            "file": Path(f["path"]).name,
        }
        for f, net in zip(files, nets)
    ]
    members: list[torch.nn.Module] = list(nets)
    return SnapshotEnsembleClassifier.from_networks(
        members,
        classes=list(HALL2020_CLASSES),
        snapshots=snapshots,
        preprocessing=HALL2020_PREPROCESSING,
    )


def _predict_members(nets: list[CXRNet], images: Any, batch_size: int = 64) -> np.ndarray:
    """Sigmoid outputs of each network, shape ``(n_members, n_images)``.

    ``images`` is anything :class:`cxrkit.CXRClassifier` accepts (paths, or
    ``(n, H, W)`` grayscale arrays); they go through cxrkit's own pipeline with
    the authors' preprocessing.
    """
    from ..estimators import as_image_source, prepare_one, to_tensor

    src = as_image_source(images)
    prep = HALL2020_PREPROCESSING
    out = np.empty((len(nets), len(src)), dtype=np.float64)
    with torch.inference_mode():
        for start in range(0, len(src), batch_size):
            idx = range(start, min(len(src), start + batch_size))
            xb = torch.stack([to_tensor(prepare_one(src, i, (), prep), prep, False) for i in idx])
            for m, net in enumerate(nets):
                net.eval()
                out[m, start : start + len(idx)] = torch.sigmoid(net(xb)).double().numpy()
    return out

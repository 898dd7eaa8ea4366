"""Out-of-distribution flag: Mahalanobis distance of an image's embedding to the training set's.

The embedding is the network's pooled backbone output (``CXRNet.features``).
The training embeddings are split: a Ledoit-Wolf covariance is fitted on one
part and the threshold is a quantile of the distances of the other part (held
out, so the threshold is not set on the very points the mean and covariance saw).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigurationError, DataError

__all__ = ["OODReference", "OOD_FILENAME"]

#: File name of a saved reference inside a model folder.
OOD_FILENAME = "ood_reference.safetensors"


@dataclass
class OODReference:
    """Mean, precision and threshold of the training embeddings.

    Attributes
    ----------
    mean : ndarray of shape (d,)
    precision : ndarray of shape (d, d)
        Inverse of the Ledoit-Wolf shrunk covariance.
    threshold : float
        Distance above which an image is flagged.
    quantile : float
        The quantile of the held-out training distances that ``threshold`` is.
    n_fit, n_calibration : int
        Training images used for the mean/covariance and for the threshold.
    """

    mean: np.ndarray
    precision: np.ndarray
    threshold: float
    quantile: float
    n_fit: int
    n_calibration: int

    @classmethod
    def fit(
        cls,
        features: np.ndarray,
        *,
        quantile: float = 0.99,
        calibration: float = 0.2,
        random_state: int = 0,
    ) -> OODReference:
        """Fit on training embeddings of shape ``(n, d)``.

        Parameters
        ----------
        features : ndarray of shape (n, d)
            Embeddings of the training images (at least 10).
        quantile : float, default=0.99
            Share of held-out training images that must fall under the threshold.
        calibration : float, default=0.2
            Share of the images held out to set the threshold.
        random_state : int, default=0
            Seed of the split.
        """
        from sklearn.covariance import LedoitWolf

        feats = np.asarray(features, dtype=np.float64)
        if feats.ndim != 2 or len(feats) < 10:
            raise DataError(
                f"OODReference.fit needs at least 10 training embeddings of shape "
                f"(n, d); got shape {feats.shape}. Pass more training images."
            )
        if not 0.5 <= quantile < 1.0 or not 0.0 < calibration < 1.0:
            raise ConfigurationError(
                f"quantile must be in [0.5, 1) and calibration in (0, 1); "
                f"got quantile={quantile}, calibration={calibration}."
            )
        order = np.random.default_rng(random_state).permutation(len(feats))
        n_cal = max(2, int(round(calibration * len(feats))))
        cal, fit = feats[order[:n_cal]], feats[order[n_cal:]]
        lw = LedoitWolf().fit(fit)
        ref = cls(
            mean=lw.location_,
            precision=lw.precision_,
            threshold=0.0,
            quantile=quantile,
            n_fit=len(fit),
            n_calibration=len(cal),
        )
        ref.threshold = float(np.quantile(ref.distance(cal), quantile))
        return ref

    def distance(self, features: np.ndarray) -> np.ndarray:
        """Mahalanobis distances of embeddings ``(n, d)`` to the training mean, shape ``(n,)``."""
        diff = np.asarray(features, dtype=np.float64) - self.mean
        if diff.ndim != 2 or diff.shape[1] != len(self.mean):
            raise DataError(
                f"Embeddings of shape {diff.shape} do not match the reference's "
                f"{len(self.mean)} features; refit the reference for this model."
            )
        return np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", diff, self.precision, diff), 0.0))

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write :data:`OOD_FILENAME` into ``directory`` (tensors and JSON metadata only)."""
        import torch
        from safetensors.torch import save_file

        path = Path(directory) / OOD_FILENAME
        meta = {
            "threshold": self.threshold,
            "quantile": self.quantile,
            "n_fit": self.n_fit,
            "n_calibration": self.n_calibration,
            "format": 1,
        }
        save_file(
            {
                "mean": torch.from_numpy(self.mean.copy()),
                "precision": torch.from_numpy(np.ascontiguousarray(self.precision)),
            },
            str(path),
            metadata={"cxrkit_ood": json.dumps(meta)},
        )
        return path

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> OODReference | None:
        """Read the reference saved in ``directory``; ``None`` when there is none."""
        from safetensors import safe_open

        path = Path(directory) / OOD_FILENAME
        if not path.is_file():
            return None
        with safe_open(str(path), framework="np") as f:
            meta = json.loads((f.metadata() or {}).get("cxrkit_ood", "{}"))
            if meta.get("format") != 1:
                raise ConfigurationError(
                    f"'{path}' is not an OOD reference of format 1; refit "
                    "it with cxrkit.serve.fit_ood_reference."
                )
            return cls(
                mean=f.get_tensor("mean"),
                precision=f.get_tensor("precision"),
                threshold=float(meta["threshold"]),
                quantile=float(meta["quantile"]),
                n_fit=int(meta["n_fit"]),
                n_calibration=int(meta["n_calibration"]),
            )

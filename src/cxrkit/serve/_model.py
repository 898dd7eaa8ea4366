"""A saved cxrkit model loaded once for serving: preparation, batched prediction, Grad-CAM."""

from __future__ import annotations

import base64
import io
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ModelFormatError
from ..estimators import (
    OPERATING_POINT_FILENAME,
    as_image_source,
    load_model,
    read_operating_point,
)
from ..evaluation import gradcam
from ..io import resize_image
from ..transforms import resolve_transforms
from ._ood import OODReference

__all__ = ["ServedModel", "fit_ood_reference", "OPERATING_POINT_FILENAME", "png_data_url"]

_CARD_FILES = ("MODEL_CARD.md", "model_card.md", "README.md")
_CARD_LIMIT = 64 * 1024


def png_data_url(rgb_or_gray: np.ndarray) -> str:
    """Return a ``data:image/png;base64,...`` URL of a uint8 image (H, W) or (H, W, 3)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb_or_gray)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class ServedModel:
    """One model folder, loaded once, ready for concurrent serving.

    Use :meth:`from_directory`. The server decodes, transforms and resizes each
    upload in its decoding threads (:meth:`prepare`), so the network sees the
    same pixels as offline ``predict_proba`` on the file; batches then go to
    :meth:`predict_batch`, called from one thread only.

    Parameters
    ----------
    model : CXRClassifier or SnapshotEnsembleClassifier
        A fitted model.
    directory : path-like
        The folder it was loaded from (for the model card).
    config : dict
        The folder's ``config.json``.
    operating_point : dict or None
        ``{"threshold": t, "name": ...}``: images with ``p(classes_[1]) >= t`` are
        decided as ``classes_[1]``.
    ood : OODReference or None
        Reference for the out-of-distribution flag.
    """

    def __init__(
        self,
        model: Any,
        directory: str | os.PathLike[str],
        config: dict[str, Any],
        operating_point: dict[str, Any] | None = None,
        ood: OODReference | None = None,
    ) -> None:
        self.model = model
        self.directory = Path(directory)
        self.config = config
        self.operating_point = operating_point
        self.ood = ood
        self.base = model.estimator_ if hasattr(model, "estimator_") else model
        task = getattr(self.base, "task_", "binary")
        if task != "binary":
            raise ModelFormatError(
                f"'{directory}' holds a {task} model ({', '.join(self.base.labels_)}); "
                "cxrkit serve serves binary models only. Predict with `cxrkit predict` or "
                "the estimator's predict_proba instead."
            )
        self.classes = [str(c) for c in model.classes_]
        self.preprocessing = self.base.preprocessing_
        self._transforms: list[Callable[[np.ndarray], np.ndarray]] = resolve_transforms(
            self.base.transforms, type(self.base).__name__
        )
        # The transforms run in prepare(); a server sees each image once, so the
        # feature cache would only grow.
        self.base.set_params(transforms=(), feature_cache=False)
        self._captured: list[torch.Tensor] = []
        self._hook: Any = None

    @classmethod
    def from_directory(
        cls,
        directory: str | os.PathLike[str],
        *,
        device: str = "auto",
        threshold: float | None = None,
    ) -> ServedModel:
        """Load ``directory`` (written by :func:`cxrkit.save_model`) and its optional operating point and OOD reference."""
        d = Path(directory)
        model = load_model(d, device=device)
        config = json.loads((d / "config.json").read_text())
        return cls(
            model, d, config, read_operating_point(d, config, threshold), OODReference.load(d)
        )

    # -- preparation and prediction ------------------------------------------------
    def prepare(self, img: np.ndarray) -> np.ndarray:
        """Apply the transforms, then resize to the network's input: ``(S, S)`` float32."""
        for t in self._transforms:
            img = t(img)
        prep = self.preprocessing
        return resize_image(img, prep.input_size, prep.interpolation)

    def _capture(self, on: bool) -> None:
        if on and self._hook is None:
            self._hook = self.base.module_.pool.register_forward_hook(
                lambda _m, _i, out: self._captured.append(out.detach().float().cpu())
            )
        elif not on and self._hook is not None:
            self._hook.remove()
            self._hook = None

    def predict_batch(
        self, batch: np.ndarray, *, embed: bool | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities ``(n, n_classes)`` and, when an OOD reference is loaded (or ``embed=True``), the pooled embeddings ``(n, d)`` from the same forward pass."""
        want = self.ood is not None if embed is None else embed
        self._captured.clear()
        self._capture(want)
        try:
            proba = self.model.predict_proba(batch)
            feats = torch.cat(self._captured)[: len(batch)].numpy() if want else None
        finally:
            self._captured.clear()
        return proba, feats

    def decide(self, p: np.ndarray) -> dict[str, Any] | None:
        """Return the operating-point decision for one row of probabilities."""
        if self.operating_point is None:
            return None
        t = self.operating_point["threshold"]
        label = self.classes[1] if float(p[1]) >= t else self.classes[0]
        return {"label": label, "threshold": t, "name": self.operating_point["name"]}

    def gradcam_overlay(
        self, prepared: np.ndarray, *, alpha: float = 0.45, min_side: int = 256
    ) -> str:
        """Grad-CAM of ``classes_[1]`` over the prepared image, as a PNG data URL."""
        import matplotlib
        from PIL import Image

        x = next(self.base.iter_batches(as_image_source(prepared[None]), batch_size=1))
        cam = gradcam(self.base.module_, x.to(self.base.device_))[0]
        gray = np.clip(prepared, 0.0, 1.0)[..., None].repeat(3, axis=2)
        heat = matplotlib.colormaps["jet"](cam)[..., :3]
        weight = alpha * cam[..., None]
        rgb = ((1.0 - weight) * gray + weight * heat) * 255.0
        img = Image.fromarray(rgb.round().clip(0, 255).astype(np.uint8))
        if img.width < min_side:
            img = img.resize((min_side, min_side), Image.Resampling.BILINEAR)
        return png_data_url(np.asarray(img))

    # -- description -------------------------------------------------------------
    def card(self) -> dict[str, Any]:
        """Model card, classes, preprocessing, parameters, operating point, OOD reference."""
        from .. import __version__

        text = None
        for name in _CARD_FILES:
            path = self.directory / name
            if path.is_file():
                text = path.read_text(errors="replace")[:_CARD_LIMIT]
                break
        ood = None
        if self.ood is not None:
            ood = {
                "threshold": self.ood.threshold,
                "quantile": self.ood.quantile,
                "n_fit": self.ood.n_fit,
                "n_calibration": self.ood.n_calibration,
            }
        return {
            "name": self.directory.name,
            "kind": self.config.get("kind", type(self.model).__name__),
            "format": self.config.get("format"),
            "architecture": self.config.get("params", {}).get("architecture"),
            "classes": self.classes,
            "preprocessing": self.preprocessing.to_dict(),
            "transforms": [str(t) for t in self.config.get("params", {}).get("transforms", [])],
            "params": self.config.get("params", {}),
            "n_members": len(getattr(self.model, "members_", ())) or None,
            "operating_point": self.operating_point,
            "ood_reference": ood,
            "model_card": text,
            "cxrkit_version": __version__,
        }


def fit_ood_reference(
    model: ServedModel | str | os.PathLike[str],
    X: Any,
    *,
    quantile: float = 0.99,
    calibration: float = 0.2,
    random_state: int = 0,
    batch_size: int = 32,
    save: bool = False,
) -> OODReference:
    """Fit the out-of-distribution reference of a model on its training images.

    Parameters
    ----------
    model : ServedModel or path-like
        The served model, or its folder.
    X : sequence of paths or ndarray of shape (n, H, W)
        Training images (at least 10), read like ``predict_proba``'s input.
    quantile, calibration, random_state
        See :meth:`OODReference.fit`.
    batch_size : int, default=32
        Images per forward pass.
    save : bool, default=False
        Also write the reference into the model folder, where ``cxrkit serve``
        finds it.

    Returns
    -------
    OODReference
    """
    served = model if isinstance(model, ServedModel) else ServedModel.from_directory(model)
    src = as_image_source(X)
    feats: list[np.ndarray] = []
    for start in range(0, len(src), batch_size):
        idx = range(start, min(len(src), start + batch_size))
        imgs = [src.load(i) for i in idx]
        _, f = served.predict_batch(np.stack([served.prepare(im) for im in imgs]), embed=True)
        assert f is not None  # embed=True always returns the embeddings
        feats.append(f)
    ref = OODReference.fit(
        np.concatenate(feats), quantile=quantile, calibration=calibration, random_state=random_state
    )
    if save:
        ref.save(served.directory)
    served.ood = ref
    return ref

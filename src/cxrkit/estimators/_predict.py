"""How :class:`CXRClassifier` predicts: streamed batches, cached features, logits."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from .._config import get_config
from .._memory import release_free_memory, retain_freed_memory
from ..architectures import CXRNet, Preprocessing
from ..errors import DataError
from ._cache import get_feature_cache
from ._data import FlippedSource, ImageSource, as_image_source, iter_prepared, to_tensor
from ._interrupt import refuse_interrupted
from ._targets import Target
from ._training import predict_channels_last

__all__ = ["PredictionMixin"]


class PredictionMixin:
    """The prediction steps of :class:`CXRClassifier`."""

    batch_size: int
    amp: str | None
    tta: str | None
    cache_dir: str | None
    classes_: np.ndarray
    device_: str
    preprocessing_: Preprocessing
    net_: Any
    n_features_in_: int
    target_: Target
    threshold: Any

    if TYPE_CHECKING:  # provided by TrainingMixin

        def _transform_callables(self) -> list[Callable[[np.ndarray], np.ndarray]]: ...

        def _tune_malloc(self) -> bool: ...

        def _predict_batch_size(self) -> int: ...

        def _cached_views(
            self, module: Any, augment: Any, training: bool = False
        ) -> tuple[str, ...] | None: ...

    @property
    def module_(self) -> CXRNet:
        """The trained :class:`CXRNet`."""
        check_is_fitted(self, "net_")
        return self.net_.module_

    @property
    def history_(self) -> Any:
        check_is_fitted(self, "net_")
        return self.net_.history

    def check_predict_input(self, X: Any) -> ImageSource:
        """Check that the estimator is fitted and ``X`` fits it; return ``X`` as an image source."""
        check_is_fitted(self, "net_")
        refuse_interrupted(self, "predict")
        src = as_image_source(X)
        if hasattr(self, "n_features_in_"):
            if src.array is None or src.array.ndim != 2:
                raise DataError("This CXRClassifier was fitted on 2-D arrays; pass a 2-D array.")
            if src.array.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"X has {src.array.shape[1]} features, but CXRClassifier is expecting "
                    f"{self.n_features_in_} features as input."
                )
        return src

    def iter_prepared(self, src: ImageSource, batch_size: int | None = None):  # type: ignore[no-untyped-def]
        """Yield lists of prepared images (decoded, transformed, resized; float32 2-D arrays); with files, decoding of the next batches overlaps compute."""
        yield from iter_prepared(
            src,
            self.preprocessing_,
            self._transform_callables(),
            batch_size or self._predict_batch_size(),
        )

    def iter_batches(self, src: ImageSource, batch_size: int | None = None):  # type: ignore[no-untyped-def]
        """Yield normalised input batches; decoding of the next batch overlaps compute."""
        prep = self.preprocessing_
        for images in self.iter_prepared(src, batch_size):
            yield torch.stack([to_tensor(img, prep, False) for img in images])

    def iter_cached_features(self, src: ImageSource, batch_size: int | None = None):  # type: ignore[no-untyped-def]
        """Yield batches of pooled backbone features from the feature cache, or return ``None`` when cached features would not be exact (the backbone is trainable, a transform is random, or ``feature_cache=False``).

        Images seen in training (or in an earlier prediction) with the same
        backbone weights and preprocessing are not passed through the backbone
        again: a fold's held-out images were training images of earlier folds.
        """
        module = self.module_
        if self._cached_views(module, None) is None:
            return None
        cache = get_feature_cache()
        cache_dir = self.cache_dir
        prep = self.preprocessing_
        channels_last = predict_channels_last()

        def batches():  # type: ignore[no-untyped-def]
            for images in self.iter_prepared(src, batch_size):
                feats = cache.features(
                    module,
                    np.stack(images),
                    prep,
                    views=("orig",),
                    device=self.device_,
                    cache_dir=cache_dir,
                    batch_size=len(images),
                    channels_last=channels_last,
                )
                yield torch.from_numpy(feats["orig"])

        return batches()

    def decision_function(self, X: Any) -> np.ndarray:
        """Return the network's output: binary, the logit of ``classes_[1]``, shape ``(n,)``; otherwise one logit per class or finding, ``(n, k)``. With ``tta="hflip"``, logits whose probabilities are the average over the image and its mirror image."""
        src = self.check_predict_input(X)
        logits = self._logits(src)
        if self.tta == "hflip":
            logits = self.target_.merge_views(logits, self._logits(FlippedSource(src)))
        return logits

    def _logits(self, src: ImageSource) -> np.ndarray:
        module = self.module_
        was_training = module.training
        module.eval()
        channels_last = predict_channels_last()
        trim_every = get_config()["trim_every"]
        if channels_last:
            module.to(memory_format=torch.channels_last)
        outs = []
        cached = self.iter_cached_features(src)
        try:
            with torch.inference_mode(), self._autocast(), retain_freed_memory(self._tune_malloc()):
                for feats in cached or ():
                    outs.append(module.forward_head(feats.to(self.device_)).float().cpu())
                for k, xb in enumerate(self.iter_batches(src) if cached is None else ()):
                    if k % trim_every == trim_every - 1:
                        release_free_memory()
                    xb = xb.to(self.device_, non_blocking=True)
                    if channels_last:
                        xb = xb.contiguous(memory_format=torch.channels_last)
                    outs.append(module(xb).float().cpu())
        finally:
            module.train(was_training)
        return torch.cat(outs).numpy().astype(np.float64)

    def _autocast(self) -> Any:
        if self.amp is None or not str(self.device_).startswith("cuda"):
            return contextlib.nullcontext()
        dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16}
        return torch.autocast("cuda", dtype=dtypes[self.amp])

    def predict_proba(self, X: Any) -> np.ndarray:
        """Return probabilities: binary ``(n, 2)`` and multi-class ``(n, k)`` in ``classes_`` order (rows sum to 1); multi-label ``(n, k)`` independent probabilities, one per finding of ``labels_``."""
        logits = self.decision_function(X)
        return self.target_.proba(logits)

    def predict(self, X: Any) -> np.ndarray:
        """Return labels: binary, ``classes_[1]`` where its probability reaches ``threshold`` (default 0.5); multi-class, the most probable class; multi-label, an ``(n, k)`` 0/1 indicator matrix (``threshold`` per finding)."""
        proba = self.predict_proba(X)
        return self.target_.predict(proba, self.threshold)

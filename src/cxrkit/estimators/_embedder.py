"""CXREmbedder: frozen-backbone features as a scikit-learn transformer, and linear probes.

The workflow of chest X-ray foundation models (RAD-DINO, CXR Foundation):
embed every image once with a pretrained backbone, then train a linear
classifier on the embeddings. ``CXREmbedder.transform`` decodes images in a
thread pool while the backbone runs on the previous batch, and reads and
fills the content-keyed feature cache of :mod:`cxrkit.estimators._cache`
(the same entries ``CXRClassifier`` uses for a frozen backbone), so every fold,
grid-search candidate and re-run embeds an image only once.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from numbers import Integral
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ..architectures import CXRNet, Preprocessing, create_architecture
from ..errors import ConfigurationError
from ..io import INTERPOLATIONS
from ._data import as_image_source, iter_prepared
from ._params import validate_params

__all__ = ["CXREmbedder", "make_linear_probe"]


class CXREmbedder(TransformerMixin, BaseEstimator):
    """Pooled features of a frozen, pretrained backbone, ``(n_images, n_features)``.

    Parameters
    ----------
    architecture : str, default="resnet50"
        A name from :func:`cxrkit.list_architectures` (``xrv_densenet121_res224_all``,
        ``rad_dino``, ``timm:convnext_tiny``, ``vgg16``, ...).
    pretrained : None, str or path, default=None
        Weights, as for :func:`cxrkit.create_architecture` (``"xrv"``, ``"default"``,
        ``"imagenet"`` or a file).
    pooling : str or None, default=None
        The architecture's pooling option (``"cls"``/``"cls_mean"`` for
        ``rad_dino``, timm's ``global_pool`` names for ``timm:``); ``None`` keeps
        its default (global average pooling for CNNs).
    input_size, interpolation : optional
        Override the architecture's preprocessing (see :class:`CXRClassifier`).
    transforms : sequence of callables or str, default=()
        Applied to each 2-D image before resizing (deterministic ones only).
    architecture_options : dict or None, default=None
        Further keyword arguments of the architecture's factory
        (``{"pretrained_strict": False}``, ``{"cache_dir": ...}``, ...).
    batch_size : int, default=32
    device : str, default="auto"
    feature_cache : bool, default=True
        Read and fill the feature cache (in memory; on disk with ``cache_dir``).
    cache_dir : path or None, default=None
        On-disk feature store shared between processes and runs (default: the
        environment variable ``CXRKIT_CACHE_DIR``).
    progress : bool, default=False
        A progress bar over the batches of ``transform``.
    random_state : int or None, default=0
        Seeds the initialisation of whatever the weights leave random (all of a
        ``pretrained=None`` network), so that two embedders agree and share
        cache entries (the global torch generator is left as it was).

    Attributes
    ----------
    module_ : CXRNet
        The frozen network (its head is not used).
    preprocessing_ : Preprocessing
        Input size, crop, interpolation and normalisation applied to each image.
    n_features_out_ : int
        Width of the embeddings.
    device_ : str

    Examples
    --------
    >>> import numpy as np
    >>> from cxrkit.estimators import CXREmbedder
    >>> X = np.random.default_rng(0).integers(0, 255, (6, 16, 16), dtype=np.uint8)
    >>> CXREmbedder("tiny_cnn", input_size=16).fit(X).transform(X).shape
    (6, 32)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "architecture": [str],
        "pretrained": [None, str, os.PathLike],
        "pooling": [None, str],
        "input_size": [None, Interval(Integral, 1, None, closed="left")],
        "interpolation": [None, StrOptions(set(INTERPOLATIONS))],
        "transforms": [list, tuple],
        "architecture_options": [None, dict],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "device": [str, torch.device],
        "feature_cache": ["boolean"],
        "cache_dir": [None, str, os.PathLike],
        "progress": ["boolean"],
        "random_state": [None, Interval(Integral, None, None, closed="neither")],
    }

    def __init__(
        self,
        architecture: str = "resnet50",
        *,
        pretrained: str | None = None,
        pooling: str | None = None,
        input_size: int | None = None,
        interpolation: str | None = None,
        transforms: Sequence[Callable[[np.ndarray], np.ndarray] | str] = (),
        architecture_options: dict[str, Any] | None = None,
        batch_size: int = 32,
        device: str = "auto",
        feature_cache: bool = True,
        cache_dir: str | None = None,
        progress: bool = False,
        random_state: int | None = 0,
    ) -> None:
        self.architecture = architecture
        self.pretrained = pretrained
        self.pooling = pooling
        self.input_size = input_size
        self.interpolation = interpolation
        self.transforms = transforms
        self.architecture_options = architecture_options
        self.batch_size = batch_size
        self.device = device
        self.feature_cache = feature_cache
        self.cache_dir = cache_dir
        self.progress = progress
        self.random_state = random_state

    def __sklearn_tags__(self):  # type: ignore[no-untyped-def]
        tags = super().__sklearn_tags__()
        tags.requires_fit = True
        tags.non_deterministic = False
        tags.input_tags.two_d_array = False
        return tags

    def _transform_callables(self) -> list[Callable[[np.ndarray], np.ndarray]]:
        from ..transforms import resolve_transforms

        out = resolve_transforms(self.transforms, "CXREmbedder")
        random = [t for t in out if getattr(t, "deterministic", True) is False]
        if random:
            raise ConfigurationError(
                f"CXREmbedder's transforms must be deterministic; {random[0]!r} is random. "
                "Embeddings are features of each image, not of a random view of it."
            )
        return out

    def fit(self, X: Any = None, y: Any = None, **fit_params: Any) -> CXREmbedder:
        """Build the frozen network and record its preprocessing (the images are not read)."""
        from ._classifier import resolve_device

        validate_params(self)
        opts = dict(self.architecture_options or {})
        if self.pooling is not None:
            opts["pooling"] = self.pooling
        with torch.random.fork_rng(devices=[]):
            if self.random_state is not None:
                torch.manual_seed(int(self.random_state))
            module = create_architecture(
                self.architecture, pretrained=self.pretrained, freeze="backbone", **opts
            )
        if self.pooling is not None and getattr(module, "pooling", None) != self.pooling:
            raise ConfigurationError(
                f"Architecture {self.architecture!r} has no pooling option; pooling="
                f"{self.pooling!r} cannot be applied. Leave pooling=None (its own pooling)."
            )
        self.device_ = resolve_device(self.device)
        self.module_ = module.to(self.device_).eval()
        changes: dict[str, Any] = {}
        if self.input_size is not None:
            changes["input_size"] = int(self.input_size)
        if self.interpolation is not None:
            changes["interpolation"] = self.interpolation
        self.preprocessing_ = Preprocessing(**{**module.preprocessing.to_dict(), **changes})
        self.n_features_out_ = int(module.num_features)
        self._transform_callables()
        return self

    def iter_embeddings(self, X: Any):  # type: ignore[no-untyped-def]
        """Yield ``(start, features)`` batch by batch (decoding overlaps the backbone)."""
        from ._cache import get_feature_cache

        check_is_fitted(self, "module_")
        src = as_image_source(X)
        module: CXRNet = self.module_
        prep = self.preprocessing_
        start = 0
        for images in iter_prepared(src, prep, self._transform_callables(), self.batch_size):
            batch = np.stack(images)
            if self.feature_cache:
                feats = get_feature_cache().features(
                    module,
                    batch,
                    prep,
                    views=("orig",),
                    device=self.device_,
                    cache_dir=self.cache_dir,
                    batch_size=len(batch),
                )["orig"]
            else:
                feats = _features(module, batch, prep, self.device_)
            yield start, feats
            start += len(batch)

    def transform(self, X: Any) -> np.ndarray:
        """Embeddings of the images ``X`` (paths or an ``(n, H, W)`` array), float32."""
        check_is_fitted(self, "module_")
        n = len(as_image_source(X))
        out = np.empty((n, self.n_features_out_), dtype=np.float32)
        batches = self.iter_embeddings(X)
        if self.progress:
            from tqdm.auto import tqdm

            batches = tqdm(
                batches, total=-(-n // int(self.batch_size)), desc="embedding", unit="batch"
            )
        for start, feats in batches:
            out[start : start + len(feats)] = feats
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "module_")
        stem = self.architecture.replace(":", "_")
        return np.asarray([f"{stem}_{i}" for i in range(self.n_features_out_)], dtype=object)


def _features(module: CXRNet, images: np.ndarray, prep: Preprocessing, device: str) -> np.ndarray:
    """Return the backbone features of prepared images without the cache.

    The same pass the feature cache runs: eval mode, channels-last when the
    ``channels_last`` configuration says so.
    """
    from ._cache import compute_features
    from ._training import predict_channels_last

    positions = list(range(len(images)))
    return compute_features(
        module, images, positions, prep, False, device, len(images), predict_channels_last()
    )


def make_linear_probe(
    architecture: str = "resnet50",
    *,
    pretrained: str | None = None,
    pooling: str | None = None,
    C: float = 1.0,
    max_iter: int = 2000,
    class_weight: str | dict[Any, float] | None = None,
    random_state: int | None = None,
    **embedder_params: Any,
) -> Pipeline:
    """``Pipeline(CXREmbedder, StandardScaler, LogisticRegression)``: a linear probe.

    Parameters
    ----------
    architecture, pretrained, pooling, **embedder_params
        The :class:`CXREmbedder`'s.
    C, max_iter, class_weight, random_state
        The :class:`~sklearn.linear_model.LogisticRegression`'s (grid-search
        ``probe__C`` with ``groups`` for a patient-grouped choice).

    Examples
    --------
    >>> from cxrkit.estimators import make_linear_probe
    >>> make_linear_probe("tiny_cnn", input_size=16).steps[-1][0]
    'probe'
    """
    return Pipeline(
        [
            (
                "embed",
                CXREmbedder(
                    architecture, pretrained=pretrained, pooling=pooling, **embedder_params
                ),
            ),
            ("scale", StandardScaler()),
            (
                "probe",
                LogisticRegression(
                    C=C, max_iter=max_iter, class_weight=class_weight, random_state=random_state
                ),
            ),
        ]
    )

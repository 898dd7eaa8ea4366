"""``LungSegmenter``: a scikit-learn-style estimator that learns lung masks."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Sequence
from numbers import Integral, Real
from typing import Any

import numpy as np
import torch
from PIL import Image
from sklearn.base import BaseEstimator
from sklearn.model_selection import GroupShuffleSplit, ShuffleSplit
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import EpochScoring, LRScheduler
from skorch.dataset import Dataset
from skorch.helper import predefined_split

from ..errors import DataError
from ..io import read_xray, resize_image
from ._masks import LungMaskResult, clean_lung_mask, judge_lung_mask
from ._network import create_segmentation_network
from ._training import DiceBCELoss, SegmentationNet, valid_dice

__all__ = ["LungSegmenter", "read_images", "read_masks"]

ImageInput = Sequence[str | os.PathLike[str] | np.ndarray] | np.ndarray


def _to_float_image(img: np.ndarray) -> np.ndarray:
    arr = np.asarray(img)
    if arr.ndim != 2:
        raise DataError(f"Expected 2-D grayscale images; got an array of shape {arr.shape}.")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / 255.0
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / 65535.0
    return arr.astype(np.float32)


def read_images(X: ImageInput) -> list[np.ndarray]:
    """2-D float32 images from paths, an ``(n, H, W)`` array or a list of 2-D arrays.

    Images may differ in size; uint8 is scaled by 1/255, uint16 by 1/65535.
    """
    if isinstance(X, (str, os.PathLike)):
        raise DataError(f"Images must be a sequence of paths or arrays; got the single path {X!r}.")
    if isinstance(X, np.ndarray) and X.dtype.kind in "biuf":
        if X.ndim != 3:
            raise DataError(f"An image array must have shape (n, H, W); got {X.shape}.")
        return [_to_float_image(im) for im in X]
    out = [read_xray(v) if isinstance(v, (str, os.PathLike)) else _to_float_image(v) for v in X]
    if not out:
        raise DataError("No images were given; pass at least one image.")
    return out


def read_masks(masks: ImageInput) -> list[np.ndarray]:
    """Boolean masks from paths (pixels above half the maximum) or arrays (non-zero)."""
    if isinstance(masks, np.ndarray) and masks.dtype.kind in "biuf" and masks.ndim == 3:
        return [np.asarray(m) > (0.5 if masks.dtype.kind == "f" else 0) for m in masks]
    out = []
    for m in masks:
        if isinstance(m, (str, os.PathLike)):
            with Image.open(m) as im:
                a = np.asarray(im.convert("L"))
            out.append(a > 127)
        else:
            a = np.asarray(m)
            out.append(a > (0.5 if a.dtype.kind == "f" else 0))
    return out


def _resize_to(img: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    if img.shape == shape:
        return img.astype(np.float32, copy=False)
    pil = Image.fromarray(np.ascontiguousarray(img, dtype=np.float32), mode="F")
    return np.asarray(pil.resize((shape[1], shape[0]), Image.Resampling.BILINEAR), dtype=np.float32)


class LungSegmenter(BaseEstimator):
    """Learns lung-field masks of chest X-rays; predicts soft and binary masks.

    Training minimises Dice + binary cross-entropy (:class:`DiceBCELoss`) with
    AdamW and a cosine learning-rate schedule, on images resized to
    ``input_size`` and standardised per image; each batch is flipped, rotated,
    zoomed and shifted at random (``augment``). ``validation_fraction`` of the
    patients (``groups``) are held out to report ``valid_dice`` per epoch.

    Parameters
    ----------
    architecture : str, default="lung_unet"
        A registered segmentation architecture (``task="segmentation"``).
    architecture_params : dict, optional
        Options of the architecture's factory, e.g. ``{"base_channels": 8}``.
    input_size : int, default=128
    max_epochs : int, default=40
    batch_size : int, default=16
    lr : float, default=3e-3
    weight_decay : float, default=1e-4
    augment : bool, default=True
    validation_fraction : float, default=0.1
        Share of patients held out for monitoring; 0 trains on everything.
    threshold : float, default=0.5
        Probability above which a pixel is lung.
    device : str, default="cpu"
    random_state : int, default=0
    verbose : int, default=0
        1 prints skorch's table of epochs.

    Attributes
    ----------
    module_ : torch.nn.Module
        The trained network (eval mode).
    net_ : SegmentationNet
        The skorch net that trained it (``net_.history``).
    lung_fraction_range_ : tuple of float
        Lowest and highest lung fraction of the training masks; predicted masks
        outside it are implausible.
    mean_mask_ : ndarray of shape (input_size, input_size)
        Average training mask (the lungs' usual place), used where a predicted
        mask is implausible but the lungs must still be hidden.
    fingerprint_ : str
        Hash of the weights, settings and ``lung_fraction_range_`` (mask caches
        key on it; recompute it with ``_fingerprint()`` after changing either).
    fit_seconds_ : float

    Examples
    --------
    >>> from cxrkit.segmentation import LungSegmenter, synthetic_lung_images
    >>> X, masks, groups = synthetic_lung_images(16, size=32, random_state=0)
    >>> seg = LungSegmenter(input_size=32, max_epochs=1, architecture_params={"base_channels": 2,
    ...                     "depth": 2}).fit(X, masks, groups=groups)
    >>> seg.predict(X[:2]).shape
    (2, 32, 32)
    """

    _parameter_constraints: dict[str, list[Any]] = {
        "architecture": [str],
        "architecture_params": [dict, None],
        "input_size": [Interval(Integral, 16, None, closed="left")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "augment": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "threshold": [Interval(Real, 0, 1, closed="neither")],
        "device": [StrOptions({"cpu", "cuda", "mps"}), str],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        architecture: str = "lung_unet",
        architecture_params: dict[str, Any] | None = None,
        input_size: int = 128,
        max_epochs: int = 40,
        batch_size: int = 16,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
        augment: bool = True,
        validation_fraction: float = 0.1,
        threshold: float = 0.5,
        device: str = "cpu",
        random_state: int | None = 0,
        verbose: int = 0,
    ) -> None:
        self.architecture = architecture
        self.architecture_params = architecture_params
        self.input_size = input_size
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.augment = augment
        self.validation_fraction = validation_fraction
        self.threshold = threshold
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # -- data ----------------------------------------------------------------
    def _inputs(self, images: list[np.ndarray]) -> np.ndarray:
        s = self.input_size
        out = np.empty((len(images), 1, s, s), np.float32)
        for i, img in enumerate(images):
            small = resize_image(img, s, "bilinear")
            out[i, 0] = (small - small.mean()) / (small.std() + 1e-6)
        return out

    def _targets(self, masks: list[np.ndarray]) -> np.ndarray:
        s = self.input_size
        return np.stack([resize_image(m.astype(np.float32), s, "bilinear") > 0.5 for m in masks])[
            :, None
        ].astype(np.float32)

    def _split(self, n: int, groups: Any) -> tuple[np.ndarray, np.ndarray | None]:
        if not self.validation_fraction:
            return np.arange(n), None
        seed = self.random_state if isinstance(self.random_state, int) else 0
        if groups is not None:
            splitter: Any = GroupShuffleSplit(
                1, test_size=self.validation_fraction, random_state=seed
            )
        else:
            splitter = ShuffleSplit(1, test_size=self.validation_fraction, random_state=seed)
        tr, va = next(splitter.split(np.zeros(n), groups=groups))
        return tr, va

    # -- fitting -------------------------------------------------------------
    def fit(self, X: ImageInput, masks: ImageInput, groups: Any = None) -> LungSegmenter:
        """Train on images and their lung masks.

        Parameters
        ----------
        X : paths, (n, H, W) array or list of 2-D arrays
        masks : the same forms; non-zero (or > 127 in files) is lung
        groups : array-like of shape (n,), optional
            Patient ids; the validation patients are held out whole.

        Returns
        -------
        self
        """
        self._validate_params()
        images, truth = read_images(X), read_masks(masks)
        if len(images) != len(truth):
            raise DataError(
                f"fit got {len(images)} images but {len(truth)} masks; pass one mask "
                "per image, in the same order."
            )
        bad = [i for i, (a, b) in enumerate(zip(images, truth)) if a.shape != b.shape]
        if bad:
            raise DataError(
                f"{len(bad)} of {len(images)} masks differ in size from their image "
                f"(first: index {bad[0]}, image {images[bad[0]].shape}, mask "
                f"{truth[bad[0]].shape}). Resize the masks with nearest neighbour."
            )
        t0 = time.perf_counter()
        seed = self.random_state if isinstance(self.random_state, int) else 0
        torch.manual_seed(seed)
        Xt, yt = self._inputs(images), self._targets(truth)
        tr, va = self._split(len(images), None if groups is None else np.asarray(groups))
        callbacks: list[Any] = [
            ("lr", LRScheduler(policy="CosineAnnealingLR", T_max=self.max_epochs))
        ]
        if va is not None and len(va):
            callbacks.append(
                (
                    "valid_dice",
                    EpochScoring(
                        valid_dice, lower_is_better=False, on_train=False, name="valid_dice"
                    ),
                )
            )
        module = create_segmentation_network(self.architecture, **(self.architecture_params or {}))
        self.net_ = SegmentationNet(
            module,
            criterion=DiceBCELoss,
            optimizer=torch.optim.AdamW,
            lr=self.lr,
            optimizer__weight_decay=self.weight_decay,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            iterator_train__shuffle=True,
            train_split=predefined_split(Dataset(Xt[va], yt[va]))
            if va is not None and len(va)
            else None,
            callbacks=callbacks,
            device=self.device,
            verbose=self.verbose,
            augment=self.augment,
            augment_seed=seed,
        )
        self.net_.fit(Xt[tr], yt[tr])
        self.module_ = self.net_.module_.eval()
        fractions = np.array([m.mean() for m in truth])
        self.lung_fraction_range_ = (float(fractions.min()), float(fractions.max()))
        self.mean_mask_ = yt[tr, 0].mean(axis=0)
        self.n_train_images_ = int(len(tr))
        self.fit_seconds_ = time.perf_counter() - t0
        self.fingerprint_ = self._fingerprint()
        return self

    def _fingerprint(self) -> str:
        h = hashlib.blake2b(digest_size=16)
        h.update(
            repr(
                (
                    self.architecture,
                    self.input_size,
                    self.threshold,
                    tuple(self.lung_fraction_range_),
                )
            ).encode()
        )
        for k, v in sorted(self.module_.state_dict().items()):
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
        return h.hexdigest()

    # -- prediction ----------------------------------------------------------
    def _low_res_proba(self, images: list[np.ndarray], batch_size: int = 32) -> np.ndarray:
        check_is_fitted(self, "module_")
        x = self._inputs(images)
        device = next(self.module_.parameters()).device
        out = []
        with torch.inference_mode():
            for s in range(0, len(x), batch_size):
                batch = torch.from_numpy(x[s : s + batch_size]).to(device)
                out.append(torch.sigmoid(self.module_(batch))[:, 0].cpu().numpy())
        return np.concatenate(out)

    @staticmethod
    def _stack(arrays: list[np.ndarray]) -> np.ndarray:
        if len({a.shape for a in arrays}) == 1:
            return np.stack(arrays)
        out = np.empty(len(arrays), dtype=object)
        out[:] = arrays
        return out

    def predict_proba(self, X: ImageInput) -> np.ndarray:
        """Soft masks: the probability that each pixel is lung, at each image's size.

        Returns
        -------
        ndarray of shape (n, H, W), float32, or an object array of 2-D arrays
        when the images differ in size.
        """
        images = read_images(X)
        low = self._low_res_proba(images)
        return self._stack([_resize_to(p, im.shape) for p, im in zip(low, images)])

    def predict(self, X: ImageInput) -> np.ndarray:
        """Binary lung masks (two largest regions, holes filled) at each image's size."""
        return self._stack([r.mask for r in self.segment(X)])

    def segment(self, X: ImageInput) -> list[LungMaskResult]:
        """Return cleaned masks with a plausibility verdict (:func:`judge_lung_mask`) per image."""
        check_is_fitted(self, "module_")
        images = read_images(X)
        low = self._low_res_proba(images)
        out = []
        for p, im in zip(low, images):
            mask = clean_lung_mask(_resize_to(p, im.shape) > self.threshold)
            out.append(judge_lung_mask(mask, self.lung_fraction_range_))
        return out

    def prior_mask(self, shape: tuple[int, int]) -> np.ndarray:
        """Return the average training mask at ``shape`` (where lungs usually lie)."""
        check_is_fitted(self, "mean_mask_")
        return _resize_to(self.mean_mask_, shape) > 0.5

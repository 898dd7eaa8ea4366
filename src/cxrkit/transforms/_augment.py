"""Training-time augmentation: ``cxr_light``, ``cxr_strong`` and any ``torchvision.transforms.v2`` pipeline.

An augmentation is a :class:`~cxrkit.transforms.Transform` like the others
(a 2-D float32 image in ``[0, 1]`` in, a new one out) marked
``deterministic = False``, so the frozen-backbone feature cache is turned off
for it with the reason logged. It runs torchvision's v2 transforms on a
``(1, H, W)`` tensor; each call draws a seed from its own generator seeded by
``random_state`` and runs the pipeline under that seed (``torch.random.fork_rng``),
so a seed gives the same sequence of augmented images without touching the
global torch generator. :meth:`TorchvisionAugment.apply` takes a tensor on any
device (CPU or GPU).

``CXRClassifier(augment=...)`` applies it to every training image each epoch,
after decoding, the user's ``transforms`` and resizing, before normalisation.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torchvision.transforms import v2

from ..errors import ConfigurationError
from ._transforms import Transform

__all__ = ["TorchvisionAugment", "CXRLight", "CXRStrong", "RandomGamma", "resolve_augment"]


class RandomGamma(v2.Transform):
    """``x ** gamma`` with ``gamma`` drawn log-uniformly from ``gamma`` (images in ``[0, 1]``)."""

    def __init__(self, gamma: tuple[float, float] = (0.8, 1.25)) -> None:
        super().__init__()
        self.gamma = (float(gamma[0]), float(gamma[1]))

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        lo, hi = np.log(self.gamma[0]), np.log(self.gamma[1])
        return {"gamma": float(torch.empty(()).uniform_(lo, hi).exp())}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        return v2.functional.adjust_gamma(inpt, params["gamma"])


class TorchvisionAugment(Transform):
    """Any ``torchvision.transforms.v2`` pipeline (or tensor callable) as a seeded augmentation.

    Parameters
    ----------
    pipeline : callable
        Maps a float ``(1, H, W)`` tensor in ``[0, 1]`` to a tensor of the same shape.
    random_state : int or None, default=0
        Seeds the sequence of per-image seeds.
    """

    _params: tuple[str, ...] = ("pipeline", "random_state")
    deterministic = False

    def __init__(
        self, pipeline: Callable[[torch.Tensor], torch.Tensor], random_state: int | None = 0
    ) -> None:
        if not callable(pipeline):
            raise ConfigurationError(
                "TorchvisionAugment needs a callable pipeline (e.g. torchvision.transforms.v2."
                f"Compose([...])). Got {pipeline!r} instead."
            )
        self.pipeline = pipeline
        self.random_state = random_state
        self._rng = np.random.default_rng(random_state)

    def _pipeline_for(self, size: tuple[int, int]) -> Callable[[torch.Tensor], torch.Tensor]:
        return self.pipeline

    def apply(self, img: torch.Tensor) -> torch.Tensor:
        """Augment a ``(1, H, W)`` float tensor in ``[0, 1]`` (on any device)."""
        seed = int(self._rng.integers(2**62))
        devices = [img.device.index or 0] if img.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            out = self._pipeline_for(tuple(img.shape[-2:]))(img)  # type: ignore[arg-type]
        return out.clamp(0.0, 1.0)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        arr = np.asarray(img, dtype=np.float32)
        if arr.ndim != 2:
            raise ConfigurationError(
                f"{type(self).__name__} expects a 2-D grayscale image; got shape {arr.shape}."
            )
        out = self.apply(torch.from_numpy(np.ascontiguousarray(arr))[None])
        return out[0].numpy()


class CXRLight(TorchvisionAugment):
    """Light chest X-ray augmentation: rotation within +-10 degrees, scale 0.9-1.1, translation up to 5 % of each side, brightness and contrast +-0.1.

    Parameters
    ----------
    random_state : int or None, default=0
    """

    _params = ("random_state",)

    def __init__(self, random_state: int | None = 0) -> None:
        super().__init__(self.light(), random_state)

    @staticmethod
    def light() -> v2.Compose:
        return v2.Compose(
            [
                v2.RandomAffine(
                    degrees=10,
                    translate=(0.05, 0.05),
                    scale=(0.9, 1.1),
                    interpolation=v2.InterpolationMode.BILINEAR,
                ),
                v2.ColorJitter(brightness=0.1, contrast=0.1),
            ]
        )


class CXRStrong(TorchvisionAugment):
    """Strong chest X-ray augmentation: ``cxr_light``, then a random resized crop (70-100 % of the area, aspect 0.9-1.1, back to the input size), gamma 0.8-1.25, Gaussian noise (sigma 0.02) and Gaussian blur (sigma 0.1-1), each of the last three with probability 1/2.

    Parameters
    ----------
    random_state : int or None, default=0
    """

    _params = ("random_state",)

    def __init__(self, random_state: int | None = 0) -> None:
        super().__init__(CXRLight.light(), random_state)
        self._by_size: dict[tuple[int, int], v2.Compose] = {}

    def _pipeline_for(self, size: tuple[int, int]) -> Callable[[torch.Tensor], torch.Tensor]:
        if size not in self._by_size:
            self._by_size[size] = v2.Compose(
                [
                    CXRLight.light(),
                    v2.RandomResizedCrop(size, scale=(0.7, 1.0), ratio=(0.9, 1.1), antialias=True),
                    v2.RandomApply([RandomGamma((0.8, 1.25))], p=0.5),
                    v2.RandomApply([v2.GaussianNoise(sigma=0.02)], p=0.5),
                    v2.RandomApply([v2.GaussianBlur(5, sigma=(0.1, 1.0))], p=0.5),
                ]
            )
        return self._by_size[size]


def resolve_augment(
    augment: Any, random_state: int | None = None, owner: str = "CXRClassifier"
) -> Any:
    """Resolve what an ``augment`` parameter means.

    ``None`` and ``"hflip"`` are returned as they are (the flip is handled by the
    training dataset and the feature cache); another string is a registered
    transform (``cxr_light``, ``cxr_strong`` or a plugin's), built with
    ``random_state`` when its factory takes one; a ``torchvision.transforms.v2``
    pipeline or other callable becomes a :class:`TorchvisionAugment` (a cxrkit
    :class:`Transform` is used as given, copied).
    """
    if augment is None or augment == "hflip":
        return augment
    seed = None if random_state is None else int(random_state)
    if isinstance(augment, str):
        from ..plugins import get_registry

        reg = get_registry("transform")
        if augment not in reg:
            raise ConfigurationError(
                f"The 'augment' parameter of {owner} must be None, 'hflip', a registered "
                f"transform name ({', '.join(reg.names())}) or a torchvision.transforms.v2 "
                f"pipeline. Got {augment!r} instead."
            )
        factory = reg.get(augment).factory
        takes_seed = "random_state" in inspect.signature(factory).parameters
        return factory(random_state=seed) if takes_seed else factory()
    if isinstance(augment, Transform):
        return copy.deepcopy(augment)
    if callable(augment):
        return TorchvisionAugment(augment, random_state=seed)
    raise ConfigurationError(
        f"The 'augment' parameter of {owner} must be None, 'hflip', a registered transform "
        f"name or a torchvision.transforms.v2 pipeline. Got {augment!r} instead."
    )

"""Image transforms, registered as plugins (``cxrkit_register_transforms``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..io import resolve_transforms
from ..plugins import get_registry
from ._augment import CXRLight, CXRStrong, RandomGamma, TorchvisionAugment, resolve_augment
from ._lungs import ImplausibleLungMaskWarning, LungCrop, LungMask, lung_blackout
from ._transforms import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    CentreBlackout,
    CentreCrop,
    GrayTo3Channel,
    HorizontalFlip,
    ImageNetNormalize,
    JpegRecompress,
    Resize,
    Transform,
)

__all__ = [
    "CXRLight",
    "CXRStrong",
    "RandomGamma",
    "TorchvisionAugment",
    "resolve_augment",
    "CentreBlackout",
    "CentreCrop",
    "GrayTo3Channel",
    "HorizontalFlip",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ImageNetNormalize",
    "ImplausibleLungMaskWarning",
    "LungCrop",
    "LungMask",
    "lung_blackout",
    "JpegRecompress",
    "Resize",
    "Transform",
    "create_transform",
    "list_transforms",
    "resolve_transforms",
]


def list_transforms(pattern: str = "*") -> list[str]:
    """Names of the registered transforms matching the shell-style ``pattern``."""
    return get_registry("transform").names(pattern)


def create_transform(name: str, /, **options: Any) -> Callable[[np.ndarray], np.ndarray]:
    """Build the transform registered as ``name`` with ``options``.

    >>> t = create_transform("centre_blackout", fraction=0.5)
    >>> float(t(np.ones((4, 4), np.float32)).sum())
    12.0
    """
    return get_registry("transform").create(name, **options)

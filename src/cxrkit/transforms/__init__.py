"""Image transforms, registered as plugins (``cxrkit_register_transforms``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import lazy_loader
import numpy as np

from ..plugins import get_registry

if TYPE_CHECKING:  # pragma: no cover
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

# Submodules are imported on first attribute access (PEP 562), so that importing
# the package (or one light submodule, like its plugin) does not import torch.
__getattr__, _, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "_augment": [
            "CXRLight",
            "CXRStrong",
            "RandomGamma",
            "TorchvisionAugment",
            "resolve_augment",
        ],
        "_lungs": ["ImplausibleLungMaskWarning", "LungCrop", "LungMask", "lung_blackout"],
        "_transforms": [
            "IMAGENET_MEAN",
            "IMAGENET_STD",
            "CentreBlackout",
            "CentreCrop",
            "GrayTo3Channel",
            "HorizontalFlip",
            "ImageNetNormalize",
            "JpegRecompress",
            "Resize",
            "Transform",
        ],
    },
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


def resolve_transforms(
    transforms: Any, owner: str = "CXRClassifier"
) -> list[Callable[[np.ndarray], np.ndarray]]:
    """Return the callables of a ``transforms`` parameter (see :func:`cxrkit.io.resolve_transforms`).

    >>> [type(t).__name__ for t in resolve_transforms(["centre_blackout"])]
    ['CentreBlackout']
    """
    from ..io import resolve_transforms as resolve  # io is imported on first use here

    return resolve(transforms, owner)

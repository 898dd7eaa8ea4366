"""cxrkit's built-in architectures, registered like any third-party plugin.

The factories are :class:`~cxrkit.registry.LazyFactory` objects: listing the
names imports neither torch nor the implementations.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from ..hookspecs import hookimpl
from ..registry import LazyFactory
from ._extra_backbones import register_extra_backbones

_HERE = "cxrkit.architectures"

#: name -> (factory, preprocessing, pretrained weights, description, extra meta).
_BUILTINS: dict[str, tuple[Any, str, tuple[str, ...], str, dict[str, Any]]] = {
    **{
        name: (
            partial(LazyFactory(f"{_HERE}._torchvision:build_resnet"), name),
            "_torchvision:TORCHVISION_PREPROCESSING",
            ("imagenet",),
            f"torchvision {title} with a cxrkit head ({use}).",
            {},
        )
        for name, title, use in (
            ("resnet18", "ResNet-18", "a small backbone for demos"),
            ("resnet50", "ResNet-50", "Hall et al. 2020"),
            ("resnet101", "ResNet-101", "the opacity study, 2020"),
        )
    },
    "vgg16": (
        LazyFactory(f"{_HERE}._torchvision:build_vgg16"),
        "_torchvision:TORCHVISION_PREPROCESSING",
        ("imagenet",),
        "torchvision VGG16 convolutional layers with a cxrkit head (Hall et al. 2020).",
        {},
    ),
    "hall2020_cnn": (
        LazyFactory(f"{_HERE}._hall2020:build_hall2020_cnn"),
        "_hall2020:HALL2020_PREPROCESSING",
        (),
        "Hall et al. (2020) small CNN: two branches, 39,105 parameters, 100 px input.",
        {},
    ),
    "tiny_cnn": (
        LazyFactory(f"{_HERE}._tiny:build_tiny_cnn"),
        "_tiny:TINY_PREPROCESSING",
        (),
        "Three 3x3 conv blocks (width, 2x, 4x channels) with batch norm; any input size.",
        {},
    ),
    "lung_unet": (
        LazyFactory(f"{_HERE}._unet:build_lung_unet"),
        "_unet:UNET_PREPROCESSING",
        (),
        "A small U-Net for lung-field segmentation (128 px, ~0.5 M parameters at base 8).",
        {"task": "segmentation"},
    ),
}


@hookimpl
def cxrkit_register_architectures(register: Callable[..., None]) -> None:
    """Register the torchvision, Hall et al. (2020), tiny and U-Net architectures."""
    for name, (factory, prep, pretrained, description, meta) in _BUILTINS.items():
        register(
            name,
            factory,
            preprocessing=LazyFactory(f"{_HERE}.{prep}"),
            pretrained=pretrained,
            description=description,
            **meta,
        )
    register_extra_backbones(register)

"""cxrkit's built-in transforms, registered like any third-party plugin.

The factories are :class:`~cxrkit.registry.LazyFactory` objects, imported when
a transform is created.
"""

from __future__ import annotations

from collections.abc import Callable

from ..hookspecs import hookimpl
from ..registry import LazyFactory

#: name -> (factory as "module:attribute" under cxrkit.transforms, description).
_BUILTINS = {
    "resize": ("_transforms:Resize", "Resize to size x size (see cxrkit.io.resize_image)."),
    "gray_to_3ch": (
        "_transforms:GrayTo3Channel",
        "Repeat a 2-D image into (3, H, W) (what ImageNet backbones expect).",
    ),
    "imagenet_normalize": (
        "_transforms:ImageNetNormalize",
        "(x - mean) / std per channel with the ImageNet statistics.",
    ),
    "hflip": ("_transforms:HorizontalFlip", "Mirror the image left-right with probability p."),
    "jpeg_recompress": (
        "_transforms:JpegRecompress",
        "Encode as an 8-bit grayscale JPEG at quality and decode again.",
    ),
    "centre_crop": (
        "_transforms:CentreCrop",
        "Keep the central fraction of the height and of the width.",
    ),
    "centre_blackout": (
        "_transforms:CentreBlackout",
        "Set the central fraction x fraction box of the image to value.",
    ),
    "lung_crop": (
        "_lungs:LungCrop",
        "Crop to the bounding box of the predicted lungs plus a margin, then resize.",
    ),
    "lung_mask": (
        "_lungs:LungMask",
        "Set the pixels outside (or inside) the predicted lungs to a fill value.",
    ),
    "lung_blackout": (
        "_lungs:lung_blackout",
        'LungMask(keep="outside"): the lungs hidden, everything else kept.',
    ),
    "cxr_light": (
        "_augment:CXRLight",
        "Light chest X-ray augmentation: rotation +-10 degrees, scale 0.9-1.1, shift, "
        "brightness and contrast.",
    ),
    "cxr_strong": (
        "_augment:CXRStrong",
        "Strong chest X-ray augmentation: cxr_light, then a random resized crop, gamma, "
        "noise and blur.",
    ),
}


@hookimpl
def cxrkit_register_transforms(register: Callable[..., None]) -> None:
    """Register the resizing, normalisation, lung-field and augmentation transforms."""
    for name, (target, description) in _BUILTINS.items():
        register(name, LazyFactory(f"cxrkit.transforms.{target}", description))

"""cxrkit's built-in transforms, registered like any third-party plugin."""

from __future__ import annotations

from ..hookspecs import hookimpl
from ._augment import CXRLight, CXRStrong
from ._lungs import LungCrop, LungMask, lung_blackout
from ._transforms import (
    CentreBlackout,
    CentreCrop,
    GrayTo3Channel,
    HorizontalFlip,
    ImageNetNormalize,
    JpegRecompress,
    Resize,
)


@hookimpl
def cxrkit_register_transforms(register):  # type: ignore[no-untyped-def]
    register("resize", Resize)
    register("gray_to_3ch", GrayTo3Channel)
    register("imagenet_normalize", ImageNetNormalize)
    register("hflip", HorizontalFlip)
    register("jpeg_recompress", JpegRecompress)
    register("centre_crop", CentreCrop)
    register("centre_blackout", CentreBlackout)
    register("lung_crop", LungCrop)
    register("lung_mask", LungMask)
    register("lung_blackout", lung_blackout)
    register("cxr_light", CXRLight)
    register("cxr_strong", CXRStrong)

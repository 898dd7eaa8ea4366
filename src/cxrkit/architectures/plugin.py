"""cxrkit's built-in architectures, registered like any third-party plugin."""

from __future__ import annotations

from functools import partial

from ..hookspecs import hookimpl
from ._extra_backbones import register_extra_backbones
from ._hall2020 import HALL2020_PREPROCESSING, build_hall2020_cnn
from ._tiny import TINY_PREPROCESSING, build_tiny_cnn
from ._torchvision import TORCHVISION_PREPROCESSING, build_resnet, build_vgg16
from ._unet import UNET_PREPROCESSING, build_lung_unet


@hookimpl
def cxrkit_register_architectures(register):  # type: ignore[no-untyped-def]
    tv = TORCHVISION_PREPROCESSING
    for name, desc in [
        ("resnet18", "torchvision ResNet-18 with a cxrkit head (a small backbone for demos)."),
        ("resnet50", "torchvision ResNet-50 with a cxrkit head (Hall et al. 2020)."),
        ("resnet101", "torchvision ResNet-101 with a cxrkit head (the opacity study, 2020)."),
    ]:
        register(
            name,
            partial(build_resnet, name),
            preprocessing=tv,
            pretrained=("imagenet",),
            description=desc,
        )
    register(
        "vgg16",
        build_vgg16,
        preprocessing=tv,
        pretrained=("imagenet",),
        description="torchvision VGG16 convolutional layers with a cxrkit head (Hall et al. 2020).",
    )
    register(
        "hall2020_cnn",
        build_hall2020_cnn,
        preprocessing=HALL2020_PREPROCESSING,
        pretrained=(),
        description=build_hall2020_cnn.__doc__,
    )
    register(
        "tiny_cnn",
        build_tiny_cnn,
        preprocessing=TINY_PREPROCESSING,
        pretrained=(),
        description=build_tiny_cnn.__doc__,
    )
    register(
        "lung_unet",
        build_lung_unet,
        preprocessing=UNET_PREPROCESSING,
        pretrained=(),
        task="segmentation",
        description=build_lung_unet.__doc__,
    )
    register_extra_backbones(register)

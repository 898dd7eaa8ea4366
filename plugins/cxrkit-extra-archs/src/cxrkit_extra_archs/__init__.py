"""Example third-party cxrkit plugin (entry point ``extra_archs`` in group ``cxrkit``)."""

from __future__ import annotations

import torchvision
from torch import nn

from cxrkit import hookimpl
from cxrkit.architectures import CXRNet, Preprocessing, make_head
from cxrkit.architectures._weights import load_imagenet_state_dict, load_into, read_state_dict

__all__ = ["build_densenet121", "build_lenet_cxr"]


def build_densenet121(
    pretrained=None, head="hall2020", *, pretrained_strict=True, hidden=64, dropout=0.5, **_
):
    """torchvision DenseNet-121 features with a cxrkit head."""
    tv = torchvision.models.densenet121(weights=None)
    backbone = nn.Sequential(tv.features, nn.ReLU(inplace=False))
    net = CXRNet(
        backbone,
        nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
        make_head(head, 1024, hidden=hidden, dropout=dropout),
        num_features=1024,
        preprocessing=Preprocessing(),
        name="densenet121",
    )
    if pretrained == "imagenet":
        state = load_imagenet_state_dict(torchvision.models.DenseNet121_Weights.IMAGENET1K_V1)
        load_into(tv, state, strict=False, source="DenseNet-121 ImageNet weights")
    elif pretrained is not None:
        load_into(
            net,
            read_state_dict(pretrained),
            strict=pretrained_strict,
            key_map=lambda k: (
                "backbone.0." + k[len("features.") :] if k.startswith("features.") else None
            ),
            source=f"weights file '{pretrained}'",
        )
    return net


def build_lenet_cxr(pretrained=None, head="hall2020", *, hidden=32, dropout=0.2, **_):
    """LeNet-style CNN: two 5x5 convolutions with max pooling, then a cxrkit head."""
    backbone = nn.Sequential(
        nn.Conv2d(3, 6, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
    )
    net = CXRNet(
        backbone,
        nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
        make_head(head, 16, hidden=hidden, dropout=dropout),
        num_features=16,
        preprocessing=Preprocessing(input_size=64, mean=(0.5,) * 3, std=(0.25,) * 3),
        name="lenet_cxr",
    )
    if pretrained is not None:
        load_into(net, read_state_dict(pretrained), source=f"weights file '{pretrained}'")
    return net


@hookimpl
def cxrkit_register_architectures(register):
    register(
        "densenet121",
        build_densenet121,
        preprocessing=Preprocessing(),
        pretrained=("imagenet",),
        description=build_densenet121.__doc__,
    )
    register(
        "lenet_cxr",
        build_lenet_cxr,
        preprocessing=Preprocessing(input_size=64, mean=(0.5,) * 3, std=(0.25,) * 3),
        pretrained=(),
        description=build_lenet_cxr.__doc__,
    )

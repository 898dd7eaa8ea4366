"""ResNet and VGG backbones from torchvision with the papers' heads."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch
import torchvision
from torch import nn

from ._base import CXRNet, Preprocessing
from ._heads import make_head
from ._weights import load_imagenet_state_dict, load_into, read_state_dict

__all__ = ["build_resnet", "build_vgg16", "TORCHVISION_PREPROCESSING"]

TORCHVISION_PREPROCESSING = Preprocessing(input_size=224, interpolation="bilinear")

_RESNETS: dict[str, tuple[Callable[..., nn.Module], Any]] = {
    "resnet18": (torchvision.models.resnet18, torchvision.models.ResNet18_Weights.IMAGENET1K_V1),
    "resnet50": (torchvision.models.resnet50, torchvision.models.ResNet50_Weights.IMAGENET1K_V1),
    "resnet101": (torchvision.models.resnet101, torchvision.models.ResNet101_Weights.IMAGENET1K_V1),
}


def _finish(
    net: CXRNet,
    tv_model: nn.Module,
    pretrained: str | None,
    strict: bool,
    weights_enum: Any,
    key_map: Callable[[str], str | None],
) -> CXRNet:
    if pretrained is None or pretrained == "none":
        return net
    if pretrained == "imagenet":
        # Load exactly as torchvision would, then keep the backbone part.
        state = load_imagenet_state_dict(weights_enum)
        load_into(tv_model, state, strict=True, source=f"ImageNet weights {weights_enum}")
        return net
    state = read_state_dict(pretrained)
    load_into(net, state, strict=strict, key_map=key_map, source=f"weights file '{pretrained}'")
    return net


def build_resnet(
    name: str,
    pretrained: str | None = None,
    head: str = "hall2020",
    *,
    pretrained_strict: bool = True,
    hidden: int = 64,
    dropout: float = 0.5,
    **_: object,
) -> CXRNet:
    """Return a torchvision ResNet whose ``fc`` is replaced by a cxrkit head."""
    ctor, weights_enum = _RESNETS[name]
    tv = ctor(weights=None)
    backbone = nn.Sequential(
        OrderedDict(
            (n, getattr(tv, n))
            for n in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
        )
    )
    nfeat = int(tv.fc.in_features)  # type: ignore[union-attr, arg-type]
    pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    net = CXRNet(
        backbone,
        pool,
        make_head(head, nfeat, hidden=hidden, dropout=dropout),
        num_features=nfeat,
        preprocessing=TORCHVISION_PREPROCESSING,
        name=name,
    )
    net.first_conv_reads_input = True

    def key_map(k: str) -> str | None:
        return None if k.startswith("fc.") else "backbone." + k

    return _finish(net, tv, pretrained, pretrained_strict, weights_enum, key_map)


def build_vgg16(
    pretrained: str | None = None,
    head: str = "hall2020",
    *,
    pretrained_strict: bool = True,
    hidden: int = 64,
    dropout: float = 0.5,
    **_: object,
) -> CXRNet:
    """Torchvision VGG16's 13 convolutional layers with a cxrkit head.

    torchvision's VGG16 is built on the ``meta`` device and only its
    convolutional part is allocated and initialised (as torchvision does:
    Kaiming-normal, fan-out, zero biases). Its classifier (123.6 million
    parameters, replaced by the cxrkit head) used to be allocated and filled
    with random numbers for nothing: 1.5 s of every construction, against
    0.08 s now. ImageNet weights still load into the whole torchvision model,
    so their keys are checked exactly; the classifier's part is dropped.
    """
    with torch.device("meta"):
        tv = torchvision.models.vgg16(weights=None)
    _materialize(tv.features)
    pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    net = CXRNet(
        tv.features,
        pool,
        make_head(head, 512, hidden=hidden, dropout=dropout),
        num_features=512,
        preprocessing=TORCHVISION_PREPROCESSING,
        name="vgg16",
    )
    net.first_conv_reads_input = True

    def key_map(k: str) -> str | None:
        return "backbone." + k[len("features.") :] if k.startswith("features.") else None

    return _finish(
        net,
        tv,
        pretrained,
        pretrained_strict,
        torchvision.models.VGG16_Weights.IMAGENET1K_V1,
        key_map,
    )


def _materialize(module: nn.Module) -> None:
    """Allocate a meta-device ``module`` on the CPU and initialise it as torchvision's VGG and ResNet constructors do: convolutions Kaiming-normal (fan-out, ReLU) with zero biases, batch norms weight 1, bias 0 and fresh running statistics."""
    module.to_empty(device="cpu")
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
                if isinstance(m, nn.BatchNorm2d):
                    m.reset_running_stats()

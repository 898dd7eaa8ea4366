"""torchxrayvision's chest X-ray backbones (Cohen et al. 2022) as cxrkit architectures.

Every DenseNet-121 weight set torchxrayvision publishes and its ResNet-50 at
512 px, with the library's own preprocessing carried in the architecture's
:class:`Preprocessing`: one channel, values scaled to ``[-1024, 1024]``,
largest central square, resized with ``skimage`` (``XRayCenterCrop`` +
``XRayResizer``). Weights come from torchxrayvision's model folder
(``~/.torchxrayvision/models_data``, filled by its downloader).
"""

from __future__ import annotations

import importlib
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn

from ..errors import WeightsError
from ._base import CXRNet, Preprocessing
from ._extras import (
    XRV_ARCHITECTURES,
    is_library_weights,
    is_none,
    missing_weights_error,
    require_extra,
)
from ._heads import make_head
from ._weights import load_into, read_state_dict

__all__ = [
    "XRV_ARCHITECTURES",
    "XRVNet",
    "build_xrv",
    "xrv_preprocessing",
    "xrv_weights_path",
    "read_xrv_weights",
]

#: Globals a torchxrayvision weights file may reconstruct (its files pickle whole modules).
_SAFE_PREFIXES = ("torch.nn.modules.", "torchxrayvision.")
_SAFE_NAMES = ("collections.OrderedDict", "builtins.set", "torch._utils._rebuild_parameter")


def xrv_preprocessing(size: int) -> Preprocessing:
    """Return torchxrayvision's input preprocessing.

    One channel in ``[-1024, 1024]`` (``xrv.utils.normalize``: ``2048 * x - 1024`` for
    ``x`` in ``[0, 1]``), ``XRayCenterCrop``, ``XRayResizer(size)``.
    """
    return Preprocessing(
        input_size=size,
        interpolation="skimage",
        mean=(0.5, 0.5, 0.5),
        std=(1 / 2048, 1 / 2048, 1 / 2048),
        channels=1,
        crop="square",
    )


class XRVPathologyHead(nn.Module):
    """torchxrayvision's own classifier: a linear layer to its 18 pathologies, then, for published weights, sigmoid and its operating-point normalisation (``op_norm``)."""

    def __init__(self, classifier: nn.Linear, op_threshs: torch.Tensor | None) -> None:
        super().__init__()
        self.classifier = classifier
        self.register_buffer("op_threshs", op_threshs)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        out = self.classifier(feats)
        if self.op_threshs is None:
            return out
        from torchxrayvision.models import op_norm

        return op_norm(torch.sigmoid(out), self.op_threshs)


class XRVNet(CXRNet):
    """A :class:`CXRNet` whose head may be torchxrayvision's 18-pathology head.

    With ``head="pathologies"``, ``forward`` returns ``(N, 18)`` scores in the
    order of ``pathologies`` (empty names: outputs the weights were not trained
    for), exactly as torchxrayvision's model does; with a cxrkit head it is a
    binary network like any other.
    """

    pathologies: list[str] | None = None

    def forward_head(self, feats: torch.Tensor) -> torch.Tensor:
        if self.pathologies is not None:
            return self.head(feats)
        return super().forward_head(feats)


def xrv_weights_path(weights: str, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the local file of a torchxrayvision weight set, downloaded by torchxrayvision into its model folder when absent (``cache_dir`` overrides the folder)."""
    xrv = require_extra("xrv")
    url = xrv.models.model_urls[weights]["weights_url"]
    folder = Path(os.path.expanduser(str(cache_dir or xrv.utils.get_cache_dir())))
    target = folder / os.path.basename(url)
    if target.is_file():
        return target
    try:
        return Path(xrv.models.get_weights(weights, cache_dir=str(folder)))
    except Exception as exc:  # no network, HTTP error, ...
        fill = (
            f"python -c \"import torchxrayvision as xrv; xrv.models.get_weights('{weights}')\""
            f" (or wget {url} -O {target})"
        )
        raise missing_weights_error(
            f"torchxrayvision weights {weights!r}", folder, fill, exc
        ) from None


def read_xrv_weights(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Return the state dict in a torchxrayvision weights file.

    The DenseNet files pickle whole modules. They are read with
    ``torch.load(weights_only=True)``, allowing only the module classes of
    ``torch.nn`` and ``torchxrayvision`` they name; any other global is refused.
    """
    p = Path(path)
    unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(str(p))
    allowed = []
    for name in unsafe:
        if not (name.startswith(_SAFE_PREFIXES) or name in _SAFE_NAMES):
            raise WeightsError(
                f"torchxrayvision weights file '{p}' needs the global {name!r}, which is not a "
                "torch.nn or torchxrayvision class; cxrkit does not unpickle it. Delete the file "
                "and let torchxrayvision download it again."
            )
        module, _, attr = name.rpartition(".")
        allowed.append(getattr(importlib.import_module(module), attr))
    with torch.serialization.safe_globals(allowed):
        obj = torch.load(p, map_location="cpu", weights_only=True)
    state = obj.state_dict() if isinstance(obj, nn.Module) else obj
    if not isinstance(state, dict):
        raise WeightsError(f"torchxrayvision weights file '{p}' holds no state dict.")
    return {k: v for k, v in state.items() if k != "op_threshs"}


def _raw_model(weights: str) -> tuple[nn.Module, nn.Module, nn.Linear, int]:
    """Torchxrayvision's network with random weights: ``(model, backbone, classifier, width)``."""
    xrv = require_extra("xrv")
    n_out = len(xrv.models.model_urls[weights]["labels"])
    if weights.startswith("densenet"):
        model = xrv.models.DenseNet(weights=None, num_classes=n_out)
        backbone = nn.Sequential(OrderedDict(features=model.features, relu=nn.ReLU()))
        return model, backbone, model.classifier, int(model.classifier.in_features)
    # torchxrayvision.models.ResNet always loads its file; this is its network.
    model = torchvision.models.resnet50(num_classes=n_out, weights=None)
    model.conv1 = nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3, bias=False)
    backbone = nn.Sequential(
        OrderedDict(
            (n, getattr(model, n))
            for n in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
        )
    )
    return model, backbone, model.fc, int(model.fc.in_features)


def _xrv_key_map(weights: str):  # type: ignore[no-untyped-def]
    dense = weights.startswith("densenet")

    def key_map(k: str) -> str | None:
        if dense:
            if k.startswith("features."):
                return "backbone." + k
            return "head." + k if k.startswith("classifier.") else None
        if k.startswith("fc."):
            return "head.classifier." + k[3:]
        return "backbone." + k

    return key_map


def build_xrv(
    name: str,
    pretrained: Any = None,
    head: str = "hall2020",
    *,
    cache_dir: str | None = None,
    pretrained_strict: bool = True,
    hidden: int = 64,
    dropout: float = 0.5,
    **_: object,
) -> XRVNet:
    """Return a torchxrayvision backbone (``name`` from :data:`XRV_ARCHITECTURES`).

    Parameters
    ----------
    pretrained : None, "xrv" (or "default") or path
        Random weights; torchxrayvision's published weights from its model folder
        (downloaded by torchxrayvision when absent; ``cache_dir`` overrides the
        folder); or a local state dict in torchxrayvision's or cxrkit's key names.
    head : {"hall2020", "fc", "pathologies"}, default="hall2020"
        A new cxrkit head, or torchxrayvision's own 18-pathology head (zero-shot
        pathology scores; ``forward`` returns ``(N, 18)``).
    """
    weights = XRV_ARCHITECTURES[name]
    xrv = require_extra("xrv")
    size = 512 if "res512" in weights else 224
    model, backbone, classifier, nfeat = _raw_model(weights)
    if is_library_weights(pretrained):
        path = xrv_weights_path(weights, cache_dir)
        load_into(
            model,
            read_xrv_weights(path),
            strict=True,
            source=f"torchxrayvision weights file '{path}'",
        )
    keep = head == "pathologies"
    op = None
    if keep and is_library_weights(pretrained) and "op_threshs" in xrv.models.model_urls[weights]:
        op = torch.tensor(xrv.models.model_urls[weights]["op_threshs"], dtype=torch.float32)
    head_module = (
        XRVPathologyHead(classifier, op)
        if keep
        else make_head(head, nfeat, hidden=hidden, dropout=dropout)
    )
    pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
    net = XRVNet(
        backbone,
        pool,
        head_module,
        num_features=nfeat,
        preprocessing=xrv_preprocessing(size),
        name=name,
    )
    net.pathologies = list(xrv.models.model_urls[weights]["labels"]) if keep else None
    if not (is_none(pretrained) or is_library_weights(pretrained)):
        load_into(
            net,
            read_state_dict(pretrained),
            strict=pretrained_strict and keep,
            key_map=_xrv_key_map(weights),
            source=f"weights file '{pretrained}'",
        )
    return net

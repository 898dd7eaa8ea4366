"""Network architectures: a registry of named factories filled by plugins.

>>> from cxrkit.architectures import list_architectures
>>> "resnet50" in list_architectures()
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import lazy_loader

from ..errors import ConfigurationError
from ..plugins import get_registry

if TYPE_CHECKING:  # pragma: no cover
    from ._base import FREEZE_MODES, IMAGENET_MEAN, IMAGENET_STD, CXRNet, Preprocessing
    from ._grayscale import GrayscaleConv2d, grayscale_first_conv
    from ._hall2020 import Hall2020Features, build_hall2020_cnn
    from ._heads import HEADS, TwoClassSoftmaxHead, make_head
    from ._weights import hub_checkpoint_dir, load_into, read_state_dict

# Submodules are imported on first attribute access (PEP 562), so that importing
# the package (or one light submodule, like its plugin) does not import torch.
__getattr__, _, _ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "_base": ["FREEZE_MODES", "IMAGENET_MEAN", "IMAGENET_STD", "CXRNet", "Preprocessing"],
        "_grayscale": ["GrayscaleConv2d", "grayscale_first_conv"],
        "_hall2020": ["Hall2020Features", "build_hall2020_cnn"],
        "_heads": ["HEADS", "TwoClassSoftmaxHead", "make_head"],
        "_weights": ["hub_checkpoint_dir", "load_into", "read_state_dict"],
    },
)

__all__ = [
    "CXRNet",
    "Preprocessing",
    "Hall2020Features",
    "TwoClassSoftmaxHead",
    "FREEZE_MODES",
    "HEADS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "build_hall2020_cnn",
    "create_architecture",
    "grayscale_first_conv",
    "GrayscaleConv2d",
    "list_architectures",
    "get_preprocessing",
    "hub_checkpoint_dir",
    "load_into",
    "make_head",
    "read_state_dict",
]


def list_architectures(pattern: str = "*") -> list[str]:
    """Names of the registered architectures matching a shell-style ``pattern``."""
    return get_registry("architecture").names(pattern)


def get_preprocessing(name: str) -> Preprocessing:
    """Return the preprocessing an architecture declares (input size, interpolation, ...)."""
    from ._base import Preprocessing

    entry = get_registry("architecture").get(name)
    prep = entry.meta.get("preprocessing", Preprocessing())
    if callable(prep):  # resolved from the name (e.g. a timm model's pretrained_cfg)
        prep = prep()
    return prep if isinstance(prep, Preprocessing) else Preprocessing(**prep)


def create_architecture(
    name: str,
    pretrained: str | None = None,
    head: str | None = None,
    freeze: str = "none",
    **kwargs: Any,
) -> CXRNet:
    """Build a registered architecture.

    Parameters
    ----------
    name : str
        A name from :func:`list_architectures`.
    pretrained : None, "imagenet" or path, default=None
        Random initialisation, torchvision's ImageNet weights (read from the
        ``torch.hub`` cache, downloaded if absent and possible), or a state-dict /
        safetensors file (``weights_only``; strict unless ``pretrained_strict=False``).
    head : {"hall2020", "fc"}, optional
        Classification head; the architecture's default when omitted.
    freeze : {"none", "backbone", "all_but_last"}, default="none"
        Which parameters stay fixed during training.
    **kwargs
        Passed to the architecture's factory (e.g. ``dropout``, ``hidden``).
    """
    from ._base import CXRNet

    entry = get_registry("architecture").get(name)
    if entry.meta.get("task", "classification") != "classification":
        raise ConfigurationError(
            f"Architecture {name!r} is a {entry.meta['task']} network, not a classifier; build it "
            "with cxrkit.segmentation.create_segmentation_network or use it in LungSegmenter."
        )
    if head is not None:
        kwargs["head"] = head
    net = entry.factory(pretrained=pretrained, **kwargs)
    if not isinstance(net, CXRNet):
        raise TypeError(
            f"Architecture {name!r} (plugin {entry.plugin!r}) returned {type(net).__name__}; "
            "factories must return a cxrkit.architectures.CXRNet."
        )
    return net.freeze(freeze)

"""Segmentation networks from the architecture registry."""

from __future__ import annotations

from typing import Any

from torch import nn

from ..errors import ConfigurationError
from ..plugins import get_registry

__all__ = ["create_segmentation_network", "list_segmentation_networks"]


def list_segmentation_networks(pattern: str = "*") -> list[str]:
    """List the registered architectures declared with ``task="segmentation"``.

    >>> "lung_unet" in list_segmentation_networks()
    True
    """
    reg = get_registry("architecture")
    return [n for n in reg.names(pattern) if reg.get(n).meta.get("task") == "segmentation"]


def create_segmentation_network(name: str, /, **kwargs: Any) -> nn.Module:
    """Build a registered segmentation network.

    A plugin registers one like any architecture, with ``task="segmentation"``;
    its factory takes ``pretrained=`` and returns a module mapping
    ``(N, 1, S, S)`` standardised images to ``(N, 1, S, S)`` mask logits::

        register("my_pspnet", build_my_pspnet, task="segmentation")

    Parameters
    ----------
    name : str
        A name from :func:`list_segmentation_networks`.
    **kwargs
        Passed to the factory (``pretrained``, ``base_channels``, ...).
    """
    entry = get_registry("architecture").get(name)
    if entry.meta.get("task") != "segmentation":
        raise ConfigurationError(
            f"Architecture {name!r} (plugin {entry.plugin!r}) is not a segmentation network. "
            f"Use one of {list_segmentation_networks()}, or register yours with "
            "task='segmentation'."
        )
    net = entry.factory(**kwargs)
    if not isinstance(net, nn.Module):
        raise ConfigurationError(
            f"Segmentation architecture {name!r} (plugin {entry.plugin!r}) returned "
            f"{type(net).__name__}; factories must return a torch.nn.Module."
        )
    return net

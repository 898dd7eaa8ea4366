"""Registration of the optional backbone families (torchxrayvision, timm, RAD-DINO).

Each family's names are registered when its library is installed; otherwise
one entry per family says how to install it, and building it raises the same
explanation. Nothing here imports the libraries (or torch): the factories and
preprocessing are :class:`~cxrkit.registry.LazyFactory` objects.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from ..registry import LazyFactory
from ._extras import EXTRAS, XRV_ARCHITECTURES, extra_available, install_hint, require_extra

__all__ = ["register_extra_backbones"]

_HERE = "cxrkit.architectures"


def _not_installed(family: str, *_: Any, **__: Any) -> Any:
    return require_extra(family)


def _placeholder(register: Callable[..., None], family: str, name: str) -> None:
    what = EXTRAS[family][2]
    register(
        name,
        partial(_not_installed, family),
        pretrained=(),
        description=f"{what} (not installed: {install_hint(family)})",
    )


def register_extra_backbones(register: Callable[..., None]) -> None:
    """Register the torchxrayvision, RAD-DINO and ``timm:`` architectures."""
    if extra_available("xrv"):
        for name, weights in XRV_ARCHITECTURES.items():
            size = 512 if "res512" in weights else 224
            register(
                name,
                partial(LazyFactory(f"{_HERE}._xrv:build_xrv"), name),
                preprocessing=partial(LazyFactory(f"{_HERE}._xrv:xrv_preprocessing"), size),
                pretrained=("xrv",),
                description=f"torchxrayvision {weights} (1 channel, [-1024, 1024], {size} px).",
            )
    else:
        _placeholder(register, "xrv", "xrv_*")
    if extra_available("raddino"):
        register(
            "rad_dino",
            LazyFactory(f"{_HERE}._raddino:build_rad_dino"),
            preprocessing=LazyFactory(f"{_HERE}._raddino:RAD_DINO_PREPROCESSING"),
            pretrained=("default",),
            description="Microsoft RAD-DINO ViT-B/14 at 518 px through transformers.",
        )
    else:
        _placeholder(register, "raddino", "rad_dino")
    if extra_available("timm"):
        register(
            "timm:*",
            LazyFactory(f"{_HERE}._timm:build_timm"),
            preprocessing=LazyFactory(f"{_HERE}._timm:timm_preprocessing"),
            pretrained=("default",),
            description="Any timm model, e.g. timm:convnext_tiny (pretrained_cfg preprocessing).",
        )
    else:
        _placeholder(register, "timm", "timm:*")

"""Registration of the optional backbone families (torchxrayvision, timm, RAD-DINO).

Each family's names are registered when its library is installed; otherwise
one entry per family says how to install it, and building it raises the same
explanation.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from ._extras import EXTRAS, extra_available, install_hint, require_extra
from ._raddino import RAD_DINO_PREPROCESSING, build_rad_dino
from ._timm import build_timm, timm_preprocessing
from ._xrv import XRV_ARCHITECTURES, build_xrv, xrv_preprocessing

__all__ = ["register_extra_backbones"]


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
                partial(build_xrv, name),
                preprocessing=xrv_preprocessing(size),
                pretrained=("xrv",),
                description=f"torchxrayvision {weights} (1 channel, [-1024, 1024], {size} px).",
            )
    else:
        _placeholder(register, "xrv", "xrv_*")
    if extra_available("raddino"):
        register(
            "rad_dino",
            build_rad_dino,
            preprocessing=RAD_DINO_PREPROCESSING,
            pretrained=("default",),
            description="Microsoft RAD-DINO ViT-B/14 at 518 px through transformers.",
        )
    else:
        _placeholder(register, "raddino", "rad_dino")
    if extra_available("timm"):
        register(
            "timm:*",
            build_timm,
            preprocessing=timm_preprocessing,
            pretrained=("default",),
            description="Any timm model, e.g. timm:convnext_tiny (pretrained_cfg preprocessing).",
        )
    else:
        _placeholder(register, "timm", "timm:*")

"""What the optional backbone families share: importing their library with an install hint, and the error for weights missing from the library's cache."""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError, WeightsError

__all__ = [
    "EXTRAS",
    "XRV_ARCHITECTURES",
    "extra_available",
    "require_extra",
    "missing_weights_error",
    "is_library_weights",
]

#: family -> (module to import, pip extra, what it provides)
EXTRAS: dict[str, tuple[str, str, str]] = {
    "xrv": ("torchxrayvision", "xrv", "torchxrayvision's chest X-ray DenseNets and ResNet-50"),
    "timm": ("timm", "timm", "any timm model as 'timm:NAME'"),
    "raddino": ("transformers", "raddino", "Microsoft's RAD-DINO ViT-B/14 through transformers"),
}

#: ``pretrained`` values meaning "the weights the library publishes for this name".
LIBRARY_WEIGHTS = ("default", "xrv", "timm", "imagenet", "hub")


#: cxrkit name -> torchxrayvision weights name.
XRV_ARCHITECTURES: dict[str, str] = {
    **{
        f"xrv_densenet121_res224_{s}": f"densenet121-res224-{s}"
        for s in ("all", "nih", "chex", "mimic_ch", "mimic_nb", "pc", "rsna")
    },
    "xrv_resnet50_res512_all": "resnet50-res512-all",
}


def extra_available(family: str) -> bool:
    """Whether the library of ``family`` (a key of :data:`EXTRAS`) is installed."""
    return importlib.util.find_spec(EXTRAS[family][0]) is not None


def install_hint(family: str) -> str:
    module, extra, _ = EXTRAS[family]
    return f"pip install 'cxrkit[{extra}]' (or pip install {module})"


def require_extra(family: str) -> Any:
    """Import the library of ``family`` or raise an error saying how to install it."""
    module, _, what = EXTRAS[family]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigurationError(
            f"{what} need the package {module!r}, which is not installed. Install it with "
            f"{install_hint(family)}."
        ) from None


def is_library_weights(pretrained: Any) -> bool:
    """Return True for the ``pretrained`` values that ask for the library's own weights."""
    return pretrained is True or (isinstance(pretrained, str) and pretrained in LIBRARY_WEIGHTS)


def is_none(pretrained: Any) -> bool:
    return pretrained is None or pretrained is False or pretrained == "none"


def missing_weights_error(
    what: str, cache: str | os.PathLike[str], fill: str, exc: BaseException
) -> WeightsError:
    """Return the error for weights that are neither in the library's cache nor downloadable."""
    reason = (str(exc).strip().splitlines() or [""])[0][:200]
    return WeightsError(
        f"{what} are not in the cache '{Path(cache)}' and could not be downloaded "
        f"({type(exc).__name__}: {reason}). On a machine with internet run `{fill}` to fill "
        "that cache (then copy it here, or point the library's cache variable at it), or pass "
        "pretrained=None or the path of a local weights file."
    )

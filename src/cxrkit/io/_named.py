"""Transforms named in a ``transforms`` parameter, looked up in the plugin registry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import ConfigurationError
from ..plugins import get_registry

__all__ = ["resolve_transforms"]


def resolve_transforms(
    transforms: Any, owner: str = "CXRClassifier"
) -> list[Callable[[np.ndarray], np.ndarray]]:
    """Return the callables of a ``transforms`` parameter.

    Registered names are created through the ``transform`` registry (as
    :func:`cxrkit.create_transform` does), callables are kept; anything else is
    a :class:`~cxrkit.errors.ConfigurationError` naming ``owner``.

    >>> [type(t).__name__ for t in resolve_transforms(["centre_blackout"])]
    ['CentreBlackout']
    """
    out = []
    for t in transforms or ():
        if isinstance(t, str):
            out.append(get_registry("transform").create(t))
        elif callable(t):
            out.append(t)
        else:
            raise ConfigurationError(
                f"The 'transforms' parameter of {owner} must hold callables or registered "
                f"transform names (see cxrkit.list_transforms()). Got {t!r}."
            )
    return out

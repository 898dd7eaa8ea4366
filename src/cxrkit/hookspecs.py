"""Hook specifications of the cxrkit plugin system.

A plugin is any module or object with functions marked ``@cxrkit.hookimpl``
whose names match the hooks below. Each hook receives a ``register`` callback;
calling it adds a named factory to the matching registry::

    from cxrkit import hookimpl

    @hookimpl
    def cxrkit_register_architectures(register):
        register("densenet121", build_densenet121, input_size=224)

Third-party plugins are found through the ``cxrkit`` entry-point group;
cxrkit's own built-ins are registered through exactly the same path.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

__all__ = ["hookspec", "hookimpl"]

hookspec = pluggy.HookspecMarker("cxrkit")
hookimpl = pluggy.HookimplMarker("cxrkit")

Register = Callable[..., None]


@hookspec
def cxrkit_register_architectures(register: Register) -> Any:
    """Register network architectures.

    Call ``register(name, factory, **defaults)`` once per architecture.
    ``factory(pretrained=None, head=..., **kwargs)`` returns a
    :class:`cxrkit.architectures.CXRNet`; ``defaults`` documents the
    preprocessing the network expects (``input_size``, ``interpolation``,
    ``normalize``).
    """


@hookspec
def cxrkit_register_datasets(register: Register) -> Any:
    """Register dataset loaders.

    Call ``register(name, loader)``; ``loader(root, **options)`` returns a
    :class:`cxrkit.datasets.CXRDataset`.
    """


@hookspec
def cxrkit_register_transforms(register: Register) -> Any:
    """Register image transforms.

    Call ``register(name, factory)``; ``factory(**options)`` returns a callable
    that maps a 2-D float32 image in ``[0, 1]`` to another such image.
    """


@hookspec
def cxrkit_register_protocols(register: Register) -> Any:
    """Register evaluation protocols.

    Call ``register(name, factory)``; ``factory(**options)`` returns a protocol
    object with a ``run`` method.
    """

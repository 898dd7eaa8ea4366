"""The plugin manager.

Loading order (the pytest/llm/tox pattern):

1. entry points of the ``cxrkit`` group (unless ``CXRKIT_DISABLE_PLUGIN_AUTOLOAD``
   is set to a true value),
2. cxrkit's built-in plugin modules, through the same ``pm.register`` call,
3. ``pm.check_pending()``, which fails on misspelled hook names.

``CXRKIT_BLOCK_PLUGINS`` is a comma-separated list of plugin names (entry-point
names, or the module names of built-ins) that are not loaded.

Registries are filled lazily from the hooks on first use, and refilled after
:func:`register_plugin` / :func:`unregister_plugin`.
"""

from __future__ import annotations

import importlib
import os
import threading
from functools import partial
from typing import Any

import pluggy

from . import hookspecs
from .registry import Registry

__all__ = [
    "BUILTIN_PLUGINS",
    "AUTOLOAD_ENV",
    "BLOCK_ENV",
    "get_plugin_manager",
    "get_registry",
    "register_plugin",
    "unregister_plugin",
    "reset",
    "list_plugins",
]

AUTOLOAD_ENV = "CXRKIT_DISABLE_PLUGIN_AUTOLOAD"
BLOCK_ENV = "CXRKIT_BLOCK_PLUGINS"

#: Built-in plugin modules, registered exactly like third-party plugins.
BUILTIN_PLUGINS: tuple[str, ...] = (
    "cxrkit.architectures.plugin",
    "cxrkit.datasets.plugin",
    "cxrkit.transforms.plugin",
    "cxrkit.evaluation.plugin",
)

_HOOKS = {
    "architecture": "cxrkit_register_architectures",
    "dataset": "cxrkit_register_datasets",
    "transform": "cxrkit_register_transforms",
    "protocol": "cxrkit_register_protocols",
}

_lock = threading.RLock()
_pm: pluggy.PluginManager | None = None
_registries: dict[str, Registry] = {}


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _blocked() -> list[str]:
    return [n.strip() for n in os.environ.get(BLOCK_ENV, "").split(",") if n.strip()]


def get_plugin_manager() -> pluggy.PluginManager:
    """Return the process-wide plugin manager, creating it on first use."""
    global _pm
    with _lock:
        if _pm is None:
            pm = pluggy.PluginManager("cxrkit")
            pm.add_hookspecs(hookspecs)
            for name in _blocked():
                pm.set_blocked(name)
            if not _truthy(os.environ.get(AUTOLOAD_ENV)):
                pm.load_setuptools_entrypoints("cxrkit")
            for modname in BUILTIN_PLUGINS:
                if pm.is_blocked(modname):
                    continue
                module = importlib.import_module(modname)
                pm.register(module, name=modname)
            pm.check_pending()
            _pm = pm
        return _pm


def _fill(kind: str, registry: Registry) -> None:
    pm = get_plugin_manager()
    hook = getattr(pm.hook, _HOOKS[kind])
    registry.clear()
    # Call implementations one by one so each registration knows its plugin name.
    for impl in hook.get_hookimpls():  # registration order
        impl.function(register=partial(registry.add, plugin=impl.plugin_name))


def get_registry(kind: str) -> Registry:
    """Return the filled registry for ``kind`` (architecture, dataset, transform, protocol)."""
    if kind not in _HOOKS:
        raise KeyError(f"Unknown registry kind {kind!r}; expected one of {sorted(_HOOKS)}.")
    with _lock:
        reg = _registries.get(kind)
        if reg is None:
            reg = Registry(kind)
            _fill(kind, reg)
            _registries[kind] = reg
        return reg


def register_plugin(plugin: Any, name: str | None = None) -> str:
    """Register a plugin object at run time and refresh the registries.

    Returns the name under which it was registered (pass it to
    :func:`unregister_plugin`).
    """
    with _lock:
        pm = get_plugin_manager()
        plugin_name = pm.register(plugin, name=name)
        if plugin_name is None:
            raise ValueError(f"Plugin {name or plugin!r} is blocked and was not registered.")
        pm.check_pending()
        _registries.clear()
        try:
            for kind in _HOOKS:
                get_registry(kind)
        except Exception:
            pm.unregister(name=plugin_name)
            _registries.clear()
            raise
        return plugin_name


def unregister_plugin(name: str) -> None:
    """Remove a plugin registered with :func:`register_plugin`."""
    with _lock:
        get_plugin_manager().unregister(name=name)
        _registries.clear()


def reset() -> None:
    """Forget the plugin manager and registries (re-read environment variables)."""
    global _pm
    with _lock:
        _pm = None
        _registries.clear()


def list_plugins() -> list[dict[str, Any]]:
    """Name and hooks of every loaded plugin, with its distribution if any."""
    pm = get_plugin_manager()
    dists = {id(p): d for p, d in pm.list_plugin_distinfo()}
    out = []
    for name, plugin in sorted(pm.list_name_plugin(), key=lambda t: str(t[0])):
        if plugin is None:
            continue
        dist = dists.get(id(plugin))
        out.append(
            {
                "name": name,
                "hooks": sorted(h.name for h in pm.get_hookcallers(plugin) or []),
                "distribution": f"{dist.project_name} {dist.version}" if dist else "builtin",
            }
        )
    return out

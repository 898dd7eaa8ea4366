"""Name registries: lowercase names mapped to factories (the timm pattern).

Registries are filled by plugins through the hooks in :mod:`cxrkit.hookspecs`
the first time one of them is used; see :mod:`cxrkit.plugins`.

A factory may be a :class:`LazyFactory`, which names its implementation as
``"module:attribute"`` and imports it only when the name is used, so listing
the names (``cxrkit list``) imports no implementation.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from .errors import DuplicateNameError, UnknownNameError

__all__ = ["Entry", "LazyFactory", "Registry"]


class LazyFactory:
    """A factory named by ``"module:attribute"``, imported the first time it is used.

    Parameters
    ----------
    target : str
        The implementation, e.g. ``"cxrkit.architectures._torchvision:build_vgg16"``.
    description : str, default=""
        The one line ``cxrkit list`` shows; it is also this object's ``__doc__``.

    Examples
    --------
    >>> from cxrkit.registry import LazyFactory
    >>> join = LazyFactory("os.path:join", "Join path parts.")
    >>> join.__doc__
    'Join path parts.'
    >>> join("a", "b")
    'a/b'
    """

    def __init__(self, target: str, description: str = "") -> None:
        module, sep, attribute = target.partition(":")
        if not (module and sep and attribute):
            raise ValueError(
                f"LazyFactory target {target!r} must look like 'package.module:attribute'."
            )
        self.target = target
        self.__doc__ = description

    def resolve(self) -> Any:
        """Import the module and return the attribute."""
        module, _, attribute = self.target.partition(":")
        obj: Any = importlib.import_module(module)
        for part in attribute.split("."):
            obj = getattr(obj, part)
        return obj

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Resolve the target and call it."""
        return self.resolve()(*args, **kwargs)

    def __repr__(self) -> str:
        return f"LazyFactory({self.target!r})"


def _resolved(value: Any) -> Any:
    return value.resolve() if isinstance(value, LazyFactory) else value


@dataclass(frozen=True)
class Entry:
    """One registered name.

    Attributes
    ----------
    name : str
        The lowercase name users type.
    factory : callable
        Builds the object (a :class:`LazyFactory` until :meth:`Registry.get`
        resolves it).
    plugin : str
        Name of the plugin that registered it.
    meta : dict
        Free-form defaults documented by the plugin (e.g. ``input_size``);
        :class:`LazyFactory` values are resolved by :meth:`Registry.get`.
    """

    name: str
    factory: Callable[..., Any]
    plugin: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def summary(self) -> str:
        """First line of the factory's docstring, or ``''``."""
        doc = (self.meta.get("description") or self.factory.__doc__ or "").strip()
        return doc.splitlines()[0] if doc else ""

    def resolved(self) -> Entry:
        """Return this entry with its :class:`LazyFactory` factory and meta values imported."""
        lazy = [v for v in (self.factory, *self.meta.values()) if isinstance(v, LazyFactory)]
        if not lazy:
            return self
        meta = {k: _resolved(v) for k, v in self.meta.items()}
        if isinstance(self.factory, LazyFactory) and self.factory.__doc__:
            meta.setdefault("description", self.factory.__doc__)
        return Entry(self.name, _resolved(self.factory), self.plugin, meta)


class Registry:
    """A mapping from names to :class:`Entry`, filled by plugins.

    Parameters
    ----------
    kind : str
        Singular noun used in messages (``"architecture"``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    # -- filling -----------------------------------------------------------
    def add(
        self, name: str, factory: Callable[..., Any], *, plugin: str = "<unknown>", **meta: Any
    ) -> None:
        """Register ``factory`` under ``name`` (lower-cased)."""
        if not isinstance(name, str) or not name:
            raise DuplicateNameError(
                f"Plugin {plugin!r} tried to register a {self.kind} with an invalid name "
                f"{name!r}; names must be non-empty strings."
            )
        if not callable(factory):
            raise TypeError(
                f"Plugin {plugin!r} registered {self.kind} {name!r} with a factory that is "
                f"not callable ({type(factory).__name__})."
            )
        key = name.lower()
        if key in self._entries:
            other = self._entries[key].plugin
            raise DuplicateNameError(
                f"The {self.kind} name {key!r} is registered twice: by plugin {other!r} and by "
                f"plugin {plugin!r}. Rename one of them, or block one plugin with "
                f"CXRKIT_BLOCK_PLUGINS={plugin}."
            )
        self._entries[key] = Entry(key, factory, plugin, dict(meta))

    def clear(self) -> None:
        """Forget every entry."""
        self._entries.clear()

    # -- reading -----------------------------------------------------------
    def names(self, pattern: str = "*") -> list[str]:
        """Sorted names matching the shell-style ``pattern``."""
        return sorted(n for n in self._entries if fnmatch.fnmatchcase(n, pattern.lower()))

    def get(self, name: str) -> Entry:
        """Return the entry for ``name`` or raise :class:`UnknownNameError`.

        A name registered with a ``*`` (e.g. ``"timm:*"``) is a pattern: any name it
        matches resolves to an entry whose factory (and callable ``preprocessing``
        meta) receive the part that ``*`` matched as their first argument
        (``"timm:convnext_tiny"`` -> ``factory("convnext_tiny", ...)``).
        """
        key = str(name).lower()
        if key in self._entries:
            return self._entries[key].resolved()
        for pattern, stored in self._entries.items():
            if "*" in pattern and fnmatch.fnmatchcase(key, pattern):
                entry = stored.resolved()
                head, _, tail = pattern.partition("*")
                matched = str(name)[len(head) : len(str(name)) - len(tail)]
                meta = dict(entry.meta)
                if callable(meta.get("preprocessing")):
                    meta["preprocessing"] = partial(meta["preprocessing"], matched)
                return Entry(key, partial(entry.factory, matched), entry.plugin, meta)
        raise UnknownNameError(self.unknown_message(name))

    def unknown_message(self, name: str) -> str:
        """Return the message for an unknown ``name``: the closest names and all of them."""
        available = self.names()
        close = difflib.get_close_matches(str(name).lower(), available, n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        listing = ", ".join(available) if available else "(none registered)"
        return (
            f"Unknown {self.kind} {name!r}.{hint} Available: {listing}. "
            f"Third-party {self.kind}s come from plugins installed in the 'cxrkit' entry-point group."
        )

    def create(self, name: str, /, **kwargs: Any) -> Any:
        """Build the object registered as ``name`` with ``kwargs``."""
        return self.get(name).factory(**kwargs)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries[n] for n in self.names())

    def __len__(self) -> int:
        return len(self._entries)

"""Protocols by name: listing, creation, and their options as a front end sees them."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, Union

from ...errors import ConfigurationError
from ._base import Protocol

__all__ = [
    "ProtocolOption",
    "list_protocols",
    "create_protocol",
    "get_protocol_class",
    "protocol_options",
    "parse_option",
]

_NONE = ("none", "null")


@dataclass(frozen=True)
class ProtocolOption:
    """One option of a protocol: a dataclass field with its type and default."""

    name: str
    type: Any
    default: Any

    @property
    def type_text(self) -> str:
        """The type in words, e.g. ``"int or none"``."""
        return _describe(self.type)


def list_protocols(pattern: str = "*") -> list[str]:
    """List the registered protocol names matching ``pattern`` (fnmatch)."""
    from ...plugins import get_registry

    return get_registry("protocol").names(pattern)


def get_protocol_class(name: str) -> type[Protocol]:
    """Return the factory registered as ``name`` (a :class:`Protocol` dataclass)."""
    from ...plugins import get_registry

    factory = get_registry("protocol").get(name).factory
    if not (isinstance(factory, type) and issubclass(factory, Protocol)):
        raise ConfigurationError(
            f"Protocol {name!r} is registered with {factory!r}, which is not a subclass of "
            "cxrkit.evaluation.protocols.Protocol. Register a Protocol dataclass."
        )
    return factory


def protocol_options(name_or_class: str | type[Protocol]) -> list[ProtocolOption]:
    """Every option of a protocol, in declaration order (``name`` excluded)."""
    cls = get_protocol_class(name_or_class) if isinstance(name_or_class, str) else name_or_class
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        if f.name == "name":
            continue
        default = (
            f.default
            if f.default is not dataclasses.MISSING
            else f.default_factory()
            if f.default_factory is not dataclasses.MISSING
            else None
        )
        out.append(ProtocolOption(f.name, hints.get(f.name, Any), default))
    return out


def create_protocol(name: str, /, **options: Any) -> Protocol:
    """Build a registered protocol; unknown options are reported with the valid ones."""
    cls = get_protocol_class(name)
    valid = {o.name for o in protocol_options(cls)}
    if "transforms" in options and "transforms" not in valid:
        # Input transforms (e.g. lung_crop) belong to every network the protocol trains.
        t = options.pop("transforms")
        t = [t] if isinstance(t, str) else list(t or ())
        options["estimator_params"] = {**options.get("estimator_params", {}), "transforms": t}
    bad = sorted(set(options) - valid)
    if bad:
        from difflib import get_close_matches

        hints = {b: get_close_matches(b, valid, n=1) for b in bad}
        near = "; ".join(f"{b!r}: did you mean {h[0]!r}?" for b, h in hints.items() if h)
        raise ConfigurationError(
            f"Protocol {name!r} has no option(s) {bad}. "
            + (f"{near} " if near else "")
            + f"Options: {sorted(valid)}."
        )
    return cls(**options)


# -- strings to typed values (the command line) ------------------------------------------------
def _args(tp: Any) -> tuple[Any, ...]:
    origin = typing.get_origin(tp)
    if origin is Union or origin is types.UnionType:
        return typing.get_args(tp)
    return (tp,)


def _describe(tp: Any) -> str:
    words = []
    for a in _args(tp):
        if a is type(None):
            words.append("none")
        elif typing.get_origin(a) is tuple:
            words.append("comma-separated list")
        elif typing.get_origin(a) is dict or a is dict:
            words.append("key:value list")
        elif isinstance(a, type):
            words.append(
                {"int": "integer", "float": "number", "bool": "true/false", "str": "text"}.get(
                    a.__name__, a.__name__
                )
            )
        else:
            words.append("value")
    return " or ".join(dict.fromkeys(words))


def _one(text: str, tp: Any) -> Any:
    if tp is bool:
        if text.lower() in ("true", "yes", "1"):
            return True
        if text.lower() in ("false", "no", "0"):
            return False
        raise ValueError
    if tp is int:
        return int(text)
    if tp is float:
        return float(text)
    if tp is str:
        return text
    if typing.get_origin(tp) is tuple:
        return tuple(t.strip() for t in text.split(",") if t.strip())
    if typing.get_origin(tp) is dict or tp is dict:
        pairs = [p.split(":", 1) for p in text.split(",") if p.strip()]
        if any(len(p) != 2 for p in pairs):
            raise ValueError
        return {k.strip(): v.strip() for k, v in pairs}
    raise ValueError


def parse_option(option: ProtocolOption, text: str) -> Any:
    """``text`` (as typed after ``--set name=``) as a value of ``option``'s type.

    Raises
    ------
    ConfigurationError
        The text is not a value of that type; the message names the option, the
        expected type and the default.
    """
    kinds = _args(option.type)
    if type(None) in kinds and text.strip().lower() in _NONE:
        return None
    if option.type is Any:
        return text
    for tp in sorted(
        (k for k in kinds if k is not type(None)),
        key=lambda k: [bool, int, float].index(k) if k in (bool, int, float) else 3,
    ):
        try:
            return _one(text.strip(), tp)
        except ValueError:
            continue
    default = (
        option.default
        if not isinstance(option.default, tuple)
        else ",".join(map(str, option.default))
    )
    raise ConfigurationError(
        f"--set {option.name}={text}: expected {option.type_text} (default: {default})."
    )

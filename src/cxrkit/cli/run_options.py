"""The options of ``cxrkit run``, typed by the protocol's own fields, and its help epilog."""

from __future__ import annotations

import argparse
from typing import Any

from .options import parse_value

__all__ = ["protocol_run_options", "run_epilog"]


def _estimator_param(key: str, text: str) -> tuple[str, Any]:
    """Type ``--set`` keys that are CXRClassifier parameters (they go to ``estimator_params``)."""
    from ..errors import ConfigurationError
    from ..estimators import CXRClassifier
    from ..estimators._classifier import ROUTED_PREFIXES

    if key == "transforms":
        return key, [t.strip() for t in text.split(",") if t.strip()]
    if key in CXRClassifier._get_param_names() or key.startswith(ROUTED_PREFIXES):
        return key, parse_value(text)
    raise ConfigurationError(key)


def _pretrained(spec: str, has_members: bool) -> Any:
    """Parse ``--pretrained PATH`` or, for ensembles, ``ARCH=PATH[,ARCH=PATH]``."""
    if has_members and "=" in spec:
        return dict(p.split("=", 1) for p in spec.split(",") if p)
    return spec


def _flag_values(args: argparse.Namespace) -> list[tuple[str, str, str | None]]:
    """Return ``(flag, option, text)`` for the flags that set a protocol option."""
    return [
        ("--device", "device", args.device),
        ("--seed", "random_state", None if args.seed is None else str(args.seed)),
        ("--labels", "labels", args.labels),
        ("--test-labels", "test_labels", args.test_labels),
        ("--weights", "weights", args.weights),
        ("--n-jobs", "n_jobs", None if args.n_jobs is None else str(args.n_jobs)),
    ]


def protocol_run_options(args: argparse.Namespace) -> dict[str, Any]:
    """Collect the options of ``cxrkit run`` for its protocol, typed by the protocol's fields.

    Parameters
    ----------
    args : argparse.Namespace
        The parsed ``cxrkit run`` arguments.

    Returns
    -------
    dict
        Keyword arguments of the protocol; CXRClassifier parameters are
        gathered under ``estimator_params``.
    """
    from difflib import get_close_matches

    from ..errors import ConfigurationError
    from ..evaluation.protocols import parse_option, protocol_options

    opts = {o.name: o for o in protocol_options(args.protocol)}
    out: dict[str, Any] = {}
    estimator: dict[str, Any] = {}

    def put(key: str, text: str, flag: str) -> None:
        key = key.strip().replace("-", "_")
        if key in opts:
            out[key] = parse_option(opts[key], text)
            return
        try:
            k, v = _estimator_param(key, text)
        except ConfigurationError:
            near = get_close_matches(key, list(opts), n=1)
            raise ConfigurationError(
                f"{flag}: protocol {args.protocol!r} has no option {key!r}"
                + (f" (did you mean {near[0]!r}?)" if near else "")
                + f". Options: {', '.join(sorted(opts))}; CXRClassifier parameters such as lr= "
                "or module__pretrained_strict= are also accepted. See `cxrkit run "
                f"{args.protocol} --help`."
            ) from None
        estimator[k] = v

    for pair in args.set or ():
        if "=" not in pair:
            raise SystemExit(f"cxrkit: error: --set {pair!r} must look like key=value")
        k, v = pair.split("=", 1)
        put(k, v.strip(), "--set")
    if args.arch:
        put("architectures" if "architectures" in opts else "architecture", args.arch, "--arch")
    for flag, key, value in _flag_values(args):
        if value is not None:
            if key not in opts:
                raise ConfigurationError(f"{flag} does not apply to protocol {args.protocol!r}.")
            put(key, value, flag)
    if args.pretrained:
        out["pretrained"] = _pretrained(args.pretrained, "architectures" in opts)
    if args.pretrained_partial:
        estimator["module__pretrained_strict"] = False
    if args.interpolation:
        estimator["interpolation"] = args.interpolation
    if args.save and "refit" in opts and "refit" not in out:
        out["refit"] = True
    if estimator:
        out["estimator_params"] = {**out.get("estimator_params", {}), **estimator}
    return out


def run_epilog() -> str:
    """List every protocol's datasets and options with defaults, for ``run --help``."""
    from ..evaluation.protocols import SLOT_FLAGS, get_protocol_class, list_protocols
    from ..evaluation.protocols import protocol_options as options_of
    from ..plugins import get_registry
    from .text import plain_text

    registry = get_registry("protocol")
    lines = ["protocols, their datasets and their --set options (default in brackets):"]
    for name in list_protocols():
        cls = get_protocol_class(name)
        slots = ", ".join(
            SLOT_FLAGS[s.name] + ("" if s.required else " (optional)") for s in cls.inputs
        )
        lines.append(f"\n  {name}: {slots}")
        summary = plain_text(registry.get(name).summary)
        if summary:
            lines.append(f"    {summary}")
        for o in options_of(cls):
            default = ",".join(map(str, o.default)) if isinstance(o.default, tuple) else o.default
            lines.append(f"      {o.name}={o.type_text} [{default}]")
    return "\n".join(lines)

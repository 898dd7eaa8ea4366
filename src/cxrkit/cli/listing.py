"""``cxrkit list``: the names in a registry, the plugin that gave each and a one-line description."""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "cmd_list"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the arguments of ``cxrkit list`` to ``p``."""
    p.add_argument(
        "kind", choices=["architectures", "datasets", "transforms", "protocols", "plugins"]
    )
    p.set_defaults(func=cmd_list)


def cmd_list(args: argparse.Namespace) -> int:
    """Print one line per registered name (or per plugin)."""
    from ..plugins import get_registry, list_plugins
    from .text import plain_text

    if args.kind == "plugins":
        for p in list_plugins():
            print(f"{p['name']:40s} {p['distribution']:28s} {', '.join(p['hooks'])}")
        return 0
    kind = args.kind.rstrip("s")
    reg = get_registry(kind)
    for entry in reg:
        print(f"{entry.name:22s} {entry.plugin:32s} {plain_text(entry.summary)}")
    return 0

"""The entry point of ``cxrkit`` and ``python -m cxrkit``."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from .parser import build_parser, command_of

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the subcommand, return its exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments after the program name.

    Returns
    -------
    int
        0 on success, 1 when a check fails, 2 on a usage or data error and
        130 when interrupted.
    """
    from ..errors import CxrkitError

    os.environ.setdefault("MPLBACKEND", "Agg")
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(only=command_of(argv))
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CxrkitError, FileNotFoundError) as exc:
        print(f"cxrkit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cxrkit: interrupted", file=sys.stderr)
        return 130

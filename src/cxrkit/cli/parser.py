"""The ``cxrkit`` argument parser, built from a table of subcommands.

Each subcommand's module has ``add_arguments(parser)``, which adds its
arguments and sets ``func``. :func:`build_parser` imports that module only for
the subcommand being run (``only``); the others get an empty parser with their
one-line help, which is all ``cxrkit --help`` shows. This keeps ``cxrkit list``
from importing torch through the ``serve`` or ``embed`` modules.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["COMMANDS", "Command", "CommandParser", "add_parallel_flags", "build_parser"]


class Command:
    """One subcommand: its name, one-line help and the module that adds its arguments.

    Parameters
    ----------
    name : str
        What users type after ``cxrkit``.
    help : str
        The line ``cxrkit --help`` shows.
    module : str
        Dotted module with an ``add_arguments(parser)`` function.
    options : dict, optional
        Extra keyword arguments of ``add_parser`` (e.g. ``formatter_class``).
    """

    def __init__(
        self, name: str, help: str, module: str, options: dict[str, Any] | None = None
    ) -> None:
        self.name = name
        self.help = help
        self.module = module
        self.options = options or {}

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Import the module and add its arguments to ``parser``."""
        adder: Callable[[argparse.ArgumentParser], None]
        adder = importlib.import_module(self.module).add_arguments
        adder(parser)


COMMANDS: tuple[Command, ...] = (
    Command(
        "demo",
        "run the Hall et al. protocol on built-in synthetic data (no download)",
        "cxrkit.cli.demo",
    ),
    Command(
        "run",
        "run a registered protocol and write its report",
        "cxrkit.cli.run",
        {"formatter_class": argparse.RawDescriptionHelpFormatter},
    ),
    Command("predict", "probabilities for images from a saved model", "cxrkit.cli.predict"),
    Command(
        "embed", "write frozen-backbone embeddings of a dataset", "cxrkit.estimators._embed_cli"
    ),
    Command("list", "list registered plugins' names", "cxrkit.cli.listing"),
    Command("check", "data-only validity guards (no training)", "cxrkit.cli.check"),
    Command("serve", "web page and JSON API for a saved model", "cxrkit.serve._cli"),
    Command(
        "train-lungs",
        "train a lung segmenter on manual masks (patient-grouped CV, "
        "safetensors weights, model card, overlays)",
        "cxrkit.segmentation._cli",
    ),
)


class CommandParser(argparse.ArgumentParser):
    """An argument parser whose epilog may be computed when help is shown."""

    lazy_epilog: Callable[[], str] | None = None

    def format_help(self) -> str:
        """Compute the epilog, if lazy, then format the help."""
        if self.lazy_epilog is not None:
            self.epilog = self.lazy_epilog()
        return super().format_help()


def add_parallel_flags(p: argparse.ArgumentParser) -> None:
    """Add ``--n-jobs`` and ``--scheduler`` to ``p``."""
    p.add_argument(
        "--n-jobs",
        type=int,
        default=None,
        metavar="N",
        help="folds trained at the same time (-1: one per core; with --scheduler: "
        "the most in flight on the cluster)",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="train the folds on a running Dask scheduler, e.g. tcp://10.0.0.1:8786 "
        "(pip install 'cxrkit[dask]'; see docs/scaling.md)",
    )


def command_of(argv: Sequence[str]) -> str | None:
    """Return the subcommand named in ``argv``, or None when there is none (yet)."""
    names = {c.name for c in COMMANDS}
    for token in argv:
        if not token.startswith("-"):
            return token if token in names else None
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """Build the ``cxrkit`` parser.

    Parameters
    ----------
    only : str, optional
        Give only this subcommand its arguments (the others keep their help
        line). Default: all of them.

    Returns
    -------
    argparse.ArgumentParser
        The parser; ``parse_args`` sets ``func`` to the subcommand's function.
    """
    from .. import __version__

    parser = CommandParser(
        prog="cxrkit", description="Chest X-ray classification protocols, reports and checks."
    )
    parser.add_argument("--version", action="version", version=f"cxrkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=CommandParser)
    for command in COMMANDS:
        p = sub.add_parser(command.name, help=command.help, **command.options)
        if only is None or only == command.name:
            command.add_arguments(p)
    return parser

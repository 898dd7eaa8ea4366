"""``cxrkit check``: the data-only validity guards, without training."""

from __future__ import annotations

import argparse

from .options import echo, key_values, load_spec

__all__ = ["add_arguments", "cmd_check"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the arguments of ``cxrkit check`` to ``p``."""
    p.add_argument("--data", required=True, metavar="NAME:ROOT")
    p.add_argument("--data-option", action="append", metavar="KEY=VALUE")
    p.add_argument("--test-data", metavar="NAME:ROOT")
    p.add_argument("--labels", help="restrict to these labels, e.g. covid,pneumonia")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    """Print the dataset summary and the guards' table; exit 1 if any guard fails."""
    from ..validity import format_guards, run_data_checks

    ds = load_spec(args.data, key_values(args.data_option, "--data-option"))
    if args.labels:
        ds = ds.select(args.labels.split(","))
    test = load_spec(args.test_data) if args.test_data else None
    echo(args.quiet, ds.format_summary())
    results = run_data_checks(ds, test=test)
    print(format_guards(results))
    return 1 if any(r.status == "FAIL" for r in results) else 0

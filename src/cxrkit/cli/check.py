"""``cxrkit check``: the data-only validity guards, without training."""

from __future__ import annotations

import argparse

from .check_lungs import HOW_TO_BUILD, SEGMENTER_ENV, lung_guard_rows, segmenter_folder
from .options import echo, key_values, load_spec

__all__ = ["add_arguments", "cmd_check"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the arguments of ``cxrkit check`` to ``p``."""
    p.add_argument("--data", required=True, metavar="NAME:ROOT")
    p.add_argument("--data-option", action="append", metavar="KEY=VALUE")
    p.add_argument("--test-data", metavar="NAME:ROOT")
    p.add_argument("--labels", help="restrict to these labels, e.g. covid,pneumonia")
    p.add_argument(
        "--lung-segmenter",
        metavar="DIR",
        help="a folder from `cxrkit train-lungs`: also run the outside-lungs probe "
        f"(default: ${SEGMENTER_ENV})",
    )
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_check)


def cmd_check(args: argparse.Namespace) -> int:
    """Print the dataset summary and the guards' table; exit 1 if any guard fails.

    With a lung segmenter (``--lung-segmenter`` or ``$CXRKIT_LUNG_SEGMENTER``)
    the outside-lungs probe is one more row; without one an INFO line says how
    to build one.
    """
    from ..validity import format_guards, run_data_checks

    ds = load_spec(args.data, key_values(args.data_option, "--data-option"))
    if args.labels:
        ds = ds.select(args.labels.split(","))
    test = load_spec(args.test_data) if args.test_data else None
    echo(args.quiet, ds.format_summary())
    results = run_data_checks(ds, test=test)
    folder = segmenter_folder(args.lung_segmenter)
    if folder:
        results += lung_guard_rows(ds, folder)
    print(format_guards(results))
    if not folder:
        print(HOW_TO_BUILD)
    return 1 if any(r.status == "FAIL" for r in results) else 0

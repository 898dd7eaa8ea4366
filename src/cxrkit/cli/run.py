"""``cxrkit run``: run a registered protocol, write and print its report, save its model."""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .messages import recorded_warnings
from .options import echo, key_values, load_spec
from .parser import add_parallel_flags
from .run_options import protocol_run_options, run_epilog

__all__ = ["add_arguments", "cmd_run", "run_protocol"]


def _add_data_arguments(p: argparse.ArgumentParser) -> None:
    """Add the protocol, the datasets and their loader options."""
    p.add_argument("protocol", help="a name from `cxrkit list protocols`")
    p.add_argument(
        "--data",
        required=True,
        metavar="NAME:ROOT",
        help="dataset name and location, e.g. csv:../shared/data/cxr-dev/metadata.csv",
    )
    p.add_argument(
        "--data-option",
        action="append",
        metavar="KEY=VALUE",
        help="loader option for --data (repeatable), e.g. target=airspace_opacity",
    )
    p.add_argument(
        "--test-data",
        metavar="NAME:ROOT",
        help="a separate test set, for protocols that take one (see below)",
    )
    p.add_argument(
        "--test-option",
        action="append",
        metavar="KEY=VALUE",
        help="loader option for --test-data (repeatable)",
    )
    p.add_argument(
        "--controls",
        metavar="NAME:ROOT",
        help="control images, for protocols that take them (see below)",
    )
    p.add_argument(
        "--controls-option",
        action="append",
        metavar="KEY=VALUE",
        help="loader option for --controls (repeatable), e.g. target=no_finding",
    )


def _add_model_arguments(p: argparse.ArgumentParser) -> None:
    """Add the architecture, labels, weights and estimator flags."""
    p.add_argument(
        "--arch",
        help="architecture name (see `cxrkit list architectures`); a "
        "comma-separated list for ensembles",
    )
    p.add_argument(
        "--labels",
        help="the labels to compare, e.g. covid,pneumonia (three or more: multi-class, where "
        "the protocol supports it), or the findings of a multi-label protocol",
    )
    p.add_argument(
        "--test-labels",
        help="the test set's two labels where they differ from "
        "--labels, e.g. covid,normal (for protocols with a test_labels option)",
    )
    p.add_argument("--weights", help="weights folder (for protocols with a weights option)")
    p.add_argument(
        "--pretrained",
        metavar="PATH",
        help="initial weights: 'imagenet' or a weights file; for ensembles per "
        "architecture as ARCH=PATH[,ARCH=PATH]",
    )
    p.add_argument(
        "--pretrained-partial",
        action="store_true",
        help="the weights file holds only part of the network (e.g. a backbone "
        "without its head): load the matching tensors, initialise the rest",
    )
    p.add_argument(
        "--interpolation",
        choices=["nearest", "bilinear", "bicubic"],
        help="resize interpolation of the input images",
    )
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="protocol option (repeatable; listed below), or a CXRClassifier "
        "parameter such as lr=1e-4",
    )


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the arguments of ``cxrkit run`` to ``p``; its epilog lists every protocol."""
    p.lazy_epilog = run_epilog  # type: ignore[attr-defined]
    _add_data_arguments(p)
    _add_model_arguments(p)
    p.add_argument("--out", default="cxrkit-report", help="report folder (default: %(default)s)")
    p.add_argument("--device", default=None, help="auto (default), cpu or cuda")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: 0)")
    p.add_argument(
        "--save",
        metavar="MODEL",
        help="save the trained model (safetensors + JSON); cross-validation "
        "protocols first refit it on all the data",
    )
    add_parallel_flags(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars or banners")
    p.set_defaults(func=cmd_run)


def _print_result(result: Any, files: dict[str, Any], seconds: float) -> None:
    from ..evaluation import format_summary_table

    print(format_summary_table(result))
    if "last_epoch_network" in result.extra:
        last = result.extra["last_epoch_network"]
        ens = result.metrics
        print("Snapshot ensemble vs its last-epoch network (same folds, same run):")
        for m in ("auc", "sensitivity", "specificity", "accuracy"):
            print(
                f"  {m:12s} ensemble {ens[m]['value']:.3f} [{ens[m]['ci_low']:.3f}, "
                f"{ens[m]['ci_high']:.3f}]   last epoch {last[m]['value']:.3f} "
                f"[{last[m]['ci_low']:.3f}, {last[m]['ci_high']:.3f}]"
            )
    for v in result.validity:
        if v.get("status") != "PASS":
            print(f"Validity {v['status']}: {v['name']}: {v['summary']}")
    print(f"Report: {files['html']}  ({seconds:.0f} s)")


def run_protocol(
    name: str,
    options: dict[str, Any],
    datasets: dict[str, Any],
    out: Path,
    quiet: bool,
    notes: Sequence[str] = (),
) -> tuple[Any, Any]:
    """Create protocol ``name`` with ``options``, run it, write and print its report.

    Parameters
    ----------
    name : str
        A registered protocol.
    options : dict
        Its options (``estimator_params`` included).
    datasets : dict
        ``data`` and, where given, ``test`` and ``controls``.
    out : Path
        The report folder.
    quiet : bool
        No banner or progress bars.
    notes : sequence of str, optional
        Warnings raised before the run (e.g. while loading the data), added to
        the report's warnings.

    Returns
    -------
    tuple
        The protocol and its result.
    """
    import warnings

    from ..evaluation import write_report
    from ..evaluation.protocols import create_protocol

    protocol: Any = create_protocol(name, **options)
    echo(
        quiet,
        f"Protocol {name}: "
        + ", ".join(f"{k}={v}" for k, v in options.items() if k != "estimator_params")
        + (f", estimator {options['estimator_params']}" if options.get("estimator_params") else ""),
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        # cxrkit's own warnings reach the user through result.warnings, in plain words.
        warnings.filterwarnings("ignore", category=UserWarning)
        result = protocol.run(
            datasets["data"],
            test=datasets.get("test"),
            controls=datasets.get("controls"),
            progress=not quiet,
        )
    seconds = time.perf_counter() - t0
    result.extra["wall_seconds"] = seconds
    result.warnings[:0] = [n for n in notes if n not in result.warnings]
    files = write_report(result, out)
    _print_result(result, files, seconds)
    return protocol, result


def _datasets(args: argparse.Namespace) -> dict[str, Any]:
    datasets = {"data": load_spec(args.data, key_values(args.data_option, "--data-option"))}
    if args.test_data:
        datasets["test"] = load_spec(args.test_data, key_values(args.test_option, "--test-option"))
    if args.controls:
        datasets["controls"] = load_spec(
            args.controls, key_values(args.controls_option, "--controls-option")
        )
    return datasets


def cmd_run(args: argparse.Namespace) -> int:
    """Check the outputs, load the datasets, run the protocol and save its model."""
    from .._outputs import check_model_destination, check_output_folder
    from ..parallel import parallel_backend

    check_output_folder(args.out, "--out")
    if args.save:
        check_model_destination(args.save, "--save")
    options = protocol_run_options(args)
    with recorded_warnings() as notes:
        datasets = _datasets(args)
    with parallel_backend(n_jobs=args.n_jobs, scheduler=args.scheduler):
        protocol, result = run_protocol(
            args.protocol, options, datasets, Path(args.out), args.quiet, notes
        )
    if args.save:
        model = getattr(protocol, "fitted_", None)
        if model is None:
            raise SystemExit(f"cxrkit: error: protocol {args.protocol!r} keeps no model to save")
        _save_any(model, Path(args.save))
        from ..evaluation.clinical.checklist import write_model_card

        card = write_model_card(result, Path(args.save))
        print(f"Model saved to {args.save} (model card: {card.name})")
        point = fitted_operating_point(result)
        if point is not None:
            from ..estimators import write_operating_point

            path = write_operating_point(Path(args.save), *point)
            print(f"Operating point {point[0]:.4f} ({point[1]}) written to {path.name}")
    return 0


def fitted_operating_point(result: Any) -> tuple[float, str] | None:
    """Return the threshold a saved model should decide at, or ``None`` (the run fitted none).

    Every candidate was fitted on training patients only: the threshold of the
    model refit for a held-out test set when there is one, else the median of
    the training folds' thresholds.
    """
    import numpy as np

    clinical: dict[str, Any] = next((s.data for s in result.sections if s.key == "clinical"), {})
    fitted = (clinical.get("operating_point") or {}).get("fitted")
    if not fitted:
        return None
    rule = fitted["rule"]
    held = result.extra.get("held_out_test")
    if held and held.get("threshold") not in (None, 0.5):
        return float(held["threshold"]), f"{rule}, fitted on an inner split of all training data"
    values = [float(v) for v in fitted["thresholds"]]
    return float(np.median(values)), f"{rule}: median of the training-fold thresholds {values}"


def _save_any(model: Any, path: Path) -> None:
    from ..ensembles import save_voting_ensemble
    from ..estimators import save_model

    if hasattr(model, "estimators_") and hasattr(model, "named_estimators_"):
        save_voting_ensemble(model, path)
    else:
        save_model(model, path)

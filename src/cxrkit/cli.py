"""The ``cxrkit`` command line."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]


def _parse_value(text: str) -> Any:
    low = text.lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    if "," in text:
        return tuple(_parse_value(t) for t in text.split(",") if t)
    return text


def _options(pairs: Sequence[str] | None, what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for pair in pairs or ():
        if "=" not in pair:
            raise SystemExit(f"cxrkit: error: {what} {pair!r} must look like key=value")
        k, v = pair.split("=", 1)
        out[k.strip().replace("-", "_")] = _parse_value(v.strip())
    return out


def _load(spec: str, options: dict[str, Any] | None = None) -> Any:
    from .datasets import list_datasets, load_dataset
    from .errors import ConfigurationError

    name, _, root = spec.partition(":")
    if name not in list_datasets():
        guess = (
            "csv"
            if spec.lower().endswith(".csv")
            else "image-folder"
            if Path(spec).is_dir()
            else None
        )
        raise ConfigurationError(
            f"Unknown dataset {name!r} in {spec!r}: dataset options take the form NAME:ROOT "
            f"with NAME one of {', '.join(list_datasets())}"
            + (
                f"; for this path: {guess}:{spec}"
                if guess
                else ", e.g. csv:../shared/data/cxr-dev/metadata.csv"
            )
            + "."
        )
    return load_dataset(name, root=root or None, **(options or {}))


def _echo(quiet: bool, *args: Any) -> None:
    if not quiet:
        print(*args, flush=True)


# -- list ------------------------------------------------------------------------
def cmd_list(args: argparse.Namespace) -> int:
    from .plugins import get_registry, list_plugins

    if args.kind == "plugins":
        for p in list_plugins():
            print(f"{p['name']:40s} {p['distribution']:28s} {', '.join(p['hooks'])}")
        return 0
    kind = args.kind.rstrip("s")
    reg = get_registry(kind)
    for entry in reg:
        print(f"{entry.name:22s} {entry.plugin:32s} {entry.summary}")
    return 0


# -- check -----------------------------------------------------------------------
def cmd_check(args: argparse.Namespace) -> int:
    from .validity import format_guards, run_data_checks

    ds = _load(args.data, _options(args.data_option, "--data-option"))
    if args.labels:
        ds = ds.select(args.labels.split(","))
    test = _load(args.test_data) if args.test_data else None
    _echo(args.quiet, ds.format_summary())
    results = run_data_checks(ds, test=test)
    print(format_guards(results))
    return 1 if any(r.status == "FAIL" for r in results) else 0


# -- run -------------------------------------------------------------------------
def _print_result(result: Any, files: dict[str, Any], seconds: float) -> None:
    from .evaluation import format_summary_table

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


def _run_protocol(
    name: str, options: dict[str, Any], datasets: dict[str, Any], out: Path, quiet: bool
) -> Any:
    """Create protocol ``name`` with ``options``, run it on ``datasets`` (keys:
    ``data``, ``test``, ``controls``), write and print its report.
    """
    import warnings

    from .evaluation import write_report
    from .evaluation.protocols import create_protocol

    protocol: Any = create_protocol(name, **options)
    _echo(
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
    files = write_report(result, out)
    _print_result(result, files, seconds)
    return protocol, result


def _estimator_param(key: str, text: str) -> tuple[str, Any]:
    """``--set`` keys that are CXRClassifier parameters go to ``estimator_params``."""
    from .errors import ConfigurationError
    from .estimators import CXRClassifier
    from .estimators._classifier import ROUTED_PREFIXES

    if key == "transforms":
        return key, [t.strip() for t in text.split(",") if t.strip()]
    if key in CXRClassifier._get_param_names() or key.startswith(ROUTED_PREFIXES):
        return key, _parse_value(text)
    raise ConfigurationError(key)


def _pretrained(spec: str, has_members: bool) -> Any:
    """``--pretrained PATH`` or, for ensembles, ``ARCH=PATH[,ARCH=PATH]``."""
    if has_members and "=" in spec:
        return dict(p.split("=", 1) for p in spec.split(",") if p)
    return spec


def protocol_run_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options of ``cxrkit run``, typed by the protocol's own fields."""
    from difflib import get_close_matches

    from .errors import ConfigurationError
    from .evaluation.protocols import parse_option, protocol_options

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
    for flag, key, value in (
        ("--device", "device", args.device),
        ("--seed", "random_state", None if args.seed is None else str(args.seed)),
        ("--labels", "labels", args.labels),
        ("--test-labels", "test_labels", args.test_labels),
        ("--weights", "weights", args.weights),
        ("--n-jobs", "n_jobs", None if args.n_jobs is None else str(args.n_jobs)),
    ):
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


def cmd_run(args: argparse.Namespace) -> int:
    from ._outputs import check_model_destination, check_output_folder

    check_output_folder(args.out, "--out")
    if args.save:
        check_model_destination(args.save, "--save")
    options = protocol_run_options(args)
    datasets = {"data": _load(args.data, _options(args.data_option, "--data-option"))}
    if args.test_data:
        datasets["test"] = _load(args.test_data, _options(args.test_option, "--test-option"))
    if args.controls:
        datasets["controls"] = _load(
            args.controls, _options(args.controls_option, "--controls-option")
        )
    from .parallel import parallel_backend

    with parallel_backend(n_jobs=args.n_jobs, scheduler=args.scheduler):
        protocol, _ = _run_protocol(args.protocol, options, datasets, Path(args.out), args.quiet)
    if args.save:
        model = getattr(protocol, "fitted_", None)
        if model is None:
            raise SystemExit(f"cxrkit: error: protocol {args.protocol!r} keeps no model to save")
        _save_any(model, Path(args.save))
        print(f"Model saved to {args.save}")
    return 0


def _save_any(model: Any, path: Path) -> None:
    from .ensembles import save_voting_ensemble
    from .estimators import save_model

    if hasattr(model, "estimators_") and hasattr(model, "named_estimators_"):
        save_voting_ensemble(model, path)
    else:
        save_model(model, path)


# -- predict ---------------------------------------------------------------------
def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from ._outputs import check_output_folder
    from .ensembles import load_voting_ensemble
    from .estimators import load_model

    if args.gradcam:
        check_output_folder(args.gradcam, "--gradcam")
    if (Path(args.model) / "voting.json").is_file():
        model = load_voting_ensemble(args.model)
    elif (Path(args.model) / "ensemble.json").is_file():
        model = load_model(args.model)
    else:
        model = load_model(args.model, device=args.device or "auto")
    paths = np.asarray(args.images, dtype=object)
    proba = model.predict_proba(paths)
    classes = [str(c) for c in model.classes_]
    print("image\t" + "\t".join(f"p({c})" for c in classes) + "\tprediction")
    for path, p in zip(args.images, proba):
        print(f"{path}\t" + "\t".join(f"{v:.4f}" for v in p) + f"\t{classes[int(p.argmax())]}")
    if args.gradcam:
        _write_gradcams(model, paths, proba, Path(args.gradcam))
    return 0


def _write_gradcams(model: Any, paths: Any, proba: Any, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .estimators._data import as_image_source
    from .evaluation import gradcam

    if hasattr(model, "named_estimators_"):  # a voting ensemble: its first member's network
        model = model.estimators_[0]
    base = model.estimator_ if hasattr(model, "estimator_") else model
    out.mkdir(parents=True, exist_ok=True)
    batch = next(base.iter_batches(as_image_source(paths), batch_size=len(paths)))
    maps = gradcam(base.module_, batch.to(base.device_))
    prep = base.preprocessing_
    for j, path in enumerate(paths):
        img = batch[j, 0].numpy() * prep.std[0] + prep.mean[0]
        fig, ax = plt.subplots(figsize=(4, 4))
        ax.imshow(img, cmap="gray")
        ax.imshow(maps[j], cmap="jet", alpha=0.4)
        ax.set_title(f"p({base.classes_[1]}) = {proba[j, 1]:.3f}", parse_math=False)
        ax.axis("off")
        target = out / (Path(str(path)).stem + "_gradcam.png")
        fig.savefig(target, dpi=100, bbox_inches="tight")
        plt.close(fig)
        print(f"Grad-CAM: {target}")


# -- demo ------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    """hall2020-cv on built-in synthetic data, no download."""
    import warnings

    from ._outputs import check_output_folder
    from .datasets import load_dataset

    check_output_folder(args.out, "--out")
    t0 = time.perf_counter()
    n_patients = 24 if args.quick else 32
    _echo(
        args.quiet, f"Generating synthetic chest X-rays ({n_patients} patients, 2 images each)..."
    )
    ds = load_dataset(
        "synthetic", n_patients=n_patients, images_per_patient=2, size=128, random_state=args.seed
    )
    _echo(args.quiet, ds.format_summary())
    out = Path(args.out)
    common = dict(
        n_splits=3,
        n_snapshots=3,
        interval=2,
        n_bootstraps=500,
        if_threshold_not_reached="last",
        random_state=args.seed,
        device=args.device or "auto",
        n_jobs=args.n_jobs,
    )
    runs: list[tuple[str, Path, dict[str, Any]]] = [
        (
            "hall2020_cnn",
            out,
            dict(architecture="hall2020_cnn", max_epochs=8 if args.quick else 16),
        ),
        (
            "resnet18 (frozen, random init)",
            out / "resnet18-frozen",
            dict(
                architecture="resnet18",
                input_size=64,
                max_epochs=10 if args.quick else 20,
                estimator_params={"lr": 3e-4, "lr_schedule": None, "optimizer": "adam"},
            ),
        ),
    ]
    from .parallel import parallel_backend

    with warnings.catch_warnings(), parallel_backend(n_jobs=args.n_jobs, scheduler=args.scheduler):
        warnings.filterwarnings("ignore", message="Snapshot threshold not met")
        for title, folder, opts in runs:
            _echo(args.quiet, f"\n=== hall2020-cv with {title} ===")
            _run_protocol("hall2020-cv", {**common, **opts}, {"data": ds}, folder, args.quiet)
    print(f"\ncxrkit demo finished in {time.perf_counter() - t0:.0f} s; open {out / 'report.html'}")
    return 0


def _add_parallel_flags(p: argparse.ArgumentParser) -> None:
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


class _Parser(argparse.ArgumentParser):
    """An argument parser whose epilog may be computed when help is shown."""

    lazy_epilog: Any = None

    def format_help(self) -> str:
        if self.lazy_epilog is not None:
            self.epilog = self.lazy_epilog()
        return super().format_help()


def _run_epilog() -> str:
    """Every protocol's datasets and options with defaults, for ``run --help``."""
    from .evaluation.protocols import SLOT_FLAGS, get_protocol_class, list_protocols
    from .evaluation.protocols import protocol_options as options_of

    lines = ["protocols, their datasets and their --set options (default in brackets):"]
    for name in list_protocols():
        cls = get_protocol_class(name)
        slots = ", ".join(
            SLOT_FLAGS[s.name] + ("" if s.required else " (optional)") for s in cls.inputs
        )
        lines.append(f"\n  {name}: {slots}")
        for o in options_of(cls):
            default = ",".join(map(str, o.default)) if isinstance(o.default, tuple) else o.default
            lines.append(f"      {o.name}={o.type_text} [{default}]")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(
        prog="cxrkit", description="Chest X-ray classification protocols, reports and checks."
    )
    parser.add_argument("--version", action="version", version=f"cxrkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("demo", help="run hall2020-cv on built-in synthetic data (no download)")
    p.add_argument("--out", default="cxrkit-report", help="report folder (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="auto (default), cpu or cuda")
    p.add_argument("--quick", action="store_true", help="fewer images and epochs (smoke test)")
    _add_parallel_flags(p)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "run",
        help="run a registered protocol and write its report",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.lazy_epilog = _run_epilog  # type: ignore[attr-defined]
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
        help="control images, for protocols that take them (opacity2020)",
    )
    p.add_argument(
        "--controls-option",
        action="append",
        metavar="KEY=VALUE",
        help="loader option for --controls (repeatable), e.g. target=no_finding",
    )
    p.add_argument(
        "--arch",
        help="architecture name (see `cxrkit list architectures`); a "
        "comma-separated list for ensembles",
    )
    p.add_argument("--labels", help="the two labels to compare, e.g. covid,pneumonia")
    p.add_argument(
        "--test-labels",
        help="the test set's two labels where they differ from "
        "--labels, e.g. covid,normal (hall2020-unseen)",
    )
    p.add_argument("--weights", help="weights folder (hall2020-published)")
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
    p.add_argument("--out", default="cxrkit-report", help="report folder (default: %(default)s)")
    p.add_argument("--device", default=None, help="auto (default), cpu or cuda")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: 0)")
    p.add_argument(
        "--save",
        metavar="MODEL",
        help="save the trained model (safetensors + JSON); cross-validation "
        "protocols first refit it on all the data",
    )
    _add_parallel_flags(p)
    p.add_argument("--quiet", action="store_true", help="no progress bars or banners")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("predict", help="probabilities for images from a saved model")
    p.add_argument("model", help="folder written by --save or cxrkit.save_model")
    p.add_argument("images", nargs="+")
    p.add_argument("--gradcam", metavar="DIR", help="write Grad-CAM overlays here")
    p.add_argument("--device", default=None)
    p.set_defaults(func=cmd_predict)

    from .estimators._embed_cli import add_parser as add_embed_parser

    add_embed_parser(sub)

    p = sub.add_parser("list", help="list registered plugins' names")
    p.add_argument(
        "kind", choices=["architectures", "datasets", "transforms", "protocols", "plugins"]
    )
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("check", help="data-only validity guards (no training)")
    p.add_argument("--data", required=True, metavar="NAME:ROOT")
    p.add_argument("--data-option", action="append", metavar="KEY=VALUE")
    p.add_argument("--test-data", metavar="NAME:ROOT")
    p.add_argument("--labels", help="restrict to these labels, e.g. covid,pneumonia")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_check)

    from .serve._cli import add_parser as add_serve_parser

    add_serve_parser(sub)
    from .segmentation._cli import add_parser as add_train_lungs

    add_train_lungs(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from .errors import CxrkitError

    os.environ.setdefault("MPLBACKEND", "Agg")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (CxrkitError, FileNotFoundError) as exc:
        print(f"cxrkit: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cxrkit: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

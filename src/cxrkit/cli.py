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
    from .datasets import load_dataset

    name, _, root = spec.partition(":")
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
def _run_protocol(name: str, options: dict[str, Any], datasets: dict[str, Any],
                  out: Path, quiet: bool) -> Any:
    from .evaluation import format_summary_table, write_report
    from .evaluation.protocols import create_protocol

    protocol: Any = create_protocol(name, **options)  # each protocol's run() takes its own datasets
    _echo(quiet, f"Protocol: {protocol!r}")
    t0 = time.perf_counter()
    if name == "opacity2020":
        missing = [k for k in ("data", "test_data", "controls") if datasets.get(k) is None]
        if missing:
            raise SystemExit("cxrkit: error: opacity2020 needs --data chestxray14:ROOT (proxy "
                             "labels), --test-data (COVID-19 images) and --controls (No Finding "
                             "images)")
        result = protocol.run(datasets["data"], datasets["test_data"], datasets["controls"],
                              progress=not quiet)
    elif name == "hall2020-unseen":
        result = protocol.run(datasets["data"], datasets.get("test_data"), progress=not quiet)
    else:
        result = protocol.run(datasets["data"], progress=not quiet)
    seconds = time.perf_counter() - t0
    result.extra["wall_seconds"] = seconds
    files = write_report(result, out)
    print(format_summary_table(result))
    if "last_epoch_network" in result.extra:
        last = result.extra["last_epoch_network"]
        ens = result.metrics
        print("Snapshot ensemble vs its last-epoch network (same folds, same run):")
        for m in ("auc", "sensitivity", "specificity", "accuracy"):
            print(f"  {m:12s} ensemble {ens[m]['value']:.3f} [{ens[m]['ci_low']:.3f}, "
                  f"{ens[m]['ci_high']:.3f}]   last epoch {last[m]['value']:.3f} "
                  f"[{last[m]['ci_low']:.3f}, {last[m]['ci_high']:.3f}]")
    bad = [v for v in result.validity if v.get("status") != "PASS"]
    for v in bad:
        print(f"Validity {v['status']}: {v['name']}: {v['summary']}")
    print(f"Report: {files['html']}  ({seconds:.0f} s)")
    return protocol, result


def cmd_run(args: argparse.Namespace) -> int:
    options = _options(args.set, "--set")
    if args.arch:
        options["architecture"] = args.arch
    if args.device:
        options["device"] = args.device
    if args.seed is not None:
        options["random_state"] = args.seed
    if args.labels:
        options["labels"] = tuple(args.labels.split(","))
    if args.weights:
        options["weights"] = args.weights
    if args.n_jobs is not None:
        options["n_jobs"] = args.n_jobs
    datasets = {"data": _load(args.data, _options(args.data_option, "--data-option"))}
    if args.test_data:
        datasets["test_data"] = _load(args.test_data, _options(args.test_option, "--test-option"))
    if args.controls:
        datasets["controls"] = _load(args.controls, _options(args.controls_option,
                                                             "--controls-option"))
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
    from .estimators import save_model

    if hasattr(model, "estimators_") and hasattr(model, "named_estimators_"):
        for name, est in model.named_estimators_.items():
            save_model(est, path / name)
    else:
        save_model(model, path)


# -- predict ---------------------------------------------------------------------
def cmd_predict(args: argparse.Namespace) -> int:
    import numpy as np

    from .estimators import load_model

    model = load_model(args.model, device=args.device or "auto") if not (
        Path(args.model) / "ensemble.json").is_file() else load_model(args.model)
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
        ax.set_title(f"p({base.classes_[1]}) = {proba[j, 1]:.3f}")
        ax.axis("off")
        target = out / (Path(str(path)).stem + "_gradcam.png")
        fig.savefig(target, dpi=100, bbox_inches="tight")
        plt.close(fig)
        print(f"Grad-CAM: {target}")


# -- demo ------------------------------------------------------------------------
def cmd_demo(args: argparse.Namespace) -> int:
    """hall2020-cv on built-in synthetic data, no download."""
    import warnings

    from .datasets import load_dataset

    t0 = time.perf_counter()
    n_patients = 24 if args.quick else 32
    _echo(args.quiet, f"Generating synthetic chest X-rays ({n_patients} patients, 2 images each)...")
    ds = load_dataset("synthetic", n_patients=n_patients, images_per_patient=2, size=128,
                      random_state=args.seed)
    _echo(args.quiet, ds.format_summary())
    out = Path(args.out)
    common = dict(n_splits=3, n_snapshots=3, interval=2, n_bootstraps=500,
                  if_threshold_not_reached="last", random_state=args.seed,
                  device=args.device or "auto", n_jobs=args.n_jobs)
    runs: list[tuple[str, Path, dict[str, Any]]] = [
        ("hall2020_cnn", out, dict(architecture="hall2020_cnn", max_epochs=8 if args.quick else 16)),
        ("resnet18 (frozen, random init)", out / "resnet18-frozen",
         dict(architecture="resnet18", input_size=64, max_epochs=10 if args.quick else 20,
              estimator_params={"lr": 3e-4, "lr_schedule": None, "optimizer": "adam"})),
    ]
    from .parallel import parallel_backend

    with warnings.catch_warnings(), parallel_backend(n_jobs=args.n_jobs,
                                                     scheduler=args.scheduler):
        warnings.filterwarnings("ignore", message="Snapshot threshold not met")
        for title, folder, opts in runs:
            _echo(args.quiet, f"\n=== hall2020-cv with {title} ===")
            _run_protocol("hall2020-cv", {**common, **opts}, {"data": ds}, folder, args.quiet)
    print(f"\ncxrkit demo finished in {time.perf_counter() - t0:.0f} s; open {out / 'report.html'}")
    return 0


def _add_parallel_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n-jobs", type=int, default=None, metavar="N",
                   help="folds trained at the same time (-1: one per core; with --scheduler: "
                        "the most in flight on the cluster)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="train the folds on a running Dask scheduler, e.g. tcp://10.0.0.1:8786 "
                        "(pip install 'cxrkit[dask]'; see docs/scaling.md)")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="cxrkit", description="Chest X-ray classification protocols, reports and checks.")
    parser.add_argument("--version", action="version", version=f"cxrkit {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="run hall2020-cv on built-in synthetic data (no download)")
    p.add_argument("--out", default="cxrkit-report", help="report folder (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="auto (default), cpu or cuda")
    p.add_argument("--quick", action="store_true", help="fewer images and epochs (smoke test)")
    _add_parallel_flags(p)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("run", help="run a registered protocol and write its report")
    p.add_argument("protocol", help="a name from `cxrkit list protocols`")
    p.add_argument("--data", required=True, metavar="NAME:ROOT",
                   help="dataset name and location, e.g. csv:../shared/data/cxr-dev/metadata.csv")
    p.add_argument("--data-option", action="append", metavar="KEY=VALUE",
                   help="loader option for --data (repeatable), e.g. target=airspace_opacity")
    p.add_argument("--test-data", metavar="NAME:ROOT", help="unseen test set (hall2020-unseen, "
                   "opacity2020's COVID-19 images)")
    p.add_argument("--test-option", action="append", metavar="KEY=VALUE")
    p.add_argument("--controls", metavar="NAME:ROOT", help="opacity2020's No Finding controls")
    p.add_argument("--controls-option", action="append", metavar="KEY=VALUE")
    p.add_argument("--arch", help="architecture name (see `cxrkit list architectures`)")
    p.add_argument("--labels", help="the two labels to compare, e.g. covid,pneumonia")
    p.add_argument("--weights", help="weights folder (hall2020-published)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="protocol option (repeatable), e.g. grouped=false, n_splits=5")
    p.add_argument("--out", default="cxrkit-report")
    p.add_argument("--device", default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--save", metavar="MODEL", help="save the trained model (safetensors + JSON)")
    _add_parallel_flags(p)
    p.add_argument("--quiet", action="store_true")
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
    p.add_argument("kind", choices=["architectures", "datasets", "transforms", "protocols",
                                    "plugins"])
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("check", help="data-only validity guards (no training)")
    p.add_argument("--data", required=True, metavar="NAME:ROOT")
    p.add_argument("--data-option", action="append", metavar="KEY=VALUE")
    p.add_argument("--test-data", metavar="NAME:ROOT")
    p.add_argument("--labels", help="restrict to these labels, e.g. covid,pneumonia")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_check)
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

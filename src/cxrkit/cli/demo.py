"""``cxrkit demo``: the cross-validation protocol on built-in synthetic data, no download."""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path
from typing import Any

from .options import echo
from .parser import add_parallel_flags
from .run import run_protocol

__all__ = ["DEMO_PROTOCOL", "add_arguments", "cmd_demo"]

#: The protocol the demo runs, twice: with the small CNN and with a frozen ResNet-18.
DEMO_PROTOCOL = "hall2020-cv"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the arguments of ``cxrkit demo`` to ``p``."""
    p.add_argument("--out", default="cxrkit-report", help="report folder (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="auto (default), cpu or cuda")
    p.add_argument("--quick", action="store_true", help="fewer images and epochs (smoke test)")
    add_parallel_flags(p)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)


def _runs(args: argparse.Namespace, out: Path) -> list[tuple[str, Path, dict[str, Any]]]:
    """Return ``(title, report folder, options)`` of the demo's two runs."""
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
    cnn = dict(architecture="hall2020_cnn", max_epochs=8 if args.quick else 16)
    resnet = dict(
        architecture="resnet18",
        input_size=64,
        max_epochs=10 if args.quick else 20,
        estimator_params={"lr": 3e-4, "lr_schedule": None, "optimizer": "adam"},
    )
    return [
        ("hall2020_cnn", out, {**common, **cnn}),
        ("resnet18 (frozen, random init)", out / "resnet18-frozen", {**common, **resnet}),
    ]


def cmd_demo(args: argparse.Namespace) -> int:
    """Generate synthetic chest X-rays and write two reports."""
    from .._outputs import check_output_folder
    from ..datasets import load_dataset
    from ..parallel import parallel_backend

    check_output_folder(args.out, "--out")
    t0 = time.perf_counter()
    n_patients = 24 if args.quick else 32
    echo(args.quiet, f"Generating synthetic chest X-rays ({n_patients} patients, 2 images each)...")
    ds = load_dataset(
        "synthetic", n_patients=n_patients, images_per_patient=2, size=128, random_state=args.seed
    )
    echo(args.quiet, ds.format_summary())
    out = Path(args.out)
    with warnings.catch_warnings(), parallel_backend(n_jobs=args.n_jobs, scheduler=args.scheduler):
        warnings.filterwarnings("ignore", message="Snapshot threshold not met")
        for title, folder, opts in _runs(args, out):
            echo(args.quiet, f"\n=== {DEMO_PROTOCOL} with {title} ===")
            run_protocol(DEMO_PROTOCOL, opts, {"data": ds}, folder, args.quiet)
    print(f"\ncxrkit demo finished in {time.perf_counter() - t0:.0f} s; open {out / 'report.html'}")
    return 0

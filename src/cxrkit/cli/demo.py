"""``cxrkit demo``: the cross-validation protocol on built-in synthetic data, no download."""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

from .options import echo
from .parser import add_parallel_flags
from .run import run_protocol

__all__ = ["add_arguments", "cmd_demo"]


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the arguments of ``cxrkit demo`` to ``p``."""
    p.add_argument("--out", default="cxrkit-report", help="report folder (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="auto (default), cpu or cuda")
    p.add_argument("--quick", action="store_true", help="fewer images and epochs (smoke test)")
    add_parallel_flags(p)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    """Generate synthetic chest X-rays and write two reports."""
    from .._outputs import check_output_folder
    from ..datasets import load_dataset
    from ..evaluation.protocols import demo_runs
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
        runs = demo_runs(quick=args.quick, seed=args.seed, device=args.device, n_jobs=args.n_jobs)
        for run in runs:
            echo(args.quiet, f"\n=== {run.protocol} with {run.title} ===")
            folder = out / run.subfolder if run.subfolder else out
            run_protocol(run.protocol, run.options, {"data": ds}, folder, args.quiet)
    print(f"\ncxrkit demo finished in {time.perf_counter() - t0:.0f} s; open {out / 'report.html'}")
    return 0

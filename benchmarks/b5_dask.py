"""B5 - Hall2020CV folds serially vs on a Dask LocalCluster (2 worker processes, 1 thread each).

The same 4-fold protocol (``hall2020_cnn`` trained whole, synthetic PNG files, so only
paths travel to the workers) runs three times in one process:

- serial, torch with its default number of intra-op threads (all cores);
- serial, 1 torch thread (the reference the Dask workers must match exactly);
- through ``cxrkit.parallel.parallel_backend(scheduler=...)`` on a
  ``dask.distributed.LocalCluster(n_workers=2, threads_per_worker=1)``.

Cluster start-up (and the workers' imports) is timed separately; a warm-up run precedes the
timings. The pooled out-of-fold scores of the Dask run are
compared with the 1-thread serial run (they must be identical).

Run:  PYTHONPATH=src python benchmarks/b5_dask.py [--quick] [--workers 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import header  # noqa: E402

from cxrkit.datasets import load_dataset  # noqa: E402
from cxrkit.evaluation.protocols import Hall2020CV  # noqa: E402
from cxrkit.parallel import parallel_backend  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller data and fewer epochs")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--patients", type=int, default=40)
    ap.add_argument("--size", type=int, default=100, help="image side (the network's input)")
    ap.add_argument("--epochs", type=int, default=8)
    args = ap.parse_args()
    if args.quick:
        args.patients, args.epochs = 16, 3
    warnings.filterwarnings("ignore", message="Snapshot threshold not met")
    from dask.distributed import Client, LocalCluster

    header(
        f"B5 Dask: Hall2020CV 4 folds, hall2020_cnn trained whole, {args.patients * 2} "
        f"synthetic {args.size} px PNGs, {args.epochs} epochs, 2-member snapshot ensembles"
    )
    tmp = tempfile.mkdtemp(prefix="cxrkit-b5-")
    ds = load_dataset(
        "synthetic", root=tmp, n_patients=args.patients, images_per_patient=2, size=args.size
    )
    p = Hall2020CV(
        architecture="hall2020_cnn",
        input_size=args.size,
        n_splits=4,
        n_snapshots=2,
        interval=1,
        max_epochs=args.epochs,
        if_threshold_not_reached="last",
        n_bootstraps=100,
        probes=False,
    )

    default_threads = torch.get_num_threads()
    p.run(ds.subset(np.arange(16)), progress=False)  # warm-up: lazy imports and allocations
    t0 = time.perf_counter()
    p.run(ds, progress=False)
    t_serial_default = time.perf_counter() - t0

    torch.set_num_threads(1)
    t0 = time.perf_counter()
    serial = p.run(ds, progress=False)
    t_serial_1 = time.perf_counter() - t0

    t0 = time.perf_counter()
    cluster = LocalCluster(
        n_workers=args.workers,
        processes=True,
        threads_per_worker=1,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=40,
    )
    client = Client(cluster)

    def warm_up() -> None:  # the same imports and warning filter as this process
        import cxrkit.evaluation.protocols  # noqa: F401

        warnings.filterwarnings("ignore", message="Snapshot threshold not met")

    client.run(warm_up)
    t_start = time.perf_counter() - t0
    try:
        t0 = time.perf_counter()
        with parallel_backend(scheduler=client):
            on_dask = p.run(ds, progress=False)
        t_dask = time.perf_counter() - t0
    finally:
        client.close()
        cluster.close()

    same = np.array_equal(serial.y_score, on_dask.y_score)
    print(f"serial, {default_threads} torch thread(s): {t_serial_default:7.1f} s")
    print(f"serial, 1 torch thread:   {t_serial_1:7.1f} s")
    print(
        f"Dask, {args.workers} workers x 1 thread: {t_dask:7.1f} s  "
        f"(+ {t_start:.1f} s cluster start-up and imports)"
    )
    print(
        f"ratio serial({default_threads} threads) / Dask: {t_serial_default / t_dask:.2f}x; "
        f"serial(1 thread) / Dask: {t_serial_1 / t_dask:.2f}x"
    )
    print(
        f"out-of-fold scores identical to the 1-thread serial run: {same}; "
        f"AUC {serial.metrics['auc']['value']:.4f} vs {on_dask.metrics['auc']['value']:.4f}"
    )


if __name__ == "__main__":
    main()

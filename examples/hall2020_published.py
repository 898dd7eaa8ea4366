"""Evaluate the published Hall et al. (2020) small-CNN snapshot ensemble on cxr-dev.

Usage::

    python examples/hall2020_published.py WEIGHTS_DIR DATA_DIR [--bootstrap 1000] [--report OUT]

``WEIGHTS_DIR`` holds the seven ``weights2-improvement-*.hdf5`` files;
``DATA_DIR`` is the ``cxr-dev`` folder (``metadata.csv`` + ``images/``).

The ensemble is scored once on every image, then evaluated with cxrkit's own
metrics and report code for covid vs pneumonia (the paper's task) and covid vs
normal. Covid is the positive class; its score is ``1 - mean sigmoid`` (the
sigmoid is the probability of other pneumonia), i.e. ``predict_proba(X)[:, 0]``;
an image is called covid when that score is >= 0.5. Confidence intervals come
from a bootstrap over patients (:func:`cxrkit.evaluation.compute_metrics`).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from cxrkit.datasets import load_dataset
from cxrkit.evaluation import RunResult, compute_metrics, format_summary_table, write_report
from cxrkit.importers import load_hall2020_published


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("weights_dir", type=Path)
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (default 1000)")
    ap.add_argument("--report", type=Path, default=None, help="write HTML reports under this folder")
    args = ap.parse_args(argv)

    dataset = load_dataset("csv", args.data_dir)
    ens = load_hall2020_published(args.weights_dir)
    covid = int(np.flatnonzero(ens.classes_ == "covid")[0])
    X = np.asarray(dataset.X)
    labels = np.asarray(dataset.y).astype(str)
    groups = np.asarray(dataset.groups).astype(str)
    p_covid = ens.predict_proba(X)[:, covid]
    print(f"Published ensemble: {len(ens.members_)} members, epochs "
          f"{[s['epoch'] for s in ens.snapshots_]}")
    for negative in ("pneumonia", "normal"):
        keep = np.isin(labels, ["covid", negative])
        metrics = compute_metrics(labels[keep], p_covid[keep], positive_label="covid",
                                  groups=groups[keep], n_bootstraps=args.bootstrap)
        result = RunResult(protocol="hall2020-published",
                           config={"weights": str(args.weights_dir), "labels": ["covid", negative],
                                   "n_bootstraps": args.bootstrap, "random_state": 0},
                           positive_label="covid", classes=[negative, "covid"],
                           images=[str(v) for v in X[keep]], y_true=labels[keep],
                           y_score=p_covid[keep], groups=groups[keep], metrics=metrics)
        print(f"\n== covid vs {negative} ==")
        print(format_summary_table(result))
        if args.report:
            write_report(result, args.report / f"covid_vs_{negative}")


if __name__ == "__main__":
    main()

"""Train the Hall et al. small CNN on cxr-dev (covid vs pneumonia) and report AUC.

Usage: python examples/train_hall2020_cnn.py ../shared/data/cxr-dev [--epochs 60] [--seed 0]
       [--no-balance]

A patient-grouped hold-out (25 % of patients) is used for testing; the AUC is
reported with its patient-bootstrap 95 % CI. As in the paper, the network is
trained on a class-balanced sample of the training images (cxr-dev has 419
covid vs 74 pneumonia images; on all of them the small CNN first learns to
answer "covid" to everything); the test set keeps every held-out image.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from cxrkit import CXRClassifier
from cxrkit.datasets import load_dataset
from cxrkit.evaluation import compute_metrics
from cxrkit.validity import check_train_test_leakage
from cxrkit.validity.splits import holdout_split


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cxr_dev", type=Path, help="folder holding cxr-dev/metadata.csv")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--no-balance", dest="balance", action="store_false",
                    help="train on every training image instead of a class-balanced sample")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    ds = load_dataset("csv", root=args.cxr_dev / "metadata.csv").select(["covid", "pneumonia"])
    tr, te = holdout_split(ds.y, ds.groups, 0.25, random_state=args.seed)
    check_train_test_leakage(ds.groups[tr], ds.groups[te])
    if args.balance:
        rng = np.random.default_rng(args.seed)
        labels, counts = np.unique(ds.y[tr], return_counts=True)
        tr = np.sort(np.concatenate([rng.choice(tr[ds.y[tr] == k], counts.min(), replace=False)
                                     for k in labels]))
    clf = CXRClassifier.from_recipe("hall2020", architecture="hall2020_cnn",
                                    max_epochs=args.epochs, random_state=args.seed)
    t0 = time.perf_counter()
    clf.fit(ds.X[tr], ds.y[tr], groups=ds.groups[tr])
    fit_s = time.perf_counter() - t0
    p = clf.predict_proba(ds.X[te])[:, list(clf.classes_).index("covid")]
    m = compute_metrics(ds.y[te], p, positive_label="covid", groups=ds.groups[te])
    print(f"train {len(tr)} images / test {len(te)} images (patient-grouped), {args.epochs} epochs, "
          f"fit {fit_s:.0f} s")
    for k in ("auc", "sensitivity", "specificity", "accuracy"):
        print(f"{k:12s} {m[k]['value']:.3f} [{m[k]['ci_low']:.3f}, {m[k]['ci_high']:.3f}]")
    print("train_acc by epoch:", np.round([h["train_acc"] for h in clf.history_], 2).tolist())


if __name__ == "__main__":
    main()

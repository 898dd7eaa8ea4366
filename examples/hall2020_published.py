"""Evaluate the published Hall et al. (2020) small-CNN snapshot ensemble on cxr-dev.

Usage::

    python examples/hall2020_published.py WEIGHTS_DIR DATA_DIR [--bootstrap 2000]

``WEIGHTS_DIR`` holds the seven ``weights2-improvement-*.hdf5`` files;
``DATA_DIR`` is the ``cxr-dev`` folder (``metadata.csv`` + ``images/``).

Covid is the positive class; its score is ``1 - mean sigmoid`` (the sigmoid is
the probability of other pneumonia), i.e. ``predict_proba(X)[:, 0]``; an image
is called covid when that score is > 0.5 (the authors: sigmoid >= 0.5 is
pneumonia). 95% confidence intervals come from a bootstrap over patients
(images of one patient are resampled together).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from cxrkit.importers import load_hall2020_published


def _metrics(y: np.ndarray, score: np.ndarray) -> tuple[float, float, float]:
    pred = score > 0.5
    return (roc_auc_score(y, score), float(pred[y == 1].mean()), float((~pred)[y == 0].mean()))


def evaluate(y: np.ndarray, score: np.ndarray, groups: np.ndarray, n_boot: int,
             seed: int = 0) -> dict[str, tuple[float, float, float]]:
    """AUC, TPR and TNR with patient-bootstrap 95% intervals."""
    point = _metrics(y, score)
    rng = np.random.default_rng(seed)
    patients = np.unique(groups)
    rows = {p: np.flatnonzero(groups == p) for p in patients}
    boot = []
    for _ in range(n_boot):
        idx = np.concatenate([rows[p] for p in rng.choice(patients, len(patients))])
        if len(np.unique(y[idx])) == 2:
            boot.append(_metrics(y[idx], score[idx]))
    lo, hi = np.percentile(np.array(boot), [2.5, 97.5], axis=0)
    return {name: (point[i], lo[i], hi[i]) for i, name in enumerate(("AUC", "TPR", "TNR"))}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("weights_dir", type=Path)
    ap.add_argument("data_dir", type=Path)
    ap.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples (default 2000)")
    args = ap.parse_args(argv)

    meta = pd.read_csv(args.data_dir / "metadata.csv")
    ens = load_hall2020_published(args.weights_dir)
    paths = [str(args.data_dir / p) for p in meta["image"]]
    p_covid = ens.predict_proba(paths)[:, list(ens.classes_).index("covid")]
    labels = meta["label"].to_numpy()
    groups = meta["patient_id"].astype(str).to_numpy()
    print(f"Hall et al. (2020) published ensemble: {len(ens.members_)} members, "
          f"epochs {[s['epoch'] for s in ens.snapshots_]}")
    for negative in ("pneumonia", "normal"):
        keep = np.isin(labels, ["covid", negative])
        y = (labels[keep] == "covid").astype(int)
        res = evaluate(y, p_covid[keep], groups[keep], args.bootstrap)
        print(f"\ncovid ({y.sum()}) vs {negative} ({(y == 0).sum()}):")
        for name, (v, lo, hi) in res.items():
            print(f"  {name}: {v:.3f}  (95% CI {lo:.3f}-{hi:.3f})")


if __name__ == "__main__":
    main()

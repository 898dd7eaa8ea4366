"""B13: ``compute_multilabel_metrics`` vs one ``compute_metrics`` call per finding.

Synthetic scores for ``--n`` images (two per patient) and ``--k`` findings
(10 % prevalence, 20 % of labels missing). The baseline is the binary
``compute_metrics`` run on each finding's observed images, which the
multi-label function also does; the ratio is what the joint macro and micro
AUC bootstrap (the same patient resamples for every finding) adds.

    python benchmarks/b13_multilabel_metrics.py [--n 20000] [--k 14] [--boot 1000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import header

from cxrkit.evaluation import compute_metrics, compute_multilabel_metrics


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--k", type=int, default=14)
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--quick", action="store_true", help="2,000 images, 200 resamples")
    a = ap.parse_args()
    n, k, boot = (2000, a.k, 200) if a.quick else (a.n, a.k, a.boot)
    header(f"B11 multi-label metrics: {n} images, {k} findings, {boot} resamples")
    rng = np.random.default_rng(0)
    Y = (rng.random((n, k)) < 0.1).astype(float)
    Y[rng.random((n, k)) < 0.2] = np.nan
    S = np.clip(0.3 * np.nan_to_num(Y) + 0.7 * rng.random((n, k)), 0, 1)
    groups = np.repeat(np.arange(n // 2 + 1), 2)[:n]

    t0 = time.perf_counter()
    for j in range(k):
        obs = ~np.isnan(Y[:, j])
        compute_metrics(
            Y[obs, j] == 1, S[obs, j], positive_label=True, groups=groups[obs], n_bootstraps=boot
        )
    base = time.perf_counter() - t0
    t0 = time.perf_counter()
    m = compute_multilabel_metrics(
        Y, S, names=[f"f{j}" for j in range(k)], groups=groups, n_bootstraps=boot
    )
    multi = time.perf_counter() - t0
    print(f"{k} x compute_metrics:       {base:7.1f} s")
    print(f"compute_multilabel_metrics: {multi:7.1f} s  ({multi / base:.2f}x)")
    print(
        f"macro AUC {m['macro_auc']['value']:.3f} [{m['macro_auc']['ci_low']:.3f}, "
        f"{m['macro_auc']['ci_high']:.3f}]"
    )


if __name__ == "__main__":
    main()

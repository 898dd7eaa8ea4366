"""B12 - head training on cached features: 14 findings (multi-label) vs two classes.

A frozen ResNet-18 (random initialisation: timing only) with the hall2020 head, its
features cached by a first fit; then the same head is trained on the cached features
with a binary ``y`` and with a 14-column multi-label ``y`` (10 % of the labels missing,
5 % uncertain, ``uncertain="ignore"``), alternately, ``--repeats`` times each. The
figure is the ratio of the medians (multi-label / binary); the target is <= 1.2x.
Only the last layer differs (14 logits instead of 1, masked binary cross-entropy).

Run:  PYTHONPATH=src python benchmarks/b12_multilabel_head.py [--images 512] [--epochs 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import header  # noqa: E402

from cxrkit.estimators import CXRClassifier, feature_cache_stats  # noqa: E402

FINDINGS = [
    "Atelectasis",
    "Cardiomegaly",
    "Consolidation",
    "Edema",
    "Effusion",
    "Emphysema",
    "Fibrosis",
    "Hernia",
    "Infiltration",
    "Mass",
    "Nodule",
    "Pleural_Thickening",
    "Pneumonia",
    "Pneumothorax",
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=512)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    header("B12 multi-label head on cached features")
    rng = np.random.default_rng(0)
    X = rng.integers(0, 256, (args.images, args.size, args.size), dtype=np.uint8)
    y_bin = np.array(["a", "b"])[rng.integers(0, 2, args.images)]
    Y = (rng.random((args.images, len(FINDINGS))) < 0.2).astype(float)
    Y[rng.random(Y.shape) < 0.10] = np.nan
    Y[rng.random(Y.shape) < 0.05] = -1
    Y[0], Y[1] = 1.0, 0.0  # every finding has both labels
    y_ml = pd.DataFrame(Y, columns=FINDINGS)

    def clf() -> CXRClassifier:
        return CXRClassifier.from_recipe(
            "hall2020",
            architecture="resnet18",
            input_size=args.size,
            max_epochs=args.epochs,
            augment=None,
            random_state=0,
        )

    clf().fit(X, y_bin)  # computes and caches the backbone features
    misses = feature_cache_stats()["misses"]
    times: dict[str, list[float]] = {"binary": [], "multilabel (14)": []}
    for _ in range(args.repeats):
        for name, y in (("binary", y_bin), ("multilabel (14)", y_ml)):
            t0 = time.perf_counter()
            est = clf().fit(X, y)
            times[name].append(time.perf_counter() - t0)
    assert feature_cache_stats()["misses"] == misses, "the timed fits recomputed features"
    assert est.n_outputs_ == len(FINDINGS)
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in times.items():
        print(
            f"{k:>16}: median {med[k]:.3f} s over {len(v)} fits ({', '.join(f'{t:.3f}' for t in v)})"
        )
    print(
        f"{args.images} images, {args.epochs} epochs, features cached: multi-label / binary = "
        f"{med['multilabel (14)'] / med['binary']:.2f}x (target <= 1.2x)"
    )


if __name__ == "__main__":
    main()

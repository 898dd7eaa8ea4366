"""Lung shortcuts on cxr-dev: whole images vs ``lung_crop`` vs lungs hidden, two models.

cxr-dev covid vs pneumonia (AUC of P(pneumonia)), patient-grouped stratified k-fold
(``StratifiedGroupKFold``, shuffled, seed 0), optionally class-balanced (``--per-class``).
Two models:

1. ``hed_vgg16``: the frozen VGG16 backbone with the HED weights
   (``$CXRKIT_SHARED_WEIGHTS/vgg16_features_from_hed_bsds500.pth``, a backbone-only file
   loaded with ``module__pretrained_strict=False``, as ``cxrkit run --pretrained FILE
   --pretrained-partial`` does) and a trained linear head; the feature cache makes
   every fold after the first cheap.
2. ``hall2020_cnn``: the small CNN trained whole with the ``hall2020`` recipe.

For each model: out-of-fold AUC with a 95 % patient-level bootstrap interval on whole
images, with ``lung_crop``, and with the lungs hidden (``outside_lungs_probe``, which
appends ``lung_blackout``), side by side; and ``attribution_in_lungs`` on each fold's
held-out images (whole images and ``lung_crop``), pooled over folds per class: the
n-weighted mean of the fold means, with an interval from the folds' bootstrap standard
errors (normal approximation), beside the lungs' share of the network's input.

Run:  PYTHONPATH=src python benchmarks/lung_shortcuts.py --segmenter SEGDIR
      [--models hed_vgg16,hall2020_cnn] [--folds 5] [--epochs 30] [--per-class 74]
      [--quick]   (--quick: 2 folds, 2 epochs, 16 images per class, VGG16 at 128 px)
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from _common import header
from sklearn.base import clone
from sklearn.model_selection import StratifiedGroupKFold

from cxrkit import CXRClassifier, load_dataset
from cxrkit.errors import DataError
from cxrkit.evaluation.metrics import compute_metrics
from cxrkit.segmentation import load_segmenter, lung_mask_stats
from cxrkit.transforms import LungCrop
from cxrkit.validity.lungs import attribution_in_lungs, outside_lungs_probe

CLASSES = ("covid", "pneumonia")
HED_FILE = "vgg16_features_from_hed_bsds500.pth"
Z95 = 1.959963984540054


def pool_fold_summaries(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Pool per-fold ``attribution_in_lungs`` class summaries into one.

    Parameters
    ----------
    rows : list of dict
        Per-fold summaries with ``n``, ``share_in_lungs``, ``ci_low``, ``ci_high``
        and ``lung_area_share``; the folds hold disjoint patients.

    Returns
    -------
    dict or None
        ``n``, ``share_in_lungs`` (n-weighted mean), ``ci_low``/``ci_high`` (normal
        interval from the folds' standard errors, each taken as its 95 % interval's
        width / 3.92), ``lung_area_share`` (n-weighted) and ``folds``; ``None`` when
        ``rows`` is empty.
    """
    rows = [r for r in rows if r.get("n", 0) > 0]
    if not rows:
        return None
    n = np.array([r["n"] for r in rows], float)
    w = n / n.sum()
    mean = float(np.sum(w * [r["share_in_lungs"] for r in rows]))
    se = [(r["ci_high"] - r["ci_low"]) / (2 * Z95) for r in rows]
    half = Z95 * math.sqrt(float(np.sum((w * se) ** 2)))
    return {
        "n": int(n.sum()),
        "share_in_lungs": round(mean, 4),
        "ci_low": round(max(0.0, mean - half), 4),
        "ci_high": round(min(1.0, mean + half), 4),
        "lung_area_share": round(float(np.sum(w * [r["lung_area_share"] for r in rows])), 4),
        "folds": len(rows),
    }


def format_share(s: dict[str, Any] | None) -> str:
    """``'0.26 [0.21, 0.31] (lungs 0.35)'``, or ``'not scored'``."""
    if s is None:
        return "not scored"
    return (
        f"{s['share_in_lungs']:.2f} [{s['ci_low']:.2f}, {s['ci_high']:.2f}] "
        f"(lungs {s['lung_area_share']:.2f})"
    )


def _auc(y: np.ndarray, s: np.ndarray, g: np.ndarray) -> dict[str, float]:
    m = compute_metrics(y, s, positive_label=CLASSES[1], groups=g, n_bootstraps=1000)["auc"]
    return {k: round(float(m[k]), 4) for k in ("value", "ci_low", "ci_high")}


def cv_with_attribution(
    est: Any, X: np.ndarray, y: np.ndarray, g: np.ndarray, cv: Any, seg: Any
) -> dict[str, Any]:
    """Out-of-fold AUC and pooled ``attribution_in_lungs`` of ``est``."""
    scores = np.zeros(len(y))
    per_fold: dict[str, list[dict[str, Any]]] = {c: [] for c in CLASSES}
    statuses, not_scored = [], []
    for tr, te in cv.split(X, y, g):
        clf = clone(est).fit(X[tr], y[tr])
        scores[te] = clf.predict_proba(X[te])[:, list(clf.classes_).index(CLASSES[1])]
        try:
            guard = attribution_in_lungs(clf, X[te], y[te], g[te], segmenter=seg)
        except DataError as exc:  # e.g. every Grad-CAM of the fold is empty
            statuses.append("NOT SCORED")
            not_scored.append(str(exc))
            continue
        statuses.append(guard.status)
        for c in CLASSES:
            if c in guard.numbers["per_class"]:
                per_fold[c].append(guard.numbers["per_class"][c])
        for key in ("skipped_implausible_mask", "skipped_empty_cam"):
            if guard.numbers[key]:
                not_scored.append(f"{key}: {guard.numbers[key]}")
    return {
        "auc": _auc(y, scores, g),
        "attribution": {c: pool_fold_summaries(per_fold[c]) for c in CLASSES},
        "fold_statuses": statuses,
        "not_scored": not_scored,
    }


def make_model(name: str, args: argparse.Namespace) -> CXRClassifier:
    """The unfitted classifier for ``name`` with the run's settings."""
    if name == "hed_vgg16":
        return CXRClassifier(
            "vgg16",
            pretrained=str(Path(args.weights) / HED_FILE),
            module__pretrained_strict=False,
            freeze="backbone",
            input_size=args.vgg_size,
            max_epochs=args.head_epochs,
            lr=1e-3,
            random_state=0,
        )
    if name == "hall2020_cnn":
        kw = {"input_size": args.hall_size} if args.hall_size else {}
        return CXRClassifier.from_recipe(
            "hall2020",
            architecture="hall2020_cnn",
            max_epochs=args.epochs,
            random_state=0,
            **kw,
        )
    raise SystemExit(f"unknown model {name!r}; expected hed_vgg16 or hall2020_cnn")


def run_model(
    name: str, args: argparse.Namespace, X: np.ndarray, y: np.ndarray, g: np.ndarray, seg: Any
) -> dict[str, Any]:
    """Whole images, ``lung_crop`` and lungs hidden for one model."""
    cv = StratifiedGroupKFold(args.folds, shuffle=True, random_state=0)
    base = make_model(name, args)
    out: dict[str, Any] = {}
    for label, est in (
        ("whole", base),
        ("lung_crop", clone(base).set_params(transforms=[LungCrop(seg)])),
    ):
        t0 = time.perf_counter()
        out[label] = cv_with_attribution(est, X, y, g, cv, seg)
        out[label]["seconds"] = round(time.perf_counter() - t0, 1)
        print(f"  {name} {label}: {json.dumps(out[label])}", flush=True)
    t0 = time.perf_counter()
    probe = outside_lungs_probe(
        base, X, y, g, cv, segmenter=seg, reference_auc=out["whole"]["auc"]["value"]
    )
    n = probe.numbers
    out["lungs_hidden"] = {
        "auc": {"value": n["auc"], "ci_low": n["ci_low"], "ci_high": n["ci_high"]},
        "status": probe.status,
        "summary": probe.summary,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(f"  {name} lungs_hidden: {probe.status} {probe.summary}", flush=True)
    return out


def print_table(results: dict[str, Any]) -> None:
    """The side-by-side table of every model."""
    a = CLASSES
    print(
        f"\n| model | images | AUC [95 % CI] | Grad-CAM share in lungs {a[0]} | "
        f"Grad-CAM share in lungs {a[1]} | s |"
    )
    print("|---|---|---|---|---|---:|")
    for model, r in results.items():
        for label in ("whole", "lung_crop", "lungs_hidden"):
            m = r[label]["auc"]
            att = r[label].get("attribution")
            extra = f" {r[label]['status']}" if label == "lungs_hidden" else ""
            cells = [format_share(att[c]) for c in a] if att else ["-", "-"]
            print(
                f"| {model} | {label} | {m['value']:.2f} [{m['ci_low']:.2f}, "
                f"{m['ci_high']:.2f}]{extra} | {cells[0]} | {cells[1]} | "
                f"{r[label]['seconds']:.0f} |"
            )


def load_subset(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """cxr-dev covid and pneumonia images, class-balanced when ``--per-class`` is set."""
    ds = load_dataset("csv", root=args.data).select(list(CLASSES))
    y_all = np.asarray(ds.y).astype(str)
    idx = np.arange(len(y_all))
    if args.per_class:
        rng = np.random.default_rng(0)
        picks = []
        for c in CLASSES:
            have = np.flatnonzero(y_all == c)
            picks.append(rng.choice(have, min(args.per_class, len(have)), replace=False))
        idx = np.sort(np.concatenate(picks))
    X = np.asarray(ds.X, dtype=object)[idx]
    return X, y_all[idx], np.asarray(ds.groups).astype(str)[idx]


def parse_args() -> argparse.Namespace:
    """Command-line options; ``--quick`` shrinks everything for a smoke run."""
    data = os.environ.get("CXRKIT_SHARED_DATA", "")
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--data", default=str(Path(data) / "cxr-dev" / "metadata.csv"))
    ap.add_argument("--weights", default=os.environ.get("CXRKIT_SHARED_WEIGHTS", ""))
    ap.add_argument("--segmenter", required=True, help="folder written by cxrkit train-lungs")
    ap.add_argument("--models", default="hed_vgg16,hall2020_cnn")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=30, help="hall2020_cnn epochs")
    ap.add_argument("--head-epochs", type=int, default=30, help="hed_vgg16 head epochs")
    ap.add_argument("--per-class", type=int, default=74, help="0: every image")
    ap.add_argument("--vgg-size", type=int, default=224)
    ap.add_argument("--hall-size", type=int, default=0, help="0: the network's own size")
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    if args.quick:  # a smoke run: 2 folds, 2 epochs, 16 images per class, small inputs
        args.folds, args.epochs, args.head_epochs, args.per_class = 2, 2, 2, 16
        args.vgg_size = 128
    return args


def main() -> None:
    """Run every model and print the table."""
    args = parse_args()
    header("lung shortcuts on cxr-dev (covid vs pneumonia)")
    print(f"date: {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M UTC}")
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    seg = load_segmenter(args.segmenter)
    X, y, g = load_subset(args)
    print(
        f"{len(y)} images ({', '.join(f'{c} {int((y == c).sum())}' for c in CLASSES)}), "
        f"{len(set(g))} patients, {args.folds} patient-grouped folds; segmenter {args.segmenter}"
    )
    results: dict[str, Any] = {}
    t0 = time.perf_counter()
    for name in args.models.split(","):
        results[name] = run_model(name.strip(), args, X, y, g, seg)
    print_table(results)
    stats = {k: v for k, v in lung_mask_stats().items() if isinstance(v, (int, float, str))}
    print(f"\nmask stats: {json.dumps(stats)}; total {time.perf_counter() - t0:.0f} s")
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "results": results}, indent=2))


if __name__ == "__main__":
    main()

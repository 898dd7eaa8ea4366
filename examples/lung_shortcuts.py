"""Do covid-vs-pneumonia models on cxr-dev need the lungs? Whole images, lung crops, lungs hidden.

Usage::

    cxrkit train-lungs --masks ../shared/data/lung-masks --out lung-segmenter
    python examples/lung_shortcuts.py --data ../shared/data/cxr-dev/metadata.csv \
        --segmenter lung-segmenter --out lung-shortcuts

Class-balanced (74 images per class), patient-grouped 5-fold CV of ``hall2020_cnn``
with whole images, with ``lung_crop`` and with the lungs hidden
(``outside_lungs_probe``); ``attribution_in_lungs`` on each fold's held-out images.
Writes ``results.json`` and ``overlays.png`` (predicted masks on pneumonia and
covid images).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import StratifiedGroupKFold

from cxrkit import CXRClassifier, load_dataset
from cxrkit.errors import DataError
from cxrkit.evaluation.metrics import compute_metrics
from cxrkit.segmentation import load_segmenter, lung_mask_stats, read_images, write_overlays
from cxrkit.transforms import LungCrop
from cxrkit.validity.lungs import attribution_in_lungs, outside_lungs_probe


def _cv_with_attribution(est: Any, X: np.ndarray, y: np.ndarray, g: np.ndarray, cv: Any,
                         seg: Any) -> tuple[np.ndarray, list[dict[str, Any]]]:
    scores = np.zeros(len(y))
    attributions = []
    for tr, te in cv.split(X, y, g):
        clf = clone(est).fit(X[tr], y[tr])
        scores[te] = clf.predict_proba(X[te])[:, list(clf.classes_).index("pneumonia")]
        try:
            guard = attribution_in_lungs(clf, X[te], y[te], g[te], segmenter=seg)
            attributions.append(guard.to_dict())
        except DataError as exc:  # e.g. every Grad-CAM of the fold is empty
            attributions.append({"status": "NOT SCORED", "error": str(exc),
                                 "numbers": {"per_class": {}}})
    return scores, attributions


def _auc(y: np.ndarray, s: np.ndarray, g: np.ndarray) -> dict[str, float]:
    m = compute_metrics(y, s, positive_label="pneumonia", groups=g, n_bootstraps=1000)["auc"]
    return {k: round(float(m[k]), 4) for k in ("value", "ci_low", "ci_high")}


def _summarise(attributions: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label in ("covid", "pneumonia"):
        rows = [a["numbers"]["per_class"][label] for a in attributions
                if label in a["numbers"]["per_class"]]
        if not rows:
            out[label] = {"not_scored": [a.get("error", "") for a in attributions][:1]}
            continue
        out[label] = {"share_in_lungs_mean_over_folds": round(float(np.mean(
            [r["share_in_lungs"] for r in rows])), 4),
            "lung_area_share": round(float(np.mean([r["lung_area_share"] for r in rows])), 4),
            "fold_statuses": [a["status"] for a in attributions]}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True)
    p.add_argument("--segmenter", required=True)
    p.add_argument("--out", default="lung-shortcuts")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--per-class", type=int, default=74)
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    seg = load_segmenter(args.segmenter)
    ds = load_dataset("csv", root=args.data).select(["covid", "pneumonia"])
    rng = np.random.default_rng(0)
    y_all = np.asarray(ds.y).astype(str)
    idx = np.sort(np.concatenate([rng.choice(np.flatnonzero(y_all == c), args.per_class,
                                             replace=False) for c in ("covid", "pneumonia")]))
    X = np.asarray(ds.X, dtype=object)[idx]
    y, g = y_all[idx], np.asarray(ds.groups).astype(str)[idx]
    cv = StratifiedGroupKFold(5, shuffle=True, random_state=0)
    base = CXRClassifier.from_recipe("hall2020", architecture="hall2020_cnn",
                                     max_epochs=args.epochs, random_state=0)
    results: dict[str, Any] = {"n_images": len(y), "n_patients": len(set(g)),
                               "epochs": args.epochs}
    t0 = time.perf_counter()
    s_whole, att_whole = _cv_with_attribution(base, X, y, g, cv, seg)
    results["whole"] = {"auc": _auc(y, s_whole, g), "attribution": _summarise(att_whole)}
    print("whole", results["whole"], flush=True)
    crop = clone(base).set_params(transforms=[LungCrop(seg)])
    s_crop, att_crop = _cv_with_attribution(crop, X, y, g, cv, seg)
    results["lung_crop"] = {"auc": _auc(y, s_crop, g), "attribution": _summarise(att_crop)}
    print("lung_crop", results["lung_crop"], flush=True)
    probe = outside_lungs_probe(base, X, y, g, cv, segmenter=seg,
                                reference_auc=results["whole"]["auc"]["value"])
    results["outside_lungs_probe"] = probe.to_dict()
    print("outside_lungs_probe", probe.status, probe.summary, flush=True)
    results["mask_stats"] = lung_mask_stats()
    results["seconds"] = round(time.perf_counter() - t0, 1)
    (out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    pick = list(np.flatnonzero(y == "pneumonia")[:8]) + list(np.flatnonzero(y == "covid")[:4])
    images = read_images(X[pick])
    masks = [r.mask for r in seg.segment(images)]
    write_overlays(images, [None] * len(pick), masks,
                   [f"{y[i]} {Path(str(X[i])).stem[:18]}" for i in pick], out / "overlays.png",
                   heading="predicted lung masks (red)")
    print(json.dumps(results["mask_stats"]), f"{results['seconds']:.0f} s")


if __name__ == "__main__":
    main()

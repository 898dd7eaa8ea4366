"""B2 companion: does ONNX Runtime int8 change the AUC on real data by < 0.005?

cxr-dev covid vs pneumonia (AUC of P(pneumonia)), one patient-grouped hold-out split
(GroupShuffleSplit, 40 % of patients held out, seed 0). Two trained models:

1. VGG16-HED: the frozen VGG16 backbone with real pretrained weights
   (shared/weights/vgg16_features_from_hed_bsds500.pth) at 224 px, global average
   pooling and the ``fc`` head, whose weights are a standardised L2 logistic regression
   fitted on the training images' pooled features (C picked by patient-grouped 5-fold
   CV on the training images only) and folded into the fc layer.
2. Hall et al. (2020): the published small-CNN snapshot ensemble (seven Keras files,
   imported; members averaged in probability). Its sigmoid output is P(pneumonia).
   It was trained by its authors on a copy of the same public collection, so its
   AUC here is not a held-out estimate; it is a real trained model for the int8 check.

For each: AUC of torch fp32 vs ONNX Runtime fp32 vs int8 recipes (calibrated on
training images only), the AUC change, and max / median |p - p_torch| on the held-out
images. Torch and ONNX Runtime use one thread (the speed is measured by b2_inference.py).

Run:  PYTHONPATH=src python benchmarks/b2_auc_check.py [SHARED_DATA_DIR SHARED_WEIGHTS_DIR]
      (default: $CXRKIT_SHARED_DATA and $CXRKIT_SHARED_WEIGHTS)
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold, GroupShuffleSplit
from sklearn.preprocessing import StandardScaler

from cxrkit.architectures import create_architecture
from cxrkit.architectures._hall2020 import HALL2020_PREPROCESSING
from cxrkit.estimators import CXRClassifier
from cxrkit.estimators._onnx import INT8_DEFAULTS, OnnxRuntimePredictor
from cxrkit.importers import HALL2020_CLASSES, load_hall2020_networks

N_CALIBRATION = 128
#: (label, OnnxRuntimePredictor keyword arguments, number of calibration images)
RECIPES: list[tuple[str, dict[str, Any], int]] = [
    ("int8 default recipe", {}, N_CALIBRATION),
    ("int8 old recipe (minmax, all layers int8, 32 calib)", {"fp32_layers": ()}, 32),
    (
        "int8 minmax, fp32_layers=(first_conv, head)",
        {"fp32_layers": ("first_conv", "head")},
        N_CALIBRATION,
    ),
    (
        "int8 percentile 99.999, fp32_layers=(first_conv, head)",
        {"calibrate_method": "percentile", "fp32_layers": ("first_conv", "head")},
        N_CALIBRATION,
    ),
]


def report(label: str, pos: np.ndarray, p: np.ndarray, p_torch: np.ndarray, auc0: float) -> None:
    a = roc_auc_score(pos, p)
    d = np.abs(p - p_torch)
    verdict = (
        ""
        if label.startswith("torch")
        else ("  PASS (< 0.005)" if abs(a - auc0) < 0.005 else "  FAIL (>= 0.005)")
    )
    print(
        f"  {label:55s} AUC {a:.4f}  change {a - auc0:+.4f}  max|dp| {d.max():.4f}  "
        f"median|dp| {np.median(d):.5f}{verdict}",
        flush=True,
    )


def check(
    name: str,
    members: list[CXRClassifier],
    X_te: np.ndarray,
    pos: np.ndarray,
    calib: np.ndarray,
    p_torch: np.ndarray,
    recipes: list[tuple[str, dict[str, Any], int]],
    with_fp32: bool = True,
) -> None:
    auc0 = roc_auc_score(pos, p_torch)
    print(f"{name}: {len(X_te)} held-out images ({int(pos.sum())} pneumonia)")
    report("torch fp32", pos, p_torch, p_torch, auc0)
    for label, kw, n_cal in [("ONNX Runtime fp32", {}, 0)] * with_fp32 + recipes:
        t0 = time.perf_counter()
        quant = "int8" if label.startswith("int8") else None
        p = np.mean(
            [
                OnnxRuntimePredictor(
                    m, quantize=quant, calibration=calib[:n_cal], threads=1, **kw
                ).predict_proba(X_te)[:, 1]
                for m in members
            ],
            axis=0,
        )
        report(f"{label} [{time.perf_counter() - t0:.0f} s]", pos, p, p_torch, auc0)


def vgg16_hed(
    weights: Path,
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    tr: np.ndarray,
    te: np.ndarray,
    features_cache: str | None,
) -> tuple[CXRClassifier, np.ndarray]:
    """The trained VGG16-HED classifier and its torch fp32 P(pneumonia) on ``X[te]``."""
    torch.manual_seed(0)
    net = create_architecture(
        "vgg16",
        pretrained=str(weights / "vgg16_features_from_hed_bsds500.pth"),
        head="fc",
        freeze="all_but_last",
        pretrained_strict=False,
    ).eval()
    clf = CXRClassifier.from_module(net, ["covid", "pneumonia"])
    t0 = time.perf_counter()
    if features_cache and os.path.exists(features_cache):
        F = np.load(features_cache)
    else:
        with torch.inference_mode():
            F = np.concatenate(
                [net.features(xb).numpy() for xb in clf.iter_batches(clf.check_predict_input(X))]
            )
        if features_cache:
            np.save(features_cache, F)
    pos = y == "pneumonia"
    sc = StandardScaler().fit(F[tr])
    Z = sc.transform(F[tr])
    cv = list(GroupKFold(5).split(Z, pos[tr], groups[tr]))
    cs = [1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 1.0]
    cv_auc = [
        np.mean(
            [
                roc_auc_score(
                    pos[tr][v],
                    LogisticRegression(C=c, max_iter=5000)
                    .fit(Z[f], pos[tr][f])
                    .decision_function(Z[v]),
                )
                for f, v in cv
            ]
        )
        for c in cs
    ]
    c = cs[int(np.argmax(cv_auc))]
    lr = LogisticRegression(C=c, max_iter=5000).fit(Z, pos[tr])
    w = lr.coef_[0] / sc.scale_
    b = lr.intercept_[0] - float(np.sum(lr.coef_[0] * sc.mean_ / sc.scale_))
    fc = net.head.fc  # logit = (w1 - w0) . x + (b1 - b0)
    with torch.no_grad():
        fc.weight.zero_()
        fc.bias.zero_()
        fc.weight[1] = torch.as_tensor(w, dtype=torch.float32)
        fc.bias[1] = float(b)
    with torch.inference_mode():
        p_torch = torch.sigmoid(net.forward_head(torch.from_numpy(F[te]))).double().numpy()
    # forward_head on the pooled features is the network's own forward; check on a few images.
    np.testing.assert_allclose(clf.predict_proba(X[te][:8])[:, 1], p_torch[:8], atol=1e-5)
    print(
        f"VGG16-HED 224 px: features of {len(X)} images + logistic head (C={c}, grouped "
        f"5-fold CV AUC on the training images {max(cv_auc):.3f}) in "
        f"{time.perf_counter() - t0:.0f} s"
    )
    return clf, p_torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", nargs="?", default=os.environ.get("CXRKIT_SHARED_DATA", ""))
    ap.add_argument("weights", nargs="?", default=os.environ.get("CXRKIT_SHARED_WEIGHTS", ""))
    ap.add_argument(
        "--default-only",
        action="store_true",
        help="only the default int8 recipe (not the alternatives)",
    )
    ap.add_argument("--features-cache", help="reuse/save the VGG16 pooled features (.npy)")
    args = ap.parse_args()
    if not (args.data and args.weights):
        ap.error(
            "usage: b2_auc_check.py SHARED_DATA_DIR SHARED_WEIGHTS_DIR "
            "(or set CXRKIT_SHARED_DATA and CXRKIT_SHARED_WEIGHTS)"
        )
    torch.set_num_threads(1)
    data, weights = Path(args.data), Path(args.weights)
    meta = pd.read_csv(data / "cxr-dev" / "metadata.csv")
    meta = meta[meta.label.isin(["covid", "pneumonia"])]
    X = np.array([str(data / "cxr-dev" / p) for p in meta.image])
    y = meta.label.to_numpy()
    groups = meta.patient_id.to_numpy()
    tr, te = next(GroupShuffleSplit(1, test_size=0.4, random_state=0).split(X, y, groups))
    calib = X[tr][np.random.default_rng(0).permutation(len(tr))]  # training images only
    pos = y[te] == "pneumonia"
    recipes = RECIPES[:1] if args.default_only else RECIPES
    print(f"int8 default recipe: {INT8_DEFAULTS}, {N_CALIBRATION} calibration images\n")

    clf, p_torch = vgg16_hed(weights, X, y, groups, tr, te, args.features_cache)
    check("VGG16-HED + logistic fc head", [clf], X[te], pos, calib, p_torch, recipes)

    nets, _ = load_hall2020_networks(weights / "hall2020-usf-small-cnn")
    members = [
        CXRClassifier.from_module(n, list(HALL2020_CLASSES), preprocessing=HALL2020_PREPROCESSING)
        for n in nets
    ]
    p_torch = np.mean([m.predict_proba(X[te])[:, 1] for m in members], axis=0)
    print()
    check(
        "Hall et al. 2020 published small CNN, 7-snapshot ensemble",
        members,
        X[te],
        pos,
        calib,
        p_torch,
        recipes,
    )


if __name__ == "__main__":
    main()

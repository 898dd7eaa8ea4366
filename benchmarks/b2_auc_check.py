"""B2 companion: does ONNX Runtime int8 change the AUC on real data by < 0.005?

cxr-dev covid vs pneumonia, patient-grouped hold-out split; a frozen VGG16 backbone with
real pretrained weights (shared/weights/vgg16_features_from_hed_bsds500.pth) at 112 px
(to fit the time budget) with a trained ``fc`` head; AUC of torch fp32 vs ONNX Runtime
fp32 vs int8 (calibrated on 32 training images) on the held-out images.

Run:  PYTHONPATH=src python benchmarks/b2_auc_check.py /work/shared/data /work/shared/weights
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupShuffleSplit

from cxrkit.estimators import CXRClassifier
from cxrkit.estimators._onnx import OnnxRuntimePredictor


def main() -> None:
    import os

    args = sys.argv[1:] or [os.environ.get("CXRKIT_SHARED_DATA", ""),
                            os.environ.get("CXRKIT_SHARED_WEIGHTS", "")]
    if len(args) != 2 or not all(args):
        sys.exit("usage: b2_auc_check.py SHARED_DATA_DIR SHARED_WEIGHTS_DIR "
                 "(or set CXRKIT_SHARED_DATA and CXRKIT_SHARED_WEIGHTS)")
    data, weights = Path(args[0]), Path(args[1])
    meta = pd.read_csv(data / "cxr-dev" / "metadata.csv")
    meta = meta[meta.label.isin(["covid", "pneumonia"])]
    X = np.array([str(data / "cxr-dev" / p) for p in meta.image])
    y = meta.label.to_numpy()
    tr, te = next(GroupShuffleSplit(1, test_size=0.4, random_state=0)
                  .split(X, y, meta.patient_id))
    clf = CXRClassifier("vgg16", pretrained=str(weights / "vgg16_features_from_hed_bsds500.pth"),
                        module__pretrained_strict=False, head="fc", freeze="all_but_last",
                        input_size=112, optimizer="sgd", optimizer__momentum=0.9, lr=1e-2,
                        batch_size=16, max_epochs=100, random_state=0)
    t0 = time.perf_counter()
    clf.fit(X[tr], y[tr])
    print(f"trained on {len(tr)} images in {time.perf_counter() - t0:.0f} s; "
          f"testing on {len(te)} ({(y[te] == 'pneumonia').sum()} pneumonia)")
    pos = y[te] == clf.classes_[1]
    p_torch = clf.predict_proba(X[te])[:, 1]
    auc = roc_auc_score(pos, p_torch)
    print(f"torch fp32 AUC {auc:.4f}")
    for quant in (None, "int8"):
        pred = OnnxRuntimePredictor(clf, quantize=quant, calibration=X[tr][:32])
        p = pred.predict_proba(X[te])[:, 1]
        a = roc_auc_score(pos, p)
        print(f"ONNX Runtime {quant or 'fp32'} AUC {a:.4f} (change {a - auc:+.4f}); "
              f"max |p - p_torch| {np.abs(p - p_torch).max():.4f}")


if __name__ == "__main__":
    main()

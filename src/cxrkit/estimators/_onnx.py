"""Optional ONNX Runtime inference for a fitted :class:`CXRClassifier`.

Measured on the 2-core development VM (benchmarks/b2_inference.py, ResNet-101, 224 px,
preloaded tensors, same run): torch eager fp32 1.00x, torch channels-last 1.20x,
ONNX Runtime fp32 2.4x, ONNX Runtime int8 (static, QDQ, per-channel) 4.2-5.4x. fp32 gives the
same probabilities as torch up to float rounding; int8 changes them, and on the real-data
check (benchmarks/b2_auc_check.py) it moved the AUC by -0.10 (a weak model with nearly
constant outputs, but a fail), so int8 is opt-in and not validated. Needs ``pip install onnxruntime onnx``.
"""

from __future__ import annotations

import copy
import os
import tempfile
from typing import Any

import numpy as np
import torch

from ..errors import ConfigurationError

__all__ = ["OnnxRuntimePredictor"]


def _require_ort() -> Any:
    try:
        import onnxruntime as ort
    except ImportError:
        raise ConfigurationError(
            "OnnxRuntimePredictor needs ONNX Runtime, which is not installed. Install it with "
            "`pip install onnxruntime onnx` (or `pip install cxrkit[onnx]`)."
        ) from None
    return ort


class OnnxRuntimePredictor:
    """Predict with a fitted :class:`CXRClassifier`'s network exported to ONNX Runtime.

    The classifier's own streaming pipeline (threaded decoding, batches) feeds it.

    Parameters
    ----------
    clf : CXRClassifier
        A fitted classifier.
    quantize : {None, "int8"}, default=None
        ``"int8"``: static quantisation (QDQ, per-channel weights) calibrated on
        ``calibration`` images.
    calibration : images, optional
        Required with ``quantize="int8"``: a few dozen representative images
        (anything ``clf.predict_proba`` accepts).
    threads : int, optional
        Intra-op threads (default: ``torch.get_num_threads()``).
    """

    def __init__(self, clf: Any, *, quantize: str | None = None, calibration: Any = None,
                 threads: int | None = None) -> None:
        ort = _require_ort()
        if quantize not in (None, "int8"):
            raise ConfigurationError(f"quantize must be None or 'int8'; got {quantize!r}.")
        if quantize == "int8" and calibration is None:
            raise ConfigurationError("quantize='int8' needs calibration images; pass "
                                     "calibration=X_train[:64] (or similar).")
        self.clf = clf
        self.classes_ = clf.classes_
        self._dir = tempfile.mkdtemp(prefix="cxrkit-onnx-")
        path = os.path.join(self._dir, "model.onnx")
        module = copy.deepcopy(clf.module_).to("cpu", memory_format=torch.contiguous_format).eval()
        size = clf.preprocessing_.input_size
        dummy = torch.zeros(1, clf.preprocessing_.channels, size, size)
        torch.onnx.export(module, (dummy,), path, dynamo=False, input_names=["x"],
                          output_names=["logit"], opset_version=17,
                          dynamic_axes={"x": {0: "n"}, "logit": {0: "n"}})
        if quantize == "int8":
            path = self._quantize(path, calibration)
        so = ort.SessionOptions()
        so.intra_op_num_threads = int(threads or torch.get_num_threads())
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session_ = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        self.quantize = quantize

    def _quantize(self, path: str, calibration: Any) -> str:
        try:
            from onnxruntime.quantization import (
                CalibrationDataReader,
                QuantFormat,
                QuantType,
                quantize_static,
            )
            from onnxruntime.quantization.shape_inference import quant_pre_process
        except ImportError as exc:
            raise ConfigurationError(f"int8 quantisation needs the 'onnx' package ({exc}); "
                                     "install it with `pip install onnx`.") from None
        src = self.clf._check_predict_input(calibration)
        batches = [{"x": xb.numpy()} for xb in self.clf.iter_batches(src)]

        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self.it = iter(batches)

            def get_next(self) -> Any:
                return next(self.it, None)

        pre = os.path.join(self._dir, "model.pre.onnx")
        out = os.path.join(self._dir, "model.int8.onnx")
        quant_pre_process(path, pre)
        quantize_static(pre, out, Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        per_channel=True)
        return out

    def decision_function(self, X: Any) -> np.ndarray:
        """Logit of ``classes_[1]``, shape ``(n,)``."""
        src = self.clf._check_predict_input(X)
        outs = [self.session_.run(None, {"x": xb.numpy()})[0].reshape(-1)
                for xb in self.clf.iter_batches(src)]
        return np.concatenate(outs).astype(np.float64)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities ``(n, 2)`` in ``classes_`` order."""
        p1 = 1.0 / (1.0 + np.exp(-self.decision_function(X)))
        return np.column_stack([1.0 - p1, p1])

    def predict(self, X: Any) -> np.ndarray:
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]

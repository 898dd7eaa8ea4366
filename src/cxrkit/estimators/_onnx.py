"""Optional ONNX Runtime inference for a fitted :class:`CXRClassifier`.

Measured on the 2-core development VM, quiet (benchmarks/b2_inference.py, ResNet-101
random init, 224 px, 64 images, median of 2): torch eager fp32 on preloaded tensors 445
images/min (1.00x), cxrkit torch end to end from PNG files 511 (1.15x), ONNX Runtime fp32
end to end 699 (1.57x), ONNX Runtime int8 with the default recipe end to end 1,119 (2.51x).
fp32 gives the same probabilities as torch up to float rounding; int8 (static
quantisation, QDQ, per-channel int8 weights) changes them. The int8 defaults
(:data:`INT8_DEFAULTS`: MinMax calibration; the first convolution, the last convolution
and the head kept in fp32; calibrate on ~128 real training images) passed the real-data
check (benchmarks/b2_auc_check.py, cxr-dev covid vs pneumonia, 202 patient-grouped
held-out images): AUC change +0.0005 for a trained VGG16-HED + logistic head (AUC
0.679), where quantising every layer changed it by -0.14 and keeping only the first
convolution and the head in fp32 by -0.023. A few single probabilities still move a lot
(max |p - p_torch| 0.27 for VGG16): check your own held-out AUC. Quantising the first
convolution as well is ~4 % faster but changed the VGG16 AUC by -0.17. Max-pools that feed a
quantised layer run on 8-bit integers, channels-last (:func:`_quantize_before_max_pools`:
the same bytes, ~5 % of a ResNet-101's time saved). Needs ``pip install onnxruntime onnx``.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
import warnings
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from scipy.special import expit

from ..errors import ConfigurationError
from ._onnx_maxpool import quantize_before_max_pools as _quantize_before_max_pools

__all__ = ["INT8_DEFAULTS", "OnnxRuntimePredictor", "export_onnx", "quantize_onnx_int8"]

#: Default int8 recipe of :class:`OnnxRuntimePredictor` and :func:`quantize_onnx_int8`.
INT8_DEFAULTS: dict[str, Any] = {
    "calibrate_method": "minmax",
    "percentile": 99.999,
    "fp32_layers": ("first_conv", "last_conv", "head"),
    "activation_type": "uint8",
    "activation_symmetric": False,
    "reduce_range": False,
}

_CALIBRATE_METHODS = ("minmax", "percentile", "entropy")
_FP32_LAYERS = ("first_conv", "last_conv", "head")
_ACTIVATION_TYPES = ("uint8", "int8")


def _require_ort() -> Any:
    try:
        import onnxruntime as ort
    except ImportError:
        raise ConfigurationError(
            "OnnxRuntimePredictor needs ONNX Runtime, which is not installed. Install it with "
            "`pip install onnxruntime onnx` (or `pip install cxrkit[onnx]`)."
        ) from None
    return ort


def export_onnx(module: torch.nn.Module, path: str, input_size: int, channels: int = 3) -> str:
    """Export a network (one logit per image) to ONNX with a dynamic batch axis.

    Parameters
    ----------
    module : torch.nn.Module
        Maps ``(N, channels, input_size, input_size)`` to ``(N,)`` logits; exported in
        eval mode on the CPU (the module itself is not changed).
    path : str
        Output ``.onnx`` file.
    input_size : int
    channels : int, default=3

    Returns
    -------
    str
        ``path``; the graph's input is ``"x"``, its output ``"logit"`` (opset 17).
    """
    module = copy.deepcopy(module).to("cpu")
    module = module.to(memory_format=torch.contiguous_format).eval()
    dummy = torch.zeros(1, channels, input_size, input_size)
    with warnings.catch_warnings():
        # Python branches on the image size: the graph's size is fixed, only the batch varies.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            module,
            (dummy,),
            path,
            dynamo=False,
            input_names=["x"],
            output_names=["logit"],
            opset_version=17,
            dynamic_axes={"x": {0: "n"}, "logit": {0: "n"}},
        )
    return path


def _check_int8_options(
    calibrate_method: str, percentile: float, fp32_layers: Sequence[str], activation_type: str
) -> None:
    if calibrate_method not in _CALIBRATE_METHODS:
        raise ConfigurationError(
            f"calibrate_method must be one of {_CALIBRATE_METHODS}; got {calibrate_method!r}."
        )
    if not 0 < float(percentile) <= 100:
        raise ConfigurationError(f"percentile must be in (0, 100]; got {percentile!r}.")
    if isinstance(fp32_layers, str) or any(k not in _FP32_LAYERS for k in fp32_layers):
        raise ConfigurationError(
            f"fp32_layers must be a sequence of names from {_FP32_LAYERS} "
            f"(e.g. ('first_conv', 'head') or ()); got {fp32_layers!r}."
        )
    if activation_type not in _ACTIVATION_TYPES:
        raise ConfigurationError(
            f"activation_type must be one of {_ACTIVATION_TYPES}; got {activation_type!r}."
        )


_HEAD_OPS = {
    "GlobalAveragePool",
    "GlobalMaxPool",
    "ReduceMean",
    "Flatten",
    "Reshape",
    "Gemm",
    "MatMul",
}


def _fp32_node_names(model: Any, fp32_layers: Sequence[str]) -> list[str]:
    """Names of the nodes to leave in fp32 (the graph is topologically sorted)."""
    nodes = list(model.graph.node)
    convs = [i for i, n in enumerate(nodes) if n.op_type == "Conv"]
    keep: set[int] = set()
    if convs and "first_conv" in fp32_layers:
        keep.add(convs[0])
    after = convs[-1] + 1 if convs else 0
    if convs and "last_conv" in fp32_layers:
        keep.update(range(convs[-1], len(nodes)))
    if "head" in fp32_layers:
        start = next(
            (i for i in range(after, len(nodes)) if nodes[i].op_type in _HEAD_OPS), len(nodes)
        )
        keep.update(range(start, len(nodes)))
    return [nodes[i].name for i in sorted(keep)]


def quantize_onnx_int8(
    src: str,
    dst: str,
    calibration: Iterable[np.ndarray],
    *,
    calibrate_method: str = INT8_DEFAULTS["calibrate_method"],
    percentile: float = INT8_DEFAULTS["percentile"],
    fp32_layers: Sequence[str] = INT8_DEFAULTS["fp32_layers"],
    activation_type: str = INT8_DEFAULTS["activation_type"],
    activation_symmetric: bool = INT8_DEFAULTS["activation_symmetric"],
    reduce_range: bool = INT8_DEFAULTS["reduce_range"],
) -> str:
    """Quantise statically to int8 (QDQ, per-channel int8 weights) of an exported network.

    Parameters
    ----------
    src : str
        fp32 model from :func:`export_onnx` (input ``"x"``).
    dst : str
        Output file; ``dst + ".pre.onnx"`` is written too (shape-inferred copy).
    calibration : iterable of ndarray
        Batches ``(n, C, H, W)`` of preprocessed, representative (real, training)
        images; 64-128 images are plenty.
    calibrate_method : {"minmax", "percentile", "entropy"}, default="minmax"
        How activation ranges are set from the calibration data.
    percentile : float, default=99.999
        Range percentile for ``calibrate_method="percentile"``.
    fp32_layers : sequence of {"first_conv", "last_conv", "head"}, default=("first_conv", "last_conv", "head")
        Layers left in fp32: ``"first_conv"`` the first convolution (it sees the raw
        normalised image); ``"last_conv"`` the last convolution and every node after
        it (so the pooled features are not rounded to 8 bits); ``"head"`` the pooling,
        flatten and fully connected layers after the last convolution (they decide
        the logit). ``()`` quantises everything. Each costs little speed in
        ResNet-101 (measured in benchmarks/b2_inference.py).
    activation_type : {"uint8", "int8"}, default="uint8"
        Activation data type.
    activation_symmetric : bool, default=False
        Symmetric activation ranges (zero point 0 / 128).
    reduce_range : bool, default=False
        7-bit weights (for old CPUs without VNNI, avoids int16 saturation).

    Returns
    -------
    str
        ``dst``.

    Notes
    -----
    Max-pools that feed a quantised layer are rewritten to ONNX Runtime's channels-last
    8-bit ``com.microsoft.NhwcMaxPool`` (same outputs, faster), so the written model is
    for ONNX Runtime's CPU execution provider.
    """
    _check_int8_options(calibrate_method, percentile, fp32_layers, activation_type)
    try:
        import onnx
        from onnxruntime.quantization import (
            CalibrationDataReader,
            CalibrationMethod,
            QuantFormat,
            QuantType,
            quantize_static,
        )
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:
        raise ConfigurationError(
            f"int8 quantisation needs the 'onnx' package ({exc}); "
            "install it with `pip install onnx`."
        ) from None
    batches = [{"x": np.ascontiguousarray(b, dtype=np.float32)} for b in calibration]
    if not batches:
        raise ConfigurationError("int8 quantisation needs at least one calibration batch.")

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter(batches)

        def get_next(self) -> Any:
            return next(self.it, None)

    pre = dst + ".pre.onnx"
    quant_pre_process(src, pre)
    model = onnx.load(pre)
    for i, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"{node.op_type}_{i}"
    onnx.save(model, pre)
    method = {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }[calibrate_method]
    extra: dict[str, Any] = {"ActivationSymmetric": bool(activation_symmetric)}
    if calibrate_method == "percentile":
        extra["CalibPercentile"] = float(percentile)
    act = QuantType.QUInt8 if activation_type == "uint8" else QuantType.QInt8
    quantize_static(
        pre,
        dst,
        Reader(),
        quant_format=QuantFormat.QDQ,
        activation_type=act,
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=bool(reduce_range),
        nodes_to_exclude=_fp32_node_names(model, fp32_layers),
        calibrate_method=method,
        extra_options=extra,
    )
    quantized = onnx.load(dst)
    if _quantize_before_max_pools(quantized):
        onnx.save(quantized, dst)
    return dst


class OnnxRuntimePredictor:
    """Predict with a fitted :class:`CXRClassifier`'s network exported to ONNX Runtime.

    The classifier's own streaming pipeline (threaded decoding, batches) feeds it.

    Parameters
    ----------
    clf : CXRClassifier
        A fitted classifier.
    quantize : {None, "int8"}, default=None
        ``"int8"``: static quantisation (QDQ, per-channel int8 weights) calibrated on
        ``calibration`` images, see :func:`quantize_onnx_int8`. It changes the
        probabilities: check the AUC on your own held-out data.
    calibration : images, optional
        Required with ``quantize="int8"``: 64-128 real training images
        (anything ``clf.predict_proba`` accepts).
    threads : int, optional
        Intra-op threads (default: ``torch.get_num_threads()``).
    allow_spinning : bool, default=False
        ONNX Runtime's ``session.intra_op.allow_spinning``: whether idle intra-op
        threads busy-wait for the next piece of work (ONNX Runtime's own default)
        instead of sleeping. Off by default because here the next batch is decoded
        while the network runs: spinning threads take the cores the decoding
        threads need and stall the parallel operators they share. Measured
        (``benchmarks/b2_overlap.py``, int8 ResNet-101, 2 cores, end to end from
        PNG files): 942 vs 915, 989 vs 847 and 1,054 vs 988 images/minute without
        and with spinning in three runs; on preloaded batches, with nothing to
        overlap, the two were within noise (1,036 vs 998, 970 vs 1,011, 1,029 vs
        1,065).
    calibrate_method : {"minmax", "percentile", "entropy"}, default="minmax"
        int8 only: how activation ranges are set.
    percentile : float, default=99.999
        int8 with ``calibrate_method="percentile"`` only.
    fp32_layers : sequence of {"first_conv", "last_conv", "head"}, default=("first_conv", "last_conv", "head")
        int8 only: layers kept in fp32 (``()`` quantises everything).
    activation_type : {"uint8", "int8"}, default="uint8"
        int8 only.
    activation_symmetric : bool, default=False
        int8 only: symmetric activation ranges.
    reduce_range : bool, default=False
        int8 only: 7-bit weights.

    Attributes
    ----------
    session_ : onnxruntime.InferenceSession
    model_path_ : str
        The ONNX file the session runs (a temporary folder).
    int8_options_ : dict
        The int8 recipe (used only with ``quantize="int8"``).
    classes_ : ndarray of shape (2,)
    """

    def __init__(
        self,
        clf: Any,
        *,
        quantize: str | None = None,
        calibration: Any = None,
        threads: int | None = None,
        allow_spinning: bool = False,
        calibrate_method: str = INT8_DEFAULTS["calibrate_method"],
        percentile: float = INT8_DEFAULTS["percentile"],
        fp32_layers: Sequence[str] = INT8_DEFAULTS["fp32_layers"],
        activation_type: str = INT8_DEFAULTS["activation_type"],
        activation_symmetric: bool = INT8_DEFAULTS["activation_symmetric"],
        reduce_range: bool = INT8_DEFAULTS["reduce_range"],
    ) -> None:
        ort = _require_ort()
        if quantize not in (None, "int8"):
            raise ConfigurationError(f"quantize must be None or 'int8'; got {quantize!r}.")
        if quantize == "int8" and calibration is None:
            raise ConfigurationError(
                "quantize='int8' needs calibration images; pass "
                "calibration=X_train[:64] (or similar)."
            )
        _check_int8_options(calibrate_method, percentile, fp32_layers, activation_type)
        task = getattr(clf, "task_", "binary")
        if task != "binary":
            raise ConfigurationError(
                f"OnnxRuntimePredictor serves binary classifiers; this one is {task} "
                f"({', '.join(clf.labels_)}). Predict with the estimator itself "
                "(predict_proba), which handles every task."
            )
        self.clf = clf
        self.classes_ = clf.classes_
        self.quantize = quantize
        self.int8_options_: dict[str, Any] = {
            "calibrate_method": calibrate_method,
            "percentile": percentile,
            "fp32_layers": tuple(fp32_layers),
            "activation_type": activation_type,
            "activation_symmetric": activation_symmetric,
            "reduce_range": reduce_range,
        }
        self._dir = tempfile.mkdtemp(prefix="cxrkit-onnx-")
        weakref.finalize(self, shutil.rmtree, self._dir, True)
        prep = clf.preprocessing_
        path = export_onnx(
            clf.module_, os.path.join(self._dir, "model.onnx"), prep.input_size, prep.channels
        )
        if quantize == "int8":
            src = clf.check_predict_input(calibration)
            batches = (xb.numpy() for xb in clf.iter_batches(src))
            path = quantize_onnx_int8(
                path, os.path.join(self._dir, "model.int8.onnx"), batches, **self.int8_options_
            )
        so = ort.SessionOptions()
        so.intra_op_num_threads = int(threads or torch.get_num_threads())
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.add_session_config_entry(
            "session.intra_op.allow_spinning", "1" if allow_spinning else "0"
        )
        self.allow_spinning = bool(allow_spinning)
        self.model_path_ = path
        self.session_ = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])

    def decision_function(self, X: Any) -> np.ndarray:
        """Logit of ``classes_[1]``, shape ``(n,)``."""
        src = self.clf.check_predict_input(X)
        outs = [
            self.session_.run(None, {"x": xb.numpy()})[0].reshape(-1)
            for xb in self.clf.iter_batches(src)
        ]
        return np.concatenate(outs).astype(np.float64)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Probabilities ``(n, 2)`` in ``classes_`` order."""
        p1 = expit(self.decision_function(X))  # no overflow warning for large logits
        return np.column_stack([1.0 - p1, p1])

    def predict(self, X: Any) -> np.ndarray:
        """Return the label with the larger probability (threshold 0.5)."""
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]

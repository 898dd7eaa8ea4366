"""ONNX Runtime variants for B2 (optional: needs ``pip install onnxruntime onnx``)."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import onnxruntime as ort
import torch


def export(net: torch.nn.Module, path: str) -> None:
    net.eval()
    torch.onnx.export(net, (torch.randn(1, 3, 224, 224),), path, dynamo=False,
                      input_names=["x"], output_names=["logit"], opset_version=17,
                      dynamic_axes={"x": {0: "n"}, "logit": {0: "n"}})


def session(path: str) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = torch.get_num_threads()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


def quantize_int8(src: str, dst: str, calib: np.ndarray) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter([{"x": calib[i:i + 8]} for i in range(0, len(calib), 8)])

        def get_next(self):  # type: ignore[no-untyped-def]
            return next(self.it, None)

    pre = dst + ".pre.onnx"
    quant_pre_process(src, pre)
    quantize_static(pre, dst, Reader(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    per_channel=True)


def onnx_variants(net: torch.nn.Module, x: torch.Tensor, n: int):  # type: ignore[no-untyped-def]
    tmp = tempfile.mkdtemp()
    fp32 = os.path.join(tmp, "m.onnx")
    export(net, fp32)
    xs = x.numpy()
    out = []
    s32 = session(fp32)

    def run(sess: ort.InferenceSession):  # type: ignore[no-untyped-def]
        def go() -> None:
            for s in range(0, n, 16):
                sess.run(None, {"x": xs[s:s + 16]})
        return go

    out.append(("ONNX Runtime fp32, preloaded", run(s32)))
    try:
        int8 = os.path.join(tmp, "m.int8.onnx")
        quantize_int8(fp32, int8, xs[:16])
        out.append(("ONNX Runtime int8 static QDQ, preloaded", run(session(int8))))
    except ImportError as exc:
        print(f"int8 quantisation not tried: {exc}")
    return out

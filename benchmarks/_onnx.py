"""ONNX Runtime variants for B2 (optional: needs ``pip install onnxruntime onnx``).

Export and int8 quantisation are cxrkit's own (:func:`cxrkit.estimators._onnx.export_onnx`,
:func:`~cxrkit.estimators._onnx.quantize_onnx_int8`), so the figures are those of
``OnnxRuntimePredictor``'s recipe.
"""

from __future__ import annotations

import os
import tempfile

import onnxruntime as ort
import torch

from cxrkit.estimators import _onnx
from cxrkit.estimators._onnx import INT8_DEFAULTS, export_onnx, quantize_onnx_int8


def session(path: str) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = torch.get_num_threads()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])


#: int8 recipes timed on preloaded tensors: (label, quantize_onnx_int8 keyword arguments).
#: ``_nhwc_max_pool=False`` leaves the max-pools as ONNX Runtime's quantiser writes them
#: (the recipe without ``_quantize_before_max_pools``).
INT8_VARIANTS = [
    (f"default: fp32_layers={INT8_DEFAULTS['fp32_layers']}", {}),
    (
        "default without the 8-bit channels-last max-pool (the quantiser's own max-pools)",
        {"_nhwc_max_pool": False},
    ),
    ("fp32_layers=('first_conv', 'head')", {"fp32_layers": ("first_conv", "head")}),
    ("fp32_layers=() (every layer int8)", {"fp32_layers": ()}),
]


def onnx_variants(net: torch.nn.Module, x: torch.Tensor, n: int):  # type: ignore[no-untyped-def]
    tmp = tempfile.mkdtemp()
    fp32 = export_onnx(net, os.path.join(tmp, "m.onnx"), x.shape[-1], x.shape[1])
    xs = x.numpy()
    out = []

    def run(sess: ort.InferenceSession):  # type: ignore[no-untyped-def]
        def go() -> None:
            for s in range(0, n, 16):
                sess.run(None, {"x": xs[s : s + 16]})

        return go

    out.append(("ONNX Runtime fp32, preloaded", run(session(fp32))))
    for k, (label, kw) in enumerate(INT8_VARIANTS):
        kw = dict(kw)
        rewrite = _onnx._quantize_before_max_pools
        if not kw.pop("_nhwc_max_pool", True):
            _onnx._quantize_before_max_pools = lambda model: 0
        try:
            int8 = quantize_onnx_int8(
                fp32,
                os.path.join(tmp, f"m.int8.{k}.onnx"),
                (xs[i : i + 16] for i in range(0, len(xs), 16)),
                **kw,
            )
        except Exception as exc:  # noqa: BLE001 - optional backend
            print(f"int8 quantisation not tried: {exc}")
            break
        finally:
            _onnx._quantize_before_max_pools = rewrite
        out.append((f"ONNX Runtime int8 static QDQ, {label}, preloaded", run(session(int8))))
    return out

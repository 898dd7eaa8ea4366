"""B2 follow-up - does decoding overlap compute? One int8 ONNX Runtime ResNet-101, three ways.

For the same quantised model (cxrkit's default int8 recipe, calibrated on the PNGs): end to end
from PNG files (``OnnxRuntimePredictor.predict_proba``), the same session on preloaded prepared
batches, and the decoding/preprocessing pipeline alone; each with ONNX Runtime's intra-op
thread spinning on (ONNX Runtime's default) and off (``OnnxRuntimePredictor``'s default).
Interleaved repeats, medians.

Run:  PYTHONPATH=src python benchmarks/b2_overlap.py [--images 64] [--repeats 3]
(needs ``pip install onnxruntime onnx``)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _common import header  # noqa: E402
from b2_inference import write_pngs  # noqa: E402

from cxrkit.architectures import create_architecture  # noqa: E402
from cxrkit.estimators import CXRClassifier  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import onnxruntime as ort

    from cxrkit.estimators._onnx import OnnxRuntimePredictor

    n = args.images
    header(f"B2 overlap: one int8 ResNet-101, {n} PNG files, medians of {args.repeats} repeats")
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_pngs(Path(tmp), n)
        net = create_architecture("resnet101", head="fc", freeze="all_but_last")
        clf = CXRClassifier.from_module(
            net,
            classes=["none", "covid"],
            architecture="resnet101",
            head="fc",
            freeze="all_but_last",
            batch_size=16,
            device="cpu",
        )
        clf.set_params(feature_cache=False)
        pred = OnnxRuntimePredictor(clf, quantize="int8", calibration=paths)
        sessions = {}
        for spin in ("1", "0"):
            so = ort.SessionOptions()
            so.intra_op_num_threads = torch.get_num_threads()
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            so.add_session_config_entry("session.intra_op.allow_spinning", spin)
            sessions[spin] = ort.InferenceSession(
                pred.model_path_, so, providers=["CPUExecutionProvider"]
            )
        batches = [xb.numpy() for xb in clf.iter_batches(clf.check_predict_input(paths))]

        def end_to_end() -> None:
            pred.predict_proba(paths)

        def preloaded() -> None:
            for b in batches:
                pred.session_.run(None, {"x": b})

        def decode_only() -> None:
            for _ in clf.iter_batches(clf.check_predict_input(paths)):
                pass

        runs: dict[str, list[float]] = {}
        for _ in range(args.repeats):
            for spin in ("1", "0"):
                pred.session_ = sessions[spin]
                for name, fn in (
                    ("end to end from PNG files", end_to_end),
                    ("preloaded prepared batches", preloaded),
                ):
                    t0 = time.perf_counter()
                    fn()
                    runs.setdefault(
                        f"{name}, spinning {'on' if spin == '1' else 'off'}", []
                    ).append(60 * n / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            decode_only()
            runs.setdefault("decoding + preprocessing alone", []).append(
                60 * n / (time.perf_counter() - t0)
            )
    for label, v in runs.items():
        print(
            f"{statistics.median(v):8.0f} images/min  {label}  [runs: "
            + ", ".join(f"{a:.0f}" for a in v)
            + "]"
        )

    def med(name: str, spin: str) -> float:
        return statistics.median(runs[f"{name}, spinning {spin}"])

    e2e, pre = "end to end from PNG files", "preloaded prepared batches"
    print(
        "end to end / preloaded (same model, same session): "
        f"{med(e2e, 'on') / med(pre, 'on'):.2f} spinning on, "
        f"{med(e2e, 'off') / med(pre, 'off'):.2f} spinning off (OnnxRuntimePredictor's default)"
    )
    print(f"end to end, spinning off / on: {med(e2e, 'off') / med(e2e, 'on'):.2f}")


if __name__ == "__main__":
    main()

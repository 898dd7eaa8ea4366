"""B2 - inference: ResNet-101 ``predict_proba`` from PNG files, end to end, images/minute.

Baseline, measured in the same process: plain torchvision ResNet-101, eager fp32,
``torch.no_grad``, batch 16, on tensors already in memory (contiguous and channels-last).
cxrkit: ``CXRClassifier(...).predict_proba(paths)`` - decoding in a thread pool overlapping
compute, ``torch.inference_mode``, batches streamed (never the whole data set in memory).

Run:  PYTHONPATH=src python benchmarks/b2_inference.py [--quick] [--onnx]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torchvision

sys.path.insert(0, str(Path(__file__).parent))
from _common import header  # noqa: E402
from _pngs import write_pngs  # noqa: E402

import cxrkit  # noqa: E402
from cxrkit.architectures import create_architecture  # noqa: E402
from cxrkit.estimators import CXRClassifier  # noqa: E402


def per_minute(n: int, seconds: float) -> float:
    return 60.0 * n / seconds


_BASE: list[float] = []


def bench(fn, n: int, repeats: int, label: str = "") -> tuple[float, list[float]]:
    fn()  # warm-up (allocator, oneDNN primitive cache, thread pool)
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        rates.append(per_minute(n, time.perf_counter() - t0))
    med = statistics.median(rates)
    if not _BASE:
        _BASE.append(med)
    print(
        f"{med:8.0f} images/min  ({med / _BASE[0]:4.2f} x baseline)  {label}  "
        f"[runs: {', '.join(f'{r:.0f}' for r in rates)}]",
        flush=True,
    )
    return med, rates


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="32 images, 2 repeats")
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--onnx", action="store_true", help="also try ONNX Runtime fp32 / int8")
    args = ap.parse_args()
    n, repeats = (32, 2) if args.quick else (args.images, args.repeats)
    header(f"B2 inference: ResNet-101 at 224 px, {n} images, median of {repeats} repeats")
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_pngs(Path(tmp), n)
        x = torch.randn(n, 3, 224, 224)
        results: dict[str, float] = {}

        torch.manual_seed(0)
        tv = torchvision.models.resnet101(weights=None).eval()

        def eager(model, data):
            def run():
                with torch.no_grad():
                    for s in range(0, n, 16):
                        model(data[s : s + 16])

            return run

        label = "torchvision eager fp32, preloaded, contiguous (baseline)"
        results[label], _ = bench(eager(tv, x), n, repeats, label)
        tv_cl = tv.to(memory_format=torch.channels_last)
        label = "torchvision eager fp32, preloaded, channels-last"
        results[label], _ = bench(
            eager(tv_cl, x.contiguous(memory_format=torch.channels_last)), n, repeats, label
        )
        del tv, tv_cl

        net = create_architecture("resnet101", head="fc", freeze="all_but_last")
        for cl in (False, True):
            clf = CXRClassifier.from_module(
                net,
                classes=["none", "covid"],
                architecture="resnet101",
                head="fc",
                freeze="all_but_last",
                batch_size=16,
                device="cpu",
            )
            # Unseen images: no feature-cache hits across the repeats.
            clf.set_params(feature_cache=False)
            if cl:
                clf.module_.to(memory_format=torch.channels_last)
            label = f"cxrkit predict_proba from PNG files, end to end, {'channels-last' if cl else 'contiguous'}"
            with cxrkit.config_context(channels_last=cl):
                results[label], _ = bench(
                    lambda clf=clf: clf.predict_proba(paths), n, repeats, label
                )
        net.to(memory_format=torch.contiguous_format)
        if args.onnx:
            try:
                from cxrkit.estimators._onnx import OnnxRuntimePredictor

                for quant in (None, "int8"):
                    # cxrkit's default int8 recipe (INT8_DEFAULTS), calibrated on the PNGs.
                    pred = OnnxRuntimePredictor(clf, quantize=quant, calibration=paths)
                    label = (
                        f"cxrkit OnnxRuntimePredictor {quant or 'fp32'} from PNG files, end to end"
                    )
                    results[label], _ = bench(
                        lambda p=pred: p.predict_proba(paths), n, repeats, label
                    )
            except Exception as exc:  # noqa: BLE001 - optional backend
                print(f"ONNX Runtime end to end not measured: {exc}")

        if args.onnx:
            try:
                from _onnx import onnx_variants
            except ImportError as exc:  # onnxruntime missing
                print(f"ONNX Runtime not tried: {exc}")
            else:
                for label, fn in onnx_variants(net, x, n):
                    results[label], _ = bench(fn, n, repeats, label)

    best = max((k for k in results if k.startswith("cxrkit")), key=results.__getitem__)
    print(
        f"best end-to-end cxrkit: {results[best]:.0f} images/min = "
        f"{results[best] / _BASE[0]:.2f} x the preloaded eager baseline ({best})"
    )


if __name__ == "__main__":
    main()

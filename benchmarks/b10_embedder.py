"""B10: ``CXREmbedder.transform`` on 512 PNGs vs the backbone's forward passes alone.

The bound is the same backbone run on the same number of already-prepared batches
(no decoding, no resizing, no copies out); the embedder decodes the PNG files in a
thread pool while the backbone runs on the previous batch. Target: >= 0.9x the bound.
Rounds are interleaved (bound, embedder, bound, ...) and medians compared, so the
ratio is a same-run figure on a shared machine.

    python benchmarks/b10_embedder.py [--arch resnet50] [--rounds 3] [--n 512]

Uses the 512 real cxr-dev PNGs where ``CXRKIT_SHARED_DATA`` points at them, otherwise
512 synthetic PNGs of 256 px.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _common import header
from _pngs import write_pngs

from cxrkit import get_config
from cxrkit.estimators import CXREmbedder


def _images(n: int, tmp: Path) -> tuple[list[str], str]:
    shared = os.environ.get("CXRKIT_SHARED_DATA")
    folder = Path(shared) / "cxr-dev" / "images" if shared else None
    if folder is not None and folder.is_dir():
        paths = sorted(str(p) for p in folder.glob("*.png"))[:n]
        if len(paths) == n:
            return paths, f"{n} real cxr-dev PNGs"
    return write_pngs(tmp, n), f"{n} synthetic 256 px PNGs"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    header(f"B10 CXREmbedder.transform vs backbone forward passes ({args.arch})")
    with tempfile.TemporaryDirectory() as tmp:
        paths, what = _images(args.n, Path(tmp))
        emb = CXREmbedder(args.arch, batch_size=args.batch_size, feature_cache=False).fit()
        size = emb.preprocessing_.input_size
        print(f"images: {what}; input {size} px; batch {args.batch_size}")
        gen = torch.Generator().manual_seed(0)
        sizes = [min(args.batch_size, args.n - s) for s in range(0, args.n, args.batch_size)]
        batches = [torch.rand(b, 3, size, size, generator=gen) for b in sizes]
        if get_config()["channels_last"] in (True, "auto"):  # as the embedder's passes run
            batches = [xb.contiguous(memory_format=torch.channels_last) for xb in batches]

        def bound() -> None:
            with torch.inference_mode():
                for xb in batches:
                    emb.module_.features(xb)

        def embed() -> np.ndarray:
            return emb.transform(paths)

        bound()  # warm-up of both paths
        feats = embed()
        assert feats.shape == (args.n, emb.n_features_out_) and np.isfinite(feats).all()
        times: dict[str, list[float]] = {"bound": [], "embedder": []}
        for _ in range(args.rounds):
            for name, fn in (("bound", bound), ("embedder", embed)):
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in times.items():
        rate = args.n / med[k] * 60
        print(
            f"{k:9s} median {med[k]:6.2f} s  ({rate:7.1f} images/min)  runs: "
            + ", ".join(f"{t:.2f}" for t in v)
        )
    ratio = med["bound"] / med["embedder"]
    print(f"embedder / bound throughput: {ratio:.2f}x (target >= 0.9x)")


if __name__ == "__main__":
    main()

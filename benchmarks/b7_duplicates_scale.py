"""B7: the near-duplicate guard at scale, indexed search (HNSW or k-d tree) vs exhaustive.

Synthetic 256 px grayscale images (a smooth random background, a few random
ellipses and rectangles, light pixel noise; generated on access, never all in
memory) with planted copies: every 50th image is a copy of an earlier one,
re-encoded as JPEG quality 70, resized to 75 %, cropped by up to 10 % or
mirrored. For each size, in a fresh process (so that peak RSS is per size):
thumbnails and hashes (one streaming pass), the indexed search (``--method``:
``index``, the default, is HNSW when faiss is installed, else the k-d tree),
peak RSS and the recall of the planted copies. The exhaustive method is timed at
small sizes and extrapolated quadratically (labelled as such). On one set the
HNSW, k-d tree and exhaustive searches run side by side and their pairs,
recall and precision (a pair is correct when both images belong to one group
of planted copies) are compared. Target: 100,000 images on 2 cores in under 10
minutes and under 4 GB.

    python benchmarks/b7_duplicates_scale.py [--method index] [--sizes 10000 30000 100000]
        [--exhaustive-sizes 1000 2000] [--compare 5000]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

SIDE = 256
EVERY = 50  # one planted copy per EVERY images
KINDS = ("jpeg70", "resized", "cropped", "flipped")


def _original(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    bg = Image.fromarray(rng.integers(40, 200, (8, 8), dtype=np.uint8)).resize(
        (SIDE, SIDE), Image.Resampling.BICUBIC
    )
    draw = ImageDraw.Draw(bg)
    for _ in range(int(rng.integers(3, 7))):
        x0, y0 = rng.integers(0, SIDE - 40, 2)
        w, h = rng.integers(30, 140, 2)
        box = (int(x0), int(y0), int(min(SIDE - 1, x0 + w)), int(min(SIDE - 1, y0 + h)))
        fill = int(rng.integers(0, 256))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=fill)
    arr = np.asarray(bg, dtype=np.int16) + rng.integers(-12, 13, (SIDE, SIDE), dtype=np.int16)
    return np.clip(arr, 0, 255).astype(np.uint8)


def _copy(img: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    pil = Image.fromarray(img)
    if kind == "jpeg70":
        buf = io.BytesIO()
        pil.save(buf, "JPEG", quality=70)
        return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("L"))
    if kind == "resized":
        return np.asarray(pil.resize((SIDE * 3 // 4, SIDE * 3 // 4), Image.Resampling.BILINEAR))
    if kind == "cropped":
        f = rng.uniform(0.02, 0.10)
        c = int(SIDE * f)
        return img[c // 2 : SIDE - (c - c // 2), c // 2 : SIDE - (c - c // 2)]
    return img[:, ::-1].copy()


class SyntheticImages(Sequence[np.ndarray]):
    """``n`` images made on access; ``planted[j] = (i, kind)`` for copies."""

    def __init__(self, n: int, seed: int = 0) -> None:
        self.n, self.seed = n, seed
        rng = np.random.default_rng(seed)
        self.planted: dict[int, tuple[int, str]] = {}
        for j in range(EVERY, n, EVERY):
            self.planted[j] = (int(rng.integers(0, j)), KINDS[(j // EVERY) % len(KINDS)])

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, j: Any) -> Any:
        if isinstance(j, slice):
            return [self[k] for k in range(*j.indices(self.n))]
        if j in self.planted:
            i, kind = self.planted[j]
            return _copy(self[i], kind, np.random.default_rng(self.seed * 7919 + j))
        return _original(self.seed * 1_000_003 + int(j))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _recall(pairs: Any, planted: dict[int, tuple[int, str]]) -> float:
    found = {(int(i), int(j)) for i, j in zip(pairs["i"], pairs["j"])}
    hit = sum((min(i, j), max(i, j)) in found for j, (i, _) in planted.items())
    return hit / max(1, len(planted))


def _precision(pairs: Any, planted: dict[int, tuple[int, str]]) -> float:
    """Share of the pairs whose two images are copies of one original (directly or not)."""
    root: dict[int, int] = {}

    def find(x: int) -> int:
        while root.get(x, x) != x:
            x = root[x]
        return x

    for j, (i, _) in planted.items():
        root[find(j)] = find(i)
    ok = sum(find(int(i)) == find(int(j)) for i, j in zip(pairs["i"], pairs["j"]))
    return ok / max(1, len(pairs))


def _backend(method: str) -> str:
    if method == "exhaustive":
        return method
    from cxrkit.validity._radius_index import resolve_backend

    return resolve_backend(method)


def run_one(n: int, method: str) -> dict[str, Any]:
    from cxrkit.validity import compute_hashes, find_near_duplicates

    imgs = SyntheticImages(n)
    t0 = time.perf_counter()
    h = compute_hashes(imgs, progress=True)
    t1 = time.perf_counter()
    pairs = find_near_duplicates(h, method=method, progress=True)
    t2 = time.perf_counter()
    out = {
        "n": n,
        "method": method,
        "backend": _backend(method),
        "hash_s": round(t1 - t0, 1),
        "search_s": round(t2 - t1, 1),
        "total_s": round(t2 - t0, 1),
        "peak_rss_mb": round(_rss_mb()),
        "pairs": len(pairs),
        "planted": len(imgs.planted),
        "recall": round(_recall(pairs, imgs.planted), 4),
        "precision": round(_precision(pairs, imgs.planted), 4),
    }
    return out


def compare(n: int) -> dict[str, Any]:
    from cxrkit.validity import compute_hashes, find_near_duplicates
    from cxrkit.validity._radius_index import faiss_available

    imgs = SyntheticImages(n, seed=1)
    h = compute_hashes(imgs, progress=True)
    out: dict[str, Any] = {"n": n, "planted": len(imgs.planted)}
    methods = ["hnsw", "kdtree", "exhaustive"] if faiss_available() else ["kdtree", "exhaustive"]
    found = {}
    for m in methods:
        t0 = time.perf_counter()
        p = find_near_duplicates(h, method=m, progress=m != "exhaustive")  # type: ignore[arg-type]
        out[m] = {
            "s": round(time.perf_counter() - t0, 1),
            "pairs": len(p),
            "recall": round(_recall(p, imgs.planted), 4),
            "precision": round(_precision(p, imgs.planted), 4),
        }
        found[m] = {(int(i), int(j)) for i, j in zip(p["i"], p["j"])}
    for m in methods[:-1]:
        out[m]["same_pairs"] = found[m] == found["exhaustive"]
        out[m]["missed"] = len(found["exhaustive"] - found[m])
        out[m]["extra"] = len(found[m] - found["exhaustive"])
    return out


def _child(args: list[str]) -> dict[str, Any]:
    env = dict(os.environ)
    res = subprocess.run(
        [sys.executable, __file__, "--child", *args], env=env, stdout=subprocess.PIPE, check=True
    )
    return json.loads(res.stdout.decode().strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--method",
        choices=["index", "hnsw", "kdtree"],
        default="index",
        help="indexed search timed at --sizes (index: hnsw when faiss is installed, else kdtree)",
    )
    ap.add_argument("--sizes", type=int, nargs="*", default=[10_000, 30_000, 100_000])
    ap.add_argument("--exhaustive-sizes", type=int, nargs="*", default=[1000, 2000])
    ap.add_argument(
        "--compare",
        type=int,
        default=5000,
        help="set size for hnsw vs kdtree vs exhaustive (0: off)",
    )
    ap.add_argument("--quick", action="store_true", help="sizes 2000 5000, exhaustive 500 1000")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        kind, n = a.child[0], int(a.child[1])
        print(json.dumps(compare(n) if kind == "compare" else run_one(n, kind)))
        return
    if a.quick:
        a.sizes, a.exhaustive_sizes, a.compare = [2000, 5000], [500, 1000], 1000
    cpu = platform.processor() or platform.machine()
    print(
        f"B7 near-duplicates; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"{os.cpu_count()} CPUs; {cpu}; load average "
        + " ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    sys.stdout.flush()
    ex = [_child(["exhaustive", str(n)]) for n in a.exhaustive_sizes]
    for r in ex:
        print(
            f"exhaustive n={r['n']:>7,}: search {r['search_s']:>8.1f} s  (measured), "
            f"peak {r['peak_rss_mb']:,} MB, recall {r['recall']:.4f}"
        )
        sys.stdout.flush()
    ref = ex[-1] if ex else None
    for n in a.sizes:
        r = _child([a.method, str(n)])
        line = (
            f"{r['backend']:<10} n={r['n']:>7,}: hash {r['hash_s']:>7.1f} s + search "
            f"{r['search_s']:>7.1f} s = {r['total_s']:>7.1f} s, peak {r['peak_rss_mb']:,} MB, "
            f"pairs {r['pairs']:,}, recall {r['recall']:.4f} of {r['planted']:,} planted, "
            f"precision {r['precision']:.4f}"
        )
        if ref is not None:
            est = ref["search_s"] * (r["n"] / ref["n"]) ** 2
            line += (
                f"; exhaustive search {est:,.0f} s (extrapolated, n^2 from n={ref['n']:,}), "
                f"{est / max(r['search_s'], 1e-9):,.0f}x"
            )
        print(line)
        sys.stdout.flush()
    if a.compare:
        c = _child(["compare", str(a.compare)])
        for m in ("hnsw", "kdtree", "exhaustive"):
            if m not in c:
                continue
            r = c[m]
            line = (
                f"compare    n={c['n']:>7,} {m:<10}: search {r['s']:>7.1f} s, pairs {r['pairs']:,}, "
                f"recall {r['recall']:.4f} of {c['planted']:,} planted, "
                f"precision {r['precision']:.4f}"
            )
            if "same_pairs" in r:
                line += (
                    f"; identical to exhaustive: {r['same_pairs']} "
                    f"({r['missed']} missed, {r['extra']} extra)"
                )
            print(line)


if __name__ == "__main__":
    main()

"""B3 - memory: peak RSS while predicting 1,500 vs 6,000 PNG files (must be flat, < 2 GB).

Each size runs in a fresh subprocess that writes nothing but reads the PNGs, builds the
classifier and calls ``predict_proba(paths)``; the peak resident set size (``ru_maxrss``)
is reported, with the RSS just before prediction. ``predict_proba`` streams decoded
batches (a few batches in flight at a time) and keeps only one float per image.

The default architecture is ``tiny_cnn`` at 224 px (``--size``) so that 6,000 images fit in
the time budget on 2 shared cores: what is measured is the pipeline (decoding, batching,
outputs), which is the part that could grow with the number of images.
``--arch resnet101`` measures the second paper's model (its weights add ~170 MB to both
figures; activations of a batch of 32 add a few hundred MB; ~15 min per 6,000 images here).

Run:  PYTHONPATH=src python benchmarks/b3_memory.py [--quick] [--arch resnet101]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import rss_mb  # noqa: E402


def run_child(folder: str, n: int, arch: str, tune_malloc: bool | str = "auto") -> dict:
    import cxrkit
    from cxrkit.architectures import Preprocessing, create_architecture
    from cxrkit.estimators import CXRClassifier

    paths = sorted(str(p) for p in Path(folder).glob("*.png"))[:n]
    net = create_architecture(arch, head="fc", freeze="all_but_last")
    prep = Preprocessing(**{**net.preprocessing.to_dict(), "input_size": 224})
    clf = CXRClassifier.from_module(
        net,
        classes=[0, 1],
        architecture=arch,
        head="fc",
        freeze="all_but_last",
        batch_size=32,
        device="cpu",
        preprocessing=prep,
    )
    # measure streaming prediction, not the cache
    clf.set_params(feature_cache=False)
    before = rss_mb()
    t0 = time.perf_counter()
    with cxrkit.config_context(tune_malloc=tune_malloc):
        proba = clf.predict_proba(paths)
    dt = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"n": len(proba), "rss_before_mb": before, "peak_rss_mb": peak, "seconds": dt}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="300 vs 1,200 images")
    ap.add_argument("--arch", default="tiny_cnn")
    ap.add_argument(
        "--compare-malloc",
        action="store_true",
        help="also run with tune_malloc=False (glibc's default allocator behaviour)",
    )
    ap.add_argument("--child", nargs=3, metavar=("FOLDER", "N", "TUNE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        tune = {"auto": "auto", "False": False}[args.child[2]]
        print(json.dumps(run_child(args.child[0], int(args.child[1]), args.arch, tune)))
        return
    from _common import header
    from _pngs import write_pngs

    small, large = (300, 1200) if args.quick else (1500, 6000)
    header(
        f"B3 memory: predict_proba on {small} vs {large} PNG files (256 px -> 224 px), {args.arch}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        write_pngs(Path(tmp), large)
        for tune in ("auto", "False") if args.compare_malloc else ("auto",):
            rows = []
            for n in (small, large):
                out = subprocess.run(
                    [sys.executable, __file__, "--arch", args.arch, "--child", tmp, str(n), tune],
                    capture_output=True,
                    text=True,
                    env=os.environ,
                )
                if out.returncode:
                    sys.exit(out.stderr)
                r = json.loads(out.stdout.strip().splitlines()[-1])
                rows.append(r)
                print(
                    f"{r['n']:6d} images, tune_malloc={tune}: peak RSS {r['peak_rss_mb']:7.0f} MB "
                    f"(RSS before predict {r['rss_before_mb']:.0f} MB), {r['seconds']:.0f} s, "
                    f"{60 * r['n'] / r['seconds']:.0f} images/min"
                )
            print(
                f"tune_malloc={tune}: ratio peak RSS {large}/{small}: "
                f"{rows[1]['peak_rss_mb'] / rows[0]['peak_rss_mb']:.3f} (flat = 1.0); limit 2048 MB: "
                f"{'OK' if max(r['peak_rss_mb'] for r in rows) < 2048 else 'EXCEEDED'}"
            )


if __name__ == "__main__":
    main()

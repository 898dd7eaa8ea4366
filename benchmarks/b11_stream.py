"""B11 - streaming: peak RSS of ``embed_to_shards`` on N vs 4N PNG files (must be flat).

Each size runs in a fresh subprocess that builds a ``CXREmbedder`` and calls
``embed_to_shards(paths, out, shard_size=...)``, which computes one shard at a time
(images decoded batch by batch) and writes each shard to ``out/shards`` as it
finishes; the peak resident set size (``ru_maxrss``) is reported with the RSS just
before the run. The default architecture is ``tiny_cnn`` at 224 px, so that what is
measured is the pipeline (decoding, batching, shard files), the part that could grow
with the number of images. ``--kill-resume`` also kills a run of 4N images with
SIGKILL after its second shard and runs it again: the second run must compute only
the shards that were missing.

Run:  PYTHONPATH=src python benchmarks/b11_stream.py [--small 2000] [--kill-resume]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _common import rss_mb  # noqa: E402


def run_child(folder: str, n: int, out: str, arch: str, shard_size: int) -> dict:
    from cxrkit.estimators import CXREmbedder, embed_to_shards

    paths = sorted(str(p) for p in Path(folder).glob("*.png"))[:n]
    emb = CXREmbedder(arch, input_size=224, batch_size=32, device="cpu").fit()
    before = rss_mb()
    run = embed_to_shards(emb, paths, out, shard_size=shard_size, progress=False)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "n": run.n_images,
        "n_shards": run.n_shards,
        "n_done": run.n_done,
        "n_resumed": run.n_skipped_resumed,
        "rss_before_mb": before,
        "peak_rss_mb": peak,
        "seconds": run.seconds,
    }


def _child_cmd(args: argparse.Namespace, folder: str, n: int, out: str) -> list[str]:
    return [
        sys.executable,
        __file__,
        "--arch",
        args.arch,
        "--shard-size",
        str(args.shard_size),
        "--child",
        folder,
        str(n),
        out,
    ]


def _run(cmd: list[str]) -> dict:
    res = subprocess.run(cmd, capture_output=True, text=True, env=os.environ)
    if res.returncode:
        sys.exit(res.stderr)
    return json.loads(res.stdout.strip().splitlines()[-1])


def _kill_after_shards(cmd: list[str], shards: Path, k: int) -> int:
    """Start ``cmd``, SIGKILL it once ``k`` shards are in ``shards``; return the count then."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while proc.poll() is None:
            done = len(list(shards.glob("part-*.npy"))) + len(list(shards.glob("part-*.parquet")))
            if done >= k:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.2)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    return len(list(shards.glob("part-*.npy"))) + len(list(shards.glob("part-*.parquet")))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", type=int, default=2000, help="N (the large run is 4N)")
    ap.add_argument("--arch", default="tiny_cnn")
    ap.add_argument("--shard-size", type=int, default=512)
    ap.add_argument("--kill-resume", action="store_true", help="also kill and resume a 4N run")
    ap.add_argument("--child", nargs=3, metavar=("FOLDER", "N", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        folder, n, out = args.child
        print(json.dumps(run_child(folder, int(n), out, args.arch, args.shard_size)))
        return
    from _common import header
    from _pngs import write_pngs

    small, large = args.small, 4 * args.small
    header(
        f"B11 streaming: embed_to_shards on {small} vs {large} PNG files (256 px -> 224 px), "
        f"{args.arch}, shard size {args.shard_size}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        write_pngs(Path(tmp) / "png", large)
        print(f"wrote {large} PNGs in {time.perf_counter() - t0:.0f} s")
        rows = []
        for n in (small, large):
            r = _run(_child_cmd(args, str(Path(tmp) / "png"), n, str(Path(tmp) / f"out{n}")))
            rows.append(r)
            print(
                f"{r['n']:6d} images, {r['n_shards']} shards: peak RSS {r['peak_rss_mb']:7.0f} MB "
                f"(RSS before {r['rss_before_mb']:.0f} MB), {r['seconds']:.0f} s, "
                f"{60 * r['n'] / r['seconds']:.0f} images/min"
            )
        print(
            f"ratio peak RSS {large}/{small}: "
            f"{rows[1]['peak_rss_mb'] / rows[0]['peak_rss_mb']:.3f} (flat = 1.0)"
        )
        if args.kill_resume:
            out = Path(tmp) / "killed"
            cmd = _child_cmd(args, str(Path(tmp) / "png"), large, str(out))
            kept = _kill_after_shards(cmd, out / "shards", 2)
            r = _run(cmd)
            print(
                f"kill -9 after {kept} of {r['n_shards']} shards, then the same run again: "
                f"{r['n_resumed']} shards kept, {r['n_done']} computed, {r['seconds']:.0f} s; "
                f"{'OK' if r['n_resumed'] == kept and r['n_done'] == r['n_shards'] - kept else 'WRONG'}"
            )


if __name__ == "__main__":
    main()

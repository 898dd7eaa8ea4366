"""B9 - ``cxrkit serve`` under load: 1024 px PNGs posted to a ResNet-50 model on loopback.

Measured in the same run, on the same files:

* offline single: ``predict_proba([path])`` one file at a time (decode + forward), median;
* offline batched: ``predict_proba(paths)`` over all files, images/s;
* one client: sequential ``POST /v1/predict`` of one file each, p50 latency;
* N concurrent clients (default 16) for D seconds (default 60): throughput, p50 and p99
  latency, errors, and the server's RSS sampled every second (peak in the first and
  the second half of the run).

The server is ``python -m cxrkit serve`` in its own process (as users run it); the
clients are threads in this process sending the files from memory with httpx, so
on a small machine they compete with the server for the cores. The offline calls
run on a worker thread, as the server's forward passes do: on a busy machine
torch's intra-op threads can run several times slower on the main thread than on
another one, which would flatter the server.

Targets: one-client p50 <= 1.5 x offline single; throughput >= 0.8 x offline batched;
p99 <= 2 x p50; 0 errors; peak RSS flat (second-half peak <= 1.1 x first-half peak).

Run:  PYTHONPATH=src python benchmarks/b9_serve.py [--quick] [--clients 16] [--duration 60]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import header  # noqa: E402
from _pngs import write_pngs  # noqa: E402

from cxrkit import CXRClassifier, load_model, save_model  # noqa: E402
from cxrkit.architectures import create_architecture  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def _start_server(model_dir: Path, device: str, args: argparse.Namespace) -> tuple[Any, str]:
    import httpx

    port = _free_port()
    src = Path(__file__).resolve().parents[1] / "src"
    env = {**os.environ, "PYTHONPATH": f"{src}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    cmd = [
        sys.executable,
        "-m",
        "cxrkit",
        "serve",
        str(model_dir),
        "--port",
        str(port),
        "--device",
        device,
        "--log-level",
        "warning",
        "--max-batch",
        str(args.max_batch),
        "--max-wait-ms",
        str(args.max_wait_ms),
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    for _ in range(1200):
        if proc.poll() is not None:
            raise SystemExit(f"cxrkit serve exited: {proc.stderr.read().decode()}")
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    raise SystemExit("cxrkit serve did not answer /healthz within 120 s")


def _post(client: Any, url: str, name: str, data: bytes) -> float:
    t0 = time.perf_counter()
    response = client.post(url + "/v1/predict", files=[("files", (name, data, "image/png"))])
    elapsed = time.perf_counter() - t0
    if response.status_code != 200:
        raise RuntimeError(f"{response.status_code}: {response.text[:200]}")
    return elapsed


def _load_phase(
    url: str, files: list[tuple[str, bytes]], clients: int, duration: float, pid: int
) -> dict[str, Any]:
    import httpx
    import psutil

    latencies: list[float] = []
    errors: list[str] = []
    rss: list[tuple[float, int]] = []
    stop = threading.Event()
    lock = threading.Lock()
    proc = psutil.Process(pid)

    def client(k: int) -> None:
        with httpx.Client(timeout=120) as c:
            i = k
            while not stop.is_set():
                name, data = files[i % len(files)]
                try:
                    dt = _post(c, url, name, data)
                    with lock:
                        latencies.append(dt)
                except Exception as exc:  # noqa: BLE001 - every error is counted and shown
                    with lock:
                        errors.append(str(exc))
                i += clients

    def sample() -> None:
        while not stop.is_set():
            rss.append((time.perf_counter(), proc.memory_info().rss))
            stop.wait(1.0)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    sampler = threading.Thread(target=sample)
    t0 = time.perf_counter()
    sampler.start()
    for t in threads:
        t.start()
    time.sleep(duration)
    stop.set()
    n_done = len(latencies)  # completed within the window
    for t in threads:
        t.join()
    sampler.join()
    half = t0 + duration / 2
    first = max((r for t, r in rss if t < half), default=0)
    second = max((r for t, r in rss if t >= half), default=0)
    return {
        "n": n_done,
        "seconds": duration,
        "latencies": latencies,
        "errors": errors,
        "rss_first": first,
        "rss_second": second,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--quick",
        action="store_true",
        help="512 px, 16 files, 4 clients for 15 s (a smoke run, not the targets)",
    )
    ap.add_argument("--size", type=int, default=1024, help="PNG side in pixels")
    ap.add_argument("--files", type=int, default=32, help="distinct PNG files")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of concurrent load")
    ap.add_argument("--single", type=int, default=12, help="sequential requests of one client")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--max-batch", type=int, default=16)
    ap.add_argument("--max-wait-ms", type=float, default=10.0)
    args = ap.parse_args()
    if args.quick:
        args.size, args.files, args.clients, args.duration, args.single = 512, 16, 4, 15.0, 6

    header(
        f"B9 serve: ResNet-50 (random init), {args.files} PNGs of {args.size} px, "
        f"{args.clients} clients x {args.duration:.0f} s on loopback, device {args.device}"
    )
    with tempfile.TemporaryDirectory(prefix="cxrkit-b9-") as tmp:
        root = Path(tmp)
        paths = write_pngs(root / "png", args.files, size=args.size)
        files = [(Path(p).name, Path(p).read_bytes()) for p in paths]
        print(
            f"files: {len(files)} PNGs, mean {statistics.mean(len(d) for _, d in files) / 1e6:.2f}"
            " MB each"
        )
        module = create_architecture("resnet50", pretrained=None)
        clf = CXRClassifier.from_module(module, ["negative", "positive"], device=args.device)
        model_dir = save_model(clf, root / "resnet50")

        offline = load_model(model_dir, device=args.device)
        offline.set_params(feature_cache=False)
        arr = np.asarray(paths, dtype=object)

        worker = ThreadPoolExecutor(1, thread_name_prefix="offline")

        def on_worker(x: np.ndarray) -> float:
            """Seconds of ``offline.predict_proba(x)`` on the worker thread."""

            def call() -> float:
                t0 = time.perf_counter()
                offline.predict_proba(x)
                return time.perf_counter() - t0

            return worker.submit(call).result()

        def batched_rate() -> float:
            return len(arr) / on_worker(arr)

        proc, url = _start_server(model_dir, args.device, args)
        try:
            import httpx

            with httpx.Client(timeout=120) as c:
                on_worker(arr[:2])  # warm-up of both
                _post(c, url, *files[0])
                single, one = [], []
                for i in range(args.single):  # interleaved, so load drift hits both alike
                    single.append(on_worker(arr[i % len(arr) : i % len(arr) + 1]))
                    one.append(_post(c, url, *files[i % len(files)]))
            single_med = statistics.median(single)
            one_p50 = _pct(one, 50)
            print(
                f"offline single predict_proba([path]): median {single_med * 1e3:.0f} ms "
                f"over {len(single)} files"
            )
            print(
                f"one client: p50 {one_p50 * 1e3:.0f} ms, p99 {_pct(one, 99) * 1e3:.0f} ms "
                f"over {len(one)} requests (interleaved with the offline calls) = "
                f"{one_p50 / single_med:.2f} x offline single (target <= 1.5)"
            )
            before = batched_rate()
            res = _load_phase(url, files, args.clients, args.duration, proc.pid)
            health = httpx.get(url + "/healthz").json()["batching"]
        finally:
            proc.terminate()
            proc.wait(30)
        after = batched_rate()
        rate_offline = (before + after) / 2
        print(
            f"offline batched predict_proba(paths): {rate_offline:.2f} images/s (mean of "
            f"{before:.2f} just before and {after:.2f} just after the load phase, server idle)"
        )
        lat = res["latencies"]
        rate = res["n"] / res["seconds"]
        p50, p99 = _pct(lat, 50), _pct(lat, 99)
        print(
            f"{args.clients} clients x {res['seconds']:.0f} s: {res['n']} requests, "
            f"{rate:.2f} images/s = {rate / rate_offline:.2f} x offline batched (target >= 0.8); "
            f"p50 {p50 * 1e3:.0f} ms, p99 {p99 * 1e3:.0f} ms, p99/p50 {p99 / p50:.2f} "
            f"(target <= 2); Little's law: {args.clients} / {rate:.2f} = "
            f"{args.clients / rate * 1e3:.0f} ms mean latency, measured "
            f"{statistics.mean(lat) * 1e3:.0f} ms"
        )
        print(
            f"errors: {len(res['errors'])}"
            + (f" (first: {res['errors'][0]})" if res["errors"] else "")
        )
        grow = res["rss_second"] / max(res["rss_first"], 1)
        print(
            f"server peak RSS: first half {res['rss_first'] / 2**20:.0f} MiB, second half "
            f"{res['rss_second'] / 2**20:.0f} MiB ({grow:.2f} x; flat means <= 1.1)"
        )
        print(f"server batching: {health}")
        checks = {
            "one-client p50 <= 1.5 x single": one_p50 <= 1.5 * single_med,
            "throughput >= 0.8 x batched": rate >= 0.8 * rate_offline,
            "p99 <= 2 x p50": p99 <= 2 * p50,
            "0 errors": not res["errors"],
            "RSS flat": grow <= 1.1,
        }
        print(
            "targets: " + "; ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in checks.items())
        )


if __name__ == "__main__":
    main()

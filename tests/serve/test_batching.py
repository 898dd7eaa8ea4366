"""Micro-batching: concurrent requests share forward passes; limits and errors reach every caller."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from cxrkit import load_model
from cxrkit.serve import MicroBatcher, ServeConfig, ServedModel, ServerBusy, create_app

from .conftest import NO_SERVE_EXTRA, png_bytes

pytest.importorskip("fastapi", reason=NO_SERVE_EXTRA)
pytest.importorskip("httpx", reason=NO_SERVE_EXTRA)


def _slow_identity(sizes: list[int], delay: float = 0.02):
    def predict(batch: np.ndarray):
        sizes.append(len(batch))
        time.sleep(delay)
        return batch[:, 0, 0].copy(), None

    return predict


def test_concurrent_submits_are_batched_and_rows_go_back_to_their_request():
    sizes: list[int] = []
    batcher = MicroBatcher(_slow_identity(sizes), max_batch=8, max_wait_ms=50).start()
    results: dict[int, np.ndarray] = {}

    def client(k: int) -> None:
        images = [np.full((4, 4), 100 * k + j, np.float32) for j in range(1 + k % 3)]
        out, extra = batcher.submit(images).result(timeout=10)
        assert extra is None
        results[k] = out

    threads = [threading.Thread(target=client, args=(k,)) for k in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batcher.stop()
    for k, out in results.items():
        np.testing.assert_array_equal(out, [100 * k + j for j in range(1 + k % 3)])
    assert sum(sizes) == sum(1 + k % 3 for k in range(24))
    assert max(sizes) <= 8 and len(sizes) < 24  # batches formed, never over max_batch
    assert batcher.stats()["largest_batch"] == max(sizes)


def test_a_lone_request_does_not_wait_for_companions():
    batcher = MicroBatcher(lambda b: (b[:, 0, 0], None), max_wait_ms=2000).start()
    t0 = time.perf_counter()
    batcher.submit([np.zeros((4, 4), np.float32)]).result(timeout=10)
    assert time.perf_counter() - t0 < 1.0
    batcher.reserve()  # another request announced: now the batcher waits for it, bounded
    t0 = time.perf_counter()
    future = batcher.submit([np.zeros((4, 4), np.float32)])
    threading.Timer(
        0.2, lambda: batcher.submit([np.ones((4, 4), np.float32)], reserved=True)
    ).start()
    future.result(timeout=10)
    assert 0.15 < time.perf_counter() - t0 < 1.9
    assert batcher.stats()["largest_batch"] == 2
    batcher.stop()


def test_full_queue_raises_server_busy_and_errors_reach_every_request():
    gate = threading.Event()

    def blocked(batch: np.ndarray):
        gate.wait(10)
        raise RuntimeError("network exploded")

    batcher = MicroBatcher(blocked, max_batch=2, max_wait_ms=1, max_queue=3).start()
    img = np.zeros((4, 4), np.float32)
    futures = [batcher.submit([img]), batcher.submit([img])]
    time.sleep(0.1)  # the worker holds the first two
    futures.append(batcher.submit([img, img, img]))
    with pytest.raises(
        ServerBusy,
        match=r"3 images waiting \(limit 3, cxrkit serve "
        r"--max-queue\); retry in a moment\.",
    ):
        batcher.submit([img])
    gate.set()
    for f in futures:
        with pytest.raises(RuntimeError, match="network exploded"):
            f.result(timeout=10)
    batcher.stop()


def test_concurrent_http_requests_share_batches(model_dir, training_images, tmp_path):
    import httpx

    X, _ = training_images
    served = ServedModel.from_directory(model_dir, device="cpu")
    app = create_app(served, ServeConfig(max_batch=8, max_wait_ms=200))
    paths = []
    for i in range(16):
        (tmp_path / f"{i}.png").write_bytes(png_bytes(X[i]))
        paths.append(str(tmp_path / f"{i}.png"))

    async def run() -> list[dict]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:

            async def one(i: int) -> dict:
                files = [("files", (f"{i}.png", png_bytes(X[i]), "image/png"))]
                response = await client.post("/v1/predict", files=files)
                assert response.status_code == 200
                return response.json()["results"][0]

            return await asyncio.gather(*(one(i) for i in range(16)))

    try:
        results = asyncio.run(run())
    finally:
        app.state.service.batcher.stop()
    stats = app.state.service.batcher.stats()
    assert stats["images"] == 16 and stats["batches"] < 16 and stats["largest_batch"] <= 8
    offline = load_model(model_dir, device="cpu").predict_proba(np.asarray(paths, dtype=object))
    got = np.array([r["probabilities"]["pos"] for r in results])
    np.testing.assert_allclose(got, offline[:, 1], atol=1e-6)

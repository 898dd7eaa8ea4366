"""Synthetic grayscale chest-X-ray-sized PNG files for the inference benchmarks."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image


def write_pngs(folder: Path, n: int, size: int = 256, seed: int = 0) -> list[str]:
    """``n`` 8-bit grayscale PNGs (size x size, smooth gradient + noise + a blob)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = np.linspace(30, 200, size, dtype=np.float32)[None, :] * np.ones((size, 1), np.float32)
    noise = [rng.normal(0, 12, (size, size)).astype(np.float32) for _ in range(8)]

    def one(i: int) -> str:
        img = np.clip(base + noise[i % 8] + (i % 50), 0, 255).astype(np.uint8)
        img[(i * 7) % (size // 2) : (i * 7) % (size // 2) + size // 4, size // 3 : size // 2] = 230
        path = folder / f"img{i:05d}.png"
        Image.fromarray(img, mode="L").save(path, compress_level=1)
        return str(path)

    with ThreadPoolExecutor(4) as pool:
        return list(pool.map(one, range(n)))

"""Several processes share one on-disk feature cache without corrupting it."""

from __future__ import annotations

import numpy as np
from joblib import Parallel, delayed


def _features_in_a_fresh_process(cache_dir: str, seed_images: int, n_repeats: int) -> dict:
    """Runs in a worker process: frozen tiny backbone, features of 24 synthetic images."""
    import torch

    torch.set_num_threads(1)
    from cxrkit.architectures import create_architecture, get_preprocessing
    from cxrkit.datasets import make_synthetic_cxr
    from cxrkit.estimators._cache import FeatureCache, cached_features

    torch.manual_seed(0)
    net = create_architecture("tiny_cnn", freeze="backbone")
    prep = get_preprocessing("tiny_cnn")
    images, _ = make_synthetic_cxr(
        n_patients=12, images_per_patient=2, size=prep.input_size, random_state=seed_images
    )
    images = images.astype(np.float32) / 255
    out = []
    cache = FeatureCache()
    for _ in range(n_repeats):  # every repeat re-reads disk: in-memory store cleared
        cache.clear()
        out.append(
            cached_features(
                net, images, prep, views=("orig", "hflip"), cache_dir=cache_dir, cache=cache
            )
        )
    return {"features": out[-1], "stats": cache.stats()}


def test_two_processes_write_one_cache_dir_concurrently(tmp_path):
    cache_dir = str(tmp_path / "cache")
    # two loky worker processes compute the same 2 x 24 features into one folder at once
    first = Parallel(n_jobs=2, backend="loky")(
        delayed(_features_in_a_fresh_process)(cache_dir, 3, 3) for _ in range(2)
    )
    files = sorted((tmp_path / "cache").rglob("*.npy"))
    assert len(files) == 48 and not list((tmp_path / "cache").rglob(".tmp-*"))
    for f in files:  # every file is complete and readable
        assert np.load(f, allow_pickle=False).ndim == 1
    for view in ("orig", "hflip"):
        np.testing.assert_array_equal(first[0]["features"][view], first[1]["features"][view])
    # a fresh in-memory store (as in a new process) finds everything on disk: no computation
    again = Parallel(n_jobs=1)(
        delayed(_features_in_a_fresh_process)(cache_dir, 3, 1) for _ in range(1)
    )[0]
    assert again["stats"]["misses"] == 0 and again["stats"]["disk_hits"] == 48
    for view in ("orig", "hflip"):
        np.testing.assert_array_equal(again["features"][view], first[0]["features"][view])

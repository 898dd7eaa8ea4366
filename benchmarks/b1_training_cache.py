"""B1 - training with a frozen backbone: feature cache vs the uncached skorch loop vs the bound.

Protocol (Hall et al. 2020): 10-fold stratified CV; in each fold a 7-member snapshot
ensemble (policy "last", one member every 10 epochs) of a frozen ResNet50 (random
initialisation: timing only) with the hall2020 head, RMSprop, cyclic LR, horizontal flips,
batch 16, 80 epochs; 204 synthetic 224 px grayscale images.

Figures
- bound: the backbone forward passes alone (204 images x 2 views, eval mode, batch 32), plain
  eager, and "tuned" with the settings cxrkit's feature computation uses (channels-last,
  freed buffers kept for reuse);
- cached: the whole 10-fold protocol with cxrkit's feature cache (training only; the
  prediction of each held-out fold is timed separately);
- cached, ``--n-jobs`` worker processes: the same folds through ``joblib.Parallel`` (as
  cxrkit's protocols, ``cross_validate`` and ``GridSearchCV`` run them with ``n_jobs``), one
  torch thread each, sharing features through the on-disk store of the main process's session;
  timed from the ``Parallel`` call to the last fold's result, worker start-up included;
- uncached: one epoch of the same skorch training loop with the cache off, timed on
  ``--uncached-images`` images and EXTRAPOLATED per image to 10 folds x 80 epochs.

Run:  PYTHONPATH=src python benchmarks/b1_training_cache.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import StratifiedKFold

sys.path.insert(0, str(Path(__file__).parent))
from _common import header  # noqa: E402

from cxrkit._memory import retain_freed_memory  # noqa: E402
from cxrkit.estimators import (  # noqa: E402  # noqa: E402
    CXRClassifier,
    SnapshotEnsembleClassifier,
    as_image_source,
    clear_feature_cache,
    feature_cache_stats,
    prepare_images,
    to_tensor,
)


def synthetic(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    yy = np.array(["covid"] * (n - n // 6) + ["pneumonia"] * (n // 6))
    rng.shuffle(yy)
    base = np.linspace(40, 200, size, dtype=np.float32)[None, :] * np.ones((size, 1), np.float32)
    X = np.clip(base[None] + rng.normal(0, 25, (n, size, size)), 0, 255).astype(np.uint8)
    X[yy == "pneumonia", size // 4 : size // 2, size // 4 : size // 2] = 230
    return X, yy


def make_clf(epochs: int, **kw: object) -> CXRClassifier:
    return CXRClassifier.from_recipe(
        "hall2020", architecture="resnet50", random_state=0, max_epochs=epochs, **kw
    )


def fit_fold(
    X_tr: np.ndarray, y_tr: np.ndarray, X_te: np.ndarray, epochs: int, members: int, interval: int
) -> tuple[float, float, dict[str, float]]:
    """One fold in a worker process: fit and held-out prediction times, the worker's cache stats."""
    ens = SnapshotEnsembleClassifier(
        make_clf(epochs), n_snapshots=members, interval=interval, policy="last", max_epochs=epochs
    )
    t0 = time.perf_counter()
    ens.fit(X_tr, y_tr)
    t1 = time.perf_counter()
    ens.predict_proba(X_te)
    return t1 - t0, time.perf_counter() - t1, {**feature_cache_stats(), "pid": os.getpid()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="3 folds, 30 epochs, 3 snapshots")
    ap.add_argument("--images", type=int, default=204)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--uncached-images", type=int, default=48)
    ap.add_argument(
        "--n-jobs",
        type=int,
        default=2,
        help="worker processes of the parallel cached run (1: skip it)",
    )
    args = ap.parse_args()
    folds, epochs, members, interval = (3, 30, 3, 10) if args.quick else (10, 80, 7, 10)
    header(
        f"B1 training: {folds}-fold CV x {members}-snapshot ensembles x {epochs} epochs, "
        f"frozen ResNet50, {args.images} images at {args.size} px"
    )
    X, y = synthetic(args.images, args.size)

    # -- bound: backbone forward passes alone ------------------------------------------------
    clf = make_clf(epochs)
    clf._check_params()
    torch.manual_seed(0)
    net = clf.build_module().eval()
    prep = clf._make_preprocessing()
    images = prepare_images(as_image_source(X), prep)

    def passes(net: torch.nn.Module, tuned: bool) -> float:
        """All images x 2 views through the backbone: plain eager, or with the settings
        cxrkit's feature computation uses (channels-last, freed buffers kept for reuse)."""
        fmt = torch.channels_last if tuned else torch.contiguous_format
        net.to(memory_format=fmt)
        t0 = time.perf_counter()
        with torch.inference_mode(), retain_freed_memory(tuned):
            for flip in (False, True):
                for s in range(0, len(images), 32):
                    xb = torch.stack([to_tensor(im, prep, flip) for im in images[s : s + 32]])
                    net.features(xb.contiguous(memory_format=fmt))
        return time.perf_counter() - t0

    bound = passes(net, tuned=False)
    n_passes = 2 * len(images)
    print(
        f"bound: {n_passes} backbone forward passes: {bound:.1f} s "
        f"({60 * n_passes / bound:.0f} images/min)"
    )
    bound_tuned = passes(net, tuned=True)
    print(
        f"bound, tuned (channels-last, tune_malloc, as the cache computes them): "
        f"{bound_tuned:.1f} s ({60 * n_passes / bound_tuned:.0f} images/min)"
    )
    del net

    # -- cached protocol --------------------------------------------------------------------
    clear_feature_cache()
    cv = StratifiedKFold(folds, shuffle=True, random_state=0)
    t_fit = t_pred = 0.0
    for tr, te in cv.split(X, y):
        ens = SnapshotEnsembleClassifier(
            make_clf(epochs),
            n_snapshots=members,
            interval=interval,
            policy="last",
            max_epochs=epochs,
        )
        t0 = time.perf_counter()
        ens.fit(X[tr], y[tr])
        t1 = time.perf_counter()
        ens.predict_proba(X[te])
        t_pred += time.perf_counter() - t1
        t_fit += t1 - t0
    stats = feature_cache_stats()
    print(
        f"cached: {folds} folds x {epochs} epochs x {members} snapshots, training: {t_fit:.1f} s "
        f"(= {t_fit / bound:.2f} x bound); held-out prediction ({len(X)} images, features "
        f"from the cache, heads x {members}): {t_pred:.1f} s; training + prediction = "
        f"{(t_fit + t_pred) / bound:.2f} x bound"
    )
    print(f"cache stats: {stats}")
    inrun = stats["compute_seconds"]
    print(
        f"in-run bound (the {stats['misses']} backbone passes inside the cached run, same load): "
        f"{inrun:.1f} s; everything else ({folds} network constructions, fingerprints, head "
        f"training, snapshots): {t_fit - inrun:.1f} s; cached/in-run bound = {t_fit / inrun:.2f}x"
    )

    # -- cached, folds in worker processes ---------------------------------------------------
    t_par = None
    if args.n_jobs > 1:
        from joblib import Parallel, delayed

        splits = list(cv.split(X, y))
        t0 = time.perf_counter()
        res = Parallel(n_jobs=args.n_jobs)(
            delayed(fit_fold)(X[tr], y[tr], X[te], epochs, members, interval) for tr, te in splits
        )
        t_par = time.perf_counter() - t0
        fits = sum(r[0] for r in res)
        preds = sum(r[1] for r in res)
        # Each worker's counters are cumulative: its largest report is its total.
        totals: dict[int, dict[str, float]] = {}
        for r in res:
            pid = int(r[2]["pid"])
            if r[2]["misses"] + r[2]["hits"] >= sum(
                totals.get(pid, {"hits": -1, "misses": 0})[k] for k in ("hits", "misses")
            ):
                totals[pid] = r[2]
        misses = int(sum(t["misses"] for t in totals.values()))
        disk = int(sum(t["disk_hits"] for t in totals.values()))
        print(
            f"cached, {args.n_jobs} worker processes (joblib, 1 torch thread each, features "
            f"shared on disk): {folds} folds, fit + held-out prediction, worker start-up "
            f"included: {t_par:.1f} s wall (= {t_par / bound:.2f} x bound, "
            f"{t_par / bound_tuned:.2f} x tuned bound); sum over folds: fit {fits:.1f} s, "
            f"prediction {preds:.1f} s; {len(totals)} workers computed {misses} backbone passes "
            f"(the first folds run side by side, before the store has them) and read {disk} "
            "features from the shared store"
        )

    # -- uncached skorch loop, one epoch, extrapolated -------------------------------------------
    n_u = min(args.uncached_images, len(X))
    idx = np.arange(n_u)
    if len(set(y[idx])) < 2:
        idx[-1] = int(np.flatnonzero(y != y[idx[0]])[0])
    un = make_clf(1, feature_cache=False)
    t0 = time.perf_counter()
    un.fit(X[idx], y[idx])
    t_epoch_img = (time.perf_counter() - t0) / n_u
    per_fold_train = len(X) * (folds - 1) / folds
    extrapolated = t_epoch_img * per_fold_train * epochs * folds
    print(
        f"uncached: 1 epoch on {n_u} images took {t_epoch_img * n_u:.1f} s "
        f"({t_epoch_img * 1000:.0f} ms/image, incl. network construction); "
        f"EXTRAPOLATED to {folds} folds x {epochs} epochs x {per_fold_train:.0f} images: "
        f"{extrapolated:.0f} s = {extrapolated / 3600:.2f} h"
    )
    per_pass_cached = inrun / max(1, stats["misses"])
    print(
        f"ratios: uncached/cached = {extrapolated / t_fit:.0f}x (extrapolated); "
        f"cached/bound = {t_fit / bound:.2f}x; cached/tuned bound = {t_fit / bound_tuned:.2f}x; "
        + (
            f"cached with {args.n_jobs} workers (wall, fit + prediction)/tuned bound = "
            f"{t_par / bound_tuned:.2f}x; "
            if t_par is not None
            else ""
        )
        + f"load drift: a backbone pass cost "
        f"{1000 * bound / n_passes:.0f} ms in the bound phase, {1000 * per_pass_cached:.0f} ms "
        f"inside the cached run, {1000 * t_epoch_img:.0f} ms in the uncached phase"
    )


if __name__ == "__main__":
    main()

"""B4 - training an unfrozen network: ``hall2020_cnn`` (100 px, batch 16), images/second.

Baseline, in the same process: a plain eager PyTorch training loop (RMSprop, BCE) on
contiguous tensors, with the network's layers in the published order (activation, then
pooling; every row computed). Variants: cxrkit's ``hall2020_cnn`` (the same function with
pooling before the activations and the never-used border rows skipped; ``order``), with its
first stage (conv1 -> pool -> activation) in cache-sized chunks of at most 8 MiB of conv1
output (``chunk``; ``CXRClassifier`` trains with it by default); conv1's sparse weight
gradient (``sparse``: :func:`cxrkit.architectures._conv_pool.max_pooled_conv2d`, on by
default; without it the "order" variants run the plain autograd backward);
channels-last memory format; the grayscale-aware first convolution
(:func:`cxrkit.architectures.grayscale_first_conv`); ``malloc``: the steps run inside
:func:`cxrkit._memory.retain_freed_memory` (freed buffers stay in glibc's heap instead of
being unmapped and page-faulted in again every step, as ``CXRClassifier.fit`` does by
default; the baseline runs with glibc's defaults, as plain PyTorch does); combinations; and, with
``--compile``, ``torch.compile`` of the fastest eager variant (compilation time reported
separately, not in the rate). Each rate is the median of ``--repeats`` timed runs of
``--steps`` steps. Loss trajectories: every variant is trained from the same initial
weights on the same batches with dropout switched off (so that only arithmetic differs)
and the largest per-step loss difference to the baseline is printed. Finally the
end-to-end ``CXRClassifier.fit`` rate (skorch loop, data pipeline) with the best options,
against an eager loop timed again in each round between the fits (interleaved, so that a
change of the host's load hits the fits and their baseline alike).

Run:  PYTHONPATH=src python benchmarks/b4_hall2020_training.py [--quick] [--compile]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import types
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from _common import header  # noqa: E402

import cxrkit  # noqa: E402
from cxrkit._memory import retain_freed_memory  # noqa: E402
from cxrkit.architectures import create_architecture, grayscale_first_conv  # noqa: E402
from cxrkit.estimators import CXRClassifier  # noqa: E402


def published_order(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Hall2020Features.forward as the Keras model lists the layers."""
    a = self.drop_a(self.pool3(self.act(self.conv2(self.pool3(self.act(self.conv1(x)))))))
    h = torch.cat([self.drop_b(self.pool10(self.act(x))), a], dim=1)
    return self.pool3(torch.relu(self.conv4(h))).permute(0, 2, 3, 1).flatten(1)


def build(variant: str, dropout: bool = True) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    net = create_architecture("hall2020_cnn")
    if "order" not in variant:
        net.backbone.forward = types.MethodType(published_order, net.backbone)
    else:
        net.backbone.chunk_bytes = net.backbone.DEFAULT_CHUNK_BYTES if "chunk" in variant else None
        net.backbone.sparse_backward = "sparse" in variant
    if not dropout:
        for m in net.modules():
            if isinstance(m, nn.Dropout):
                m.p = 0.0
    if "gray" in variant:
        net = grayscale_first_conv(net, inplace=True)
    if "cl" in variant:
        net = net.to(memory_format=torch.channels_last)
    fwd = torch.compile(net) if "compile" in variant else net
    return net, fwd


def train(
    variant: str,
    X: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    dropout: bool = True,
    fwd_net: tuple[nn.Module, nn.Module] | None = None,
) -> tuple[float, list[float]]:
    net, fwd = fwd_net or build(variant, dropout)
    opt = torch.optim.RMSprop(net.parameters(), lr=1e-4, alpha=0.9, eps=1e-8)
    lossf = nn.BCEWithLogitsLoss()
    cl = "cl" in variant
    batches = []
    for s in range(steps):
        i = (s * 16) % (len(X) - 15)
        xb = X[i : i + 16]
        batches.append(
            (xb.contiguous(memory_format=torch.channels_last) if cl else xb, y[i : i + 16])
        )
    net.train()
    losses = []
    with retain_freed_memory("malloc" in variant):
        t0 = time.perf_counter()
        for xb, yb in batches:
            loss = lossf(fwd(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        elapsed = time.perf_counter() - t0
    return steps * 16 / elapsed, losses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="10 steps, 2 repeats")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--compile", action="store_true", help="also try torch.compile")
    args = ap.parse_args()
    steps, repeats = (10, 2) if args.quick else (args.steps, args.repeats)
    header(f"B4 hall2020_cnn training, 100 px, batch 16, {steps} steps x median of {repeats}")
    g = torch.Generator().manual_seed(0)
    X = torch.rand(16 * steps, 1, 100, 100, generator=g).expand(-1, 3, -1, -1).contiguous()
    y = (torch.rand(16 * steps, generator=g) > 0.5).float()

    variants = [
        "eager",
        "cl",
        "gray+cl",
        "order",
        "order+chunk",
        "order+cl",
        "order+gray",
        "order+gray+cl",
        "order+chunk+gray+cl",
        "order+chunk+gray+cl+sparse",
        "eager+malloc",
        "order+gray+cl+malloc",
        "order+chunk+gray+cl+malloc",
        "order+chunk+gray+cl+sparse+malloc",
    ]
    rates: dict[str, float] = {}
    runs: dict[str, list[float]] = {v: [] for v in variants}
    train("eager", X, y, 3)  # warm-up
    for _ in range(repeats):  # interleaved, so that load changes hit every variant alike
        for v in variants:
            runs[v].append(train(v, X, y, steps)[0])
    rates = {v: statistics.median(r) for v, r in runs.items()}
    if args.compile:
        best = max(variants[1:], key=rates.__getitem__)
        v = best + "+compile"
        net, fwd = build(v)
        t0 = time.perf_counter()
        train(v, X, y, 2, fwd_net=(net, fwd))  # triggers compilation
        print(
            f"torch.compile of {best}: compilation and first steps {time.perf_counter() - t0:.0f} s"
        )
        rates[v] = statistics.median(
            train(v, X, y, steps, fwd_net=(net, fwd))[0] for _ in range(repeats)
        )
        variants.append(v)

    _, ref = train("eager", X, y, steps, dropout=False)
    base = rates["eager"]
    for v in variants:
        if "compile" in v:
            diff = float("nan")
        else:
            _, losses = train(v, X, y, steps, dropout=False)
            diff = max(abs(a - b) for a, b in zip(losses, ref))
        print(
            f"{rates[v]:7.1f} images/s ({rates[v] / base:4.2f} x eager)  {v:26s} "
            f"max |loss - eager loss| over {steps} steps (dropout off): {diff:.2e}"
        )
    print(f"eager loss trajectory (dropout off): {np.round(ref, 4).tolist()}")

    # end to end through the estimator (skorch loop, data pipeline, hflip augmentation,
    # cyclic learning rate): CXRClassifier's defaults against the same eager baseline
    rng = np.random.default_rng(0)
    Xi = rng.integers(0, 255, (16 * steps, 100, 100), dtype=np.uint8)
    yi = np.array([0, 1] * (8 * steps))
    configs = (
        (
            "CXRClassifier, every speed option off (cxrkit layer order, unchunked)",
            {
                "config": {"grayscale_conv": False, "channels_last": False, "tune_malloc": False},
                "module__chunk_bytes": None,
                "module__sparse_backward": False,
            },
        ),
        (
            "CXRClassifier, sparse_backward=False (dense conv-pool gradients)",
            {"module__sparse_backward": False},
        ),
        (
            "CXRClassifier defaults (sparse conv-pool gradients, chunked first stage, "
            "grayscale_conv, channels_last, tune_malloc: 'auto')",
            {},
        ),
    )
    clfs = {}
    switches: dict[str, dict] = {}
    for label, kw in configs:
        kw = dict(kw)
        switches[label] = kw.pop("config", {})
        clf = CXRClassifier.from_recipe(
            "hall2020", architecture="hall2020_cnn", max_epochs=1, random_state=0, **kw
        )
        with cxrkit.config_context(**switches[label]):
            clf.fit(Xi[:32], yi[:32])  # warm-up
        clf.set_params(max_epochs=2)
        clfs[label] = clf
    ts: dict[str, list[float]] = {label: [] for label in clfs}
    epochs: dict[str, list[float]] = {label: [] for label in clfs}
    eager_now = []
    for _ in range(repeats):  # interleaved with an eager loop, so each ratio has a same-time base
        eager_now.append(train("eager", X, y, steps)[0])
        for label, clf in clfs.items():
            t0 = time.perf_counter()
            with cxrkit.config_context(**switches[label]):
                clf.fit(Xi, yi)
            ts[label].append(time.perf_counter() - t0)
            epochs[label] += list(clf.history_[:, "dur"])  # skorch's per-epoch wall time
    base_now = statistics.median(eager_now)
    print(
        f"{base_now:7.1f} images/s (1.00 x eager)  eager loop, measured again between the fits "
        "below (their base)"
    )
    for label in clfs:
        r = 2 * len(Xi) / statistics.median(ts[label])
        r_epoch = len(Xi) / statistics.median(epochs[label])
        print(
            f"{r:7.1f} images/s ({r / base_now:4.2f} x eager)  {label} (2-epoch fits, incl. "
            f"setup); epochs alone (skorch's 'dur'): {r_epoch:.1f} images/s "
            f"({r_epoch / base_now:4.2f} x)"
        )


if __name__ == "__main__":
    main()

"""A convolution followed by non-overlapping max pooling, with a sparse weight gradient.

``maxpool(conv(x, W) + b)`` with pooling windows that do not overlap (kernel ==
stride) passes each window's gradient to exactly one convolution output: the
window's maximum. The convolution's full output-gradient map is therefore
zero everywhere except at those maxima (1 value in ``pool * pool``), yet the
plain autograd graph

* keeps the whole convolution output alive until the backward pass (for the
  shape of ``max_pool2d``'s backward),
* zero-fills a gradient map the size of that output and scatters the pooled
  gradient into it, and
* runs the convolution's dense weight gradient over it, ``pool * pool`` times
  more multiply-adds than the non-zero entries need.

:func:`max_pooled_conv2d` computes the same function and the same gradients
without any of these: the forward pass keeps only the input and the window
maxima's positions, and the backward pass adds, for every pooled output, its
gradient times the input patch under its maximum to the weight gradient. That
sum is a small compiled loop (:mod:`numba`, ``nogil``) run on the CPU in as
many threads as PyTorch uses; it is taken only where it applies (CPU,
``float32``, stride 1, no padding or dilation, the input needs no gradient,
pooling kernel == stride) and otherwise the plain operators run.

For the first stage of ``hall2020_cnn`` (conv 5x5x64 on one channel after the
grayscale fold, max-pool 3) this makes a whole training step about 1.3x
faster on a 2-core CPU (``benchmarks/b4_hall2020_training.py``). The forward
result is the plain operators' (the same convolution and pooling kernels run:
bit for bit on the same batches); the weight and bias gradients agree within float rounding
(~1e-6 relative: they are summed in a different order), which ``tests/
architectures/test_conv_pool.py`` checks against the literal layers.
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["max_pooled_conv2d", "sparse_backward_available"]

logger = logging.getLogger(__name__)

_KERNEL: Any = None
_KERNEL_ERROR: str | None = None
_POOL: ThreadPoolExecutor | None = None
_POOL_SIZE = 0


def _load_kernel() -> Any:
    """The compiled weight-gradient loop, or ``None`` (the reason is kept in ``_KERNEL_ERROR``)."""
    global _KERNEL, _KERNEL_ERROR
    if _KERNEL is not None or _KERNEL_ERROR is not None:
        return _KERNEL
    try:
        from ._conv_pool_kernel import sparse_weight_grad
    except ImportError as exc:  # pragma: no cover - numba is a dependency
        _KERNEL_ERROR = f"numba is not importable ({exc})"
        logger.info("max_pooled_conv2d: %s; the plain autograd operators run instead.",
                    _KERNEL_ERROR)
        return None
    _KERNEL = sparse_weight_grad
    return _KERNEL


def sparse_backward_available() -> bool:
    """Whether the compiled sparse weight gradient can run here (``numba`` importable)."""
    return _load_kernel() is not None


def _pool(threads: int) -> ThreadPoolExecutor:
    global _POOL, _POOL_SIZE
    if _POOL is None or _POOL_SIZE < threads:
        if _POOL is not None:
            _POOL.shutdown(wait=False)
        _POOL = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="cxrkit-conv-pool")
        _POOL_SIZE = threads
    return _POOL


def _weight_grad(x: torch.Tensor, g: torch.Tensor, idx: torch.Tensor, kernel_size: tuple[int, int],
                 pool: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(dW, db)`` from the pooled gradient ``g`` and the maxima's positions ``idx`` (NCHW)."""
    kern = _load_kernel()
    n, c = x.shape[:2]
    kh, kw = kernel_size
    n_out = g.shape[1]
    xs = x.detach().contiguous().numpy()
    gs = g.detach().permute(0, 2, 3, 1).contiguous().numpy()  # free when g is channels-last
    ids = idx.permute(0, 2, 3, 1).contiguous().numpy()
    kp = math.ceil(c * kh * kw / 8) * 8  # whole SIMD vectors
    threads = max(1, min(torch.get_num_threads(), n))
    dws = np.zeros((threads, n_out, kp), np.float32)
    dbs = np.zeros((threads, n_out), np.float32)
    bounds = np.linspace(0, n, threads + 1).astype(int)
    if threads == 1 or not kern.signatures:  # the first call compiles (or loads) in this thread
        bad = [kern(xs, gs, ids, kh, kw, pool, bounds[0], bounds[1], dws[0], dbs[0])]
        first = 1
    else:
        bad, first = [], 0
    if threads > first:
        futures = [_pool(threads).submit(kern, xs, gs, ids, kh, kw, pool, bounds[t], bounds[t + 1],
                                         dws[t], dbs[t]) for t in range(first, threads)]
        bad += [f.result() for f in futures]
    if sum(bad):
        raise RuntimeError(f"max_pooled_conv2d: {sum(bad)} pooling indices lie outside their "
                           "window; the pooling is not the non-overlapping max-pool it was given.")
    dw = torch.from_numpy(dws.sum(0)[:, : c * kh * kw]).reshape(n_out, c, kh, kw)
    return dw, torch.from_numpy(dbs.sum(0))


class _MaxPooledConv2d(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                pool: int, chunk: int) -> torch.Tensor:
        outs, ids = [], []
        for part in x.split(chunk):
            out, idx = F.max_pool2d_with_indices(F.conv2d(part, weight, bias), (pool, pool))
            outs.append(out)
            ids.append(idx)
        out = outs[0] if len(outs) == 1 else torch.cat(outs)
        idx = ids[0] if len(ids) == 1 else torch.cat(ids)
        ctx.save_for_backward(x, idx)
        ctx.pool, ctx.kernel_size, ctx.has_bias = pool, tuple(weight.shape[-2:]), bias is not None
        ctx.weight_dtype = weight.dtype
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        x, idx = ctx.saved_tensors
        dw, db = _weight_grad(x, grad, idx, ctx.kernel_size, ctx.pool)
        return (None, dw.to(ctx.weight_dtype), db.to(ctx.weight_dtype) if ctx.has_bias else None,
                None, None)


def _applies(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> str | None:
    """Why the sparse path cannot run (``None`` when it can)."""
    if not torch.is_grad_enabled() or not (weight.requires_grad or
                                           (bias is not None and bias.requires_grad)):
        return "no parameter gradient is needed"
    if x.requires_grad:
        return "the input needs a gradient"
    if x.device.type != "cpu" or weight.device.type != "cpu":
        return "not on the CPU"
    if x.dtype != torch.float32 or weight.dtype != torch.float32:
        return "not float32"
    if torch.is_autocast_enabled("cpu"):
        return "autocast is on"
    if _load_kernel() is None:
        return _KERNEL_ERROR
    return None


def max_pooled_conv2d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, pool: int,
                      *, chunk: int | None = None, sparse_backward: bool = True) -> torch.Tensor:
    """``max_pool2d(conv2d(x, weight, bias), pool)``, with a sparse weight gradient where it applies.

    Parameters
    ----------
    x : Tensor of shape (N, C, H, W)
        Input (stride 1, no padding, no dilation).
    weight, bias : Tensor
        Convolution parameters (``bias`` may be ``None``).
    pool : int
        Pooling kernel and stride (non-overlapping windows, floor mode).
    chunk : int or None, default=None
        Images convolved at once (``None``: all); only the pooled result is kept.
    sparse_backward : bool, default=True
        ``False`` always runs the plain operators.

    Returns
    -------
    Tensor of shape (N, O, (H - kh + 1) // pool, (W - kw + 1) // pool)
    """
    chunk = chunk or max(1, x.shape[0])
    if sparse_backward and _applies(x, weight, bias) is None:
        return _MaxPooledConv2d.apply(x, weight, bias, pool, chunk)
    parts = [F.max_pool2d(F.conv2d(part, weight, bias), pool) for part in x.split(chunk)]
    return parts[0] if len(parts) == 1 else torch.cat(parts)

"""A convolution followed by non-overlapping max pooling, with sparse gradients.

``maxpool(conv(x, W) + b)`` with pooling windows that do not overlap (kernel ==
stride) passes each window's gradient to exactly one convolution output: the
window's maximum. The convolution's output-gradient map is therefore zero
everywhere except at those maxima (1 value in ``pool * pool``), yet the plain
autograd graph

* keeps the whole convolution output alive until the backward pass (for the
  shape of ``max_pool2d``'s backward),
* zero-fills a gradient map the size of that output and scatters the pooled
  gradient into it, and
* runs the convolution's dense weight (and input) gradient over it, ``pool *
  pool`` times more multiply-adds than the non-zero entries need.

:func:`max_pooled_conv2d` computes the same function and the same gradients
without any of these. The forward pass runs the same convolution and pooling
kernels and keeps only the input and the window maxima's positions; the
backward pass adds, for every pooled output, its gradient times the input patch
under its maximum to the weight gradient (and that output channel's kernel to
the input gradient under it). These sums are small compiled loops
(:mod:`cxrkit.architectures._conv_pool_kernel`, :mod:`numba`, ``nogil``) run in
as many threads as PyTorch uses, on disjoint images. They are taken only where
they apply (CPU, ``float32``, no autocast, stride 1, no padding or dilation, a
parameter needs a gradient, pooling kernel == stride); otherwise the plain
operators run.

``hall2020_cnn`` puts a 3x3 max-pool after each of its three convolutions
(:class:`~cxrkit.architectures.Hall2020Features`); with this a training step
is 1.7x faster at one thread (interleaved steps, batch 16; 1.25x at two
threads on a 2-vCPU host, see ``docs/performance.md``). The forward result is
the plain operators' (bit for bit on the same batches and memory layout); the
gradients agree within float rounding (~1e-6 relative: they are summed in
another order), which ``tests/architectures/test_conv_pool.py`` checks against
autograd, ties in the pooling included.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

__all__ = ["max_pooled_conv2d", "sparse_backward_available"]

logger = logging.getLogger(__name__)

_KERNEL: Any = None
_KERNEL_ERROR: str | None = None
_POOL: ThreadPoolExecutor | None = None
_POOL_SIZE = 0


def _load_kernel() -> Any:
    """Return the compiled loops (a module), or ``None`` (the reason is kept in ``_KERNEL_ERROR``)."""
    global _KERNEL, _KERNEL_ERROR
    if _KERNEL is not None or _KERNEL_ERROR is not None:
        return _KERNEL
    try:
        from . import _conv_pool_kernel
    except ImportError as exc:  # pragma: no cover - numba is a dependency
        _KERNEL_ERROR = f"numba is not importable ({exc})"
        logger.info(
            "max_pooled_conv2d: %s; the plain autograd operators run instead.", _KERNEL_ERROR
        )
        return None
    _KERNEL = _conv_pool_kernel
    return _KERNEL


def sparse_backward_available() -> bool:
    """Whether the compiled sparse gradients can run here (``numba`` importable)."""
    return _load_kernel() is not None


def _forget_pool() -> None:  # a forked child does not inherit the pool's threads
    global _POOL, _POOL_SIZE
    _POOL, _POOL_SIZE = None, 0


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def _pool(threads: int) -> ThreadPoolExecutor:
    global _POOL, _POOL_SIZE
    if _POOL is None or _POOL_SIZE < threads:
        if _POOL is not None:
            _POOL.shutdown(wait=False)
        _POOL = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="cxrkit-conv-pool")
        _POOL_SIZE = threads
    return _POOL


def _run_split(kernel: Any, n: int, args: Callable[[int, int, int], tuple]) -> int:
    """Run ``kernel(*args(t, n0, n1))`` over the images split into PyTorch's thread count."""
    threads = max(1, min(torch.get_num_threads(), n))
    bounds = np.linspace(0, n, threads + 1).astype(int)
    bad, first = [], 0
    if threads == 1 or not kernel.signatures:  # the first call compiles (or loads) in this thread
        bad.append(kernel(*args(0, bounds[0], bounds[1])))
        first = 1
    if threads > first:
        futures = [
            _pool(threads).submit(kernel, *args(t, bounds[t], bounds[t + 1]))
            for t in range(first, threads)
        ]
        bad += [f.result() for f in futures]
    return threads if sum(bad) == 0 else -sum(bad)


def _grads(
    x: torch.Tensor,
    weight: torch.Tensor,
    g: torch.Tensor,
    idx: torch.Tensor,
    pool: int,
    need_dx: bool,
) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
    """``(dx, dW, db)`` from the pooled gradient ``g`` and the maxima's positions ``idx``."""
    kern = _load_kernel()
    n, c, h, w_in = x.shape
    n_out, _, kh, kw = weight.shape
    threads = max(1, min(torch.get_num_threads(), n))
    gs = g.detach().permute(0, 2, 3, 1).numpy()  # views: the loops read any strides
    ids = idx.permute(0, 2, 3, 1).numpy()
    if need_dx or c >= 8:  # channels-last loops: contiguous runs of KW * C values
        xs = np.ascontiguousarray(x.detach().permute(0, 2, 3, 1).numpy())  # a view if channels-last
        ws = weight.detach().permute(0, 2, 3, 1).contiguous().numpy()
        dws = np.zeros((threads, n_out, kh, kw, c), np.float32)
        dbs = np.zeros((threads, n_out), np.float32)
        dx = np.zeros((n, h, w_in, c) if need_dx else (1, 1, 1, c), np.float32)
        done = _run_split(
            kern.sparse_grads_channels_last,
            n,
            lambda t, n0, n1: (xs, gs, ids, ws, pool, n0, n1, dws[t], dbs[t], dx, need_dx),
        )
        dw = torch.from_numpy(dws[: max(done, 1)].sum(0)).permute(0, 3, 1, 2)
        dx_t = torch.from_numpy(dx).permute(0, 3, 1, 2) if need_dx else None
    else:  # few input channels (conv1 on a grayscale image): a table of window patches
        xs = x.detach().contiguous().numpy()
        kp = math.ceil((c * kh * kw + 1) / 8) * 8  # + the bias column; whole SIMD vectors
        dwp = np.zeros((threads, n_out, kp), np.float32)
        dbs = np.zeros((threads, n_out), np.float32)
        gs, ids = np.ascontiguousarray(gs), np.ascontiguousarray(ids)
        done = _run_split(
            kern.sparse_weight_grad,
            n,
            lambda t, n0, n1: (xs, gs, ids, kh, kw, pool, n0, n1, dwp[t], dbs[t]),
        )
        dw = torch.from_numpy(dwp[: max(done, 1)].sum(0)[:, : c * kh * kw]).reshape(
            n_out, c, kh, kw
        )
        dx_t = None
    if done < 0:
        raise RuntimeError(
            f"max_pooled_conv2d: {-done} pooling indices lie outside their "
            "window; the pooling is not the non-overlapping max-pool it was given."
        )
    return dx_t, dw, torch.from_numpy(dbs[:done].sum(0))


class _MaxPooledConv2d(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        x: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        pool: int,
        chunk: int,
    ) -> torch.Tensor:
        if x.shape[1] >= 8:  # the backward loops read the input channels-last
            x = x.contiguous(memory_format=torch.channels_last)
        outs, ids = [], []
        for part in x.split(chunk):
            out, idx = F.max_pool2d_with_indices(F.conv2d(part, weight, bias), (pool, pool))
            outs.append(out)
            ids.append(idx)
        out = outs[0] if len(outs) == 1 else torch.cat(outs)
        idx = ids[0] if len(ids) == 1 else torch.cat(ids)
        ctx.save_for_backward(x, weight, idx)
        ctx.pool, ctx.has_bias = pool, bias is not None
        return out

    @staticmethod
    @once_differentiable  # the loops are not differentiable: a second derivative is an error
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        x, weight, idx = ctx.saved_tensors
        dx, dw, db = _grads(x, weight, grad, idx, ctx.pool, need_dx=ctx.needs_input_grad[0])
        return (dx, dw.to(weight.dtype), db.to(weight.dtype) if ctx.has_bias else None, None, None)


def _applies(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> str | None:
    """Why the sparse path cannot run (``None`` when it can)."""
    if not torch.is_grad_enabled() or not (
        weight.requires_grad or (bias is not None and bias.requires_grad)
    ):
        return "no parameter gradient is needed"
    if x.device.type != "cpu" or weight.device.type != "cpu":
        return "not on the CPU"
    if x.dtype != torch.float32 or weight.dtype != torch.float32:
        return "not float32"
    if torch.is_autocast_enabled("cpu"):
        return "autocast is on"
    if _load_kernel() is None:
        return _KERNEL_ERROR
    return None


def max_pooled_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    pool: int,
    *,
    chunk: int | None = None,
    sparse_backward: bool = True,
) -> torch.Tensor:
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

"""The compiled loop of :func:`cxrkit.architectures._conv_pool.max_pooled_conv2d`'s backward pass.

Imported lazily: importing :mod:`numba` costs about a second, and the first call
compiles the loop (a few seconds; ``cache=True`` keeps the machine code next to
this file, or in numba's cache directory, for later processes).
"""

import numba
import numpy as np

__all__ = ["sparse_weight_grad"]


@numba.njit(inline="always")
def _in_window(off, wc, pool):  # type: ignore[no-untyped-def]
    """Row and column, within its pooling window, of a maximum ``off`` values past the window's
    first (flat, rows ``wc`` long), found without a branch; ``(-1, -1)`` if it lies outside."""
    dy = 0
    for t in range(1, pool):
        dy += off >= t * wc
    dx = off - dy * wc
    if dx < 0 or dx >= pool:
        return -1, -1
    return dy, dx


@numba.njit(inline="always")
def _pooled(g, idx, db, n, py, px, o, base, wc, pool):  # type: ignore[no-untyped-def]
    """Output channel ``o``'s pooled gradient at window ``(py, px)`` of image ``n`` (added to
    its bias gradient) and its maximum's row and column in the window (see ``_in_window``)."""
    gv = g[n, py, px, o]
    db[o] += gv
    ry, rx = _in_window(idx[n, py, px, o] - base, wc, pool)
    return gv, ry, rx


@numba.njit(nogil=True, cache=True, fastmath={"contract"})
def sparse_weight_grad(x, g, idx, kh, kw, pool, n0, n1, dw, db):  # type: ignore[no-untyped-def]
    """Add images ``n0:n1``'s weight and bias gradients to ``dw`` and ``db``; return the
    number of pooling indices found outside their window (0 unless the input is wrong).
    """
    # x (N, C, H, W): the convolution's input; g, idx (N, PH, PW, O): the pooled
    # gradient and the flat position (in the HC x WC convolution map) of each
    # window's maximum; dw (O, KP) with KP >= C*kh*kw and db (O,): accumulators.
    c_in = x.shape[1]
    wc = x.shape[3] - kw + 1
    ph, pw, n_out = g.shape[1], g.shape[2], g.shape[3]
    kp = dw.shape[1]
    pp = pool * pool
    patches = np.zeros((pp, kp), np.float32)
    bad = 0
    for n in range(n0, n1):
        for py in range(ph):
            for px in range(pw):
                base = pool * py * wc + pool * px
                for j in range(pp):
                    y0 = pool * py + j // pool
                    x0 = pool * px + j % pool
                    k = 0
                    for c in range(c_in):
                        for a in range(kh):
                            for b in range(kw):
                                patches[j, k] = x[n, c, y0 + a, x0 + b]
                                k += 1
                for o in range(n_out):
                    gv, ry, rx = _pooled(g, idx, db, n, py, px, o, base, wc, pool)
                    if ry < 0:
                        bad += 1
                        continue
                    row = patches[ry * pool + rx]
                    acc = dw[o]
                    for k in range(kp):
                        acc[k] += gv * row[k]
    return bad


@numba.njit(nogil=True, cache=True, fastmath={"contract"})
def sparse_grads_channels_last(x, g, idx, w, pool, n0, n1, dw, db, dx, need_dx):  # type: ignore[no-untyped-def]
    """The same sums as :func:`sparse_weight_grad` for many input channels, and the input's
    gradient; everything channels-last. Return the number of misplaced pooling indices.

    ``x`` and ``dx`` are (N, H, W, C); ``g`` and ``idx`` (N, PH, PW, O); ``w`` (O, KH, KW, C);
    ``dw`` (O, KH, KW, C) and ``db`` (O,) accumulators. Each pooled gradient adds its input
    patch (KH rows of KW * C contiguous values) to its output channel's weight gradient,
    and, when ``need_dx``, that channel's kernel to the input gradient under its maximum.
    """
    wc = x.shape[2] - w.shape[2] + 1
    ph, pw, n_out = g.shape[1], g.shape[2], g.shape[3]
    kh, kw, c_in = w.shape[1], w.shape[2], w.shape[3]
    bad = 0
    for n in range(n0, n1):
        for py in range(ph):
            for px in range(pw):
                base = pool * py * wc + pool * px
                for o in range(n_out):
                    gv, ry, rx = _pooled(g, idx, db, n, py, px, o, base, wc, pool)
                    if ry < 0:
                        bad += 1
                        continue
                    y0 = pool * py + ry
                    x0 = pool * px + rx
                    for a in range(kh):
                        for b in range(kw):
                            src = x[n, y0 + a, x0 + b]
                            acc = dw[o, a, b]
                            for c in range(c_in):
                                acc[c] += gv * src[c]
                            if need_dx:
                                dst = dx[n, y0 + a, x0 + b]
                                wr = w[o, a, b]
                                for c in range(c_in):
                                    dst[c] += gv * wr[c]
    return bad

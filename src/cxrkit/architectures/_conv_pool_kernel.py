"""The compiled loop of :func:`cxrkit.architectures._conv_pool.max_pooled_conv2d`'s backward pass.

Imported lazily: importing :mod:`numba` costs about a second, and the first call
compiles the loop (a few seconds; ``cache=True`` keeps the machine code next to
this file, or in numba's cache directory, for later processes).
"""

import numba
import numpy as np

__all__ = ["sparse_weight_grad", "sparse_grads_channels_last"]


@numba.njit(inline="always")
def _in_window(off, wc, pool):  # type: ignore[no-untyped-def]
    """Row and column, within its pooling window, of a maximum ``off`` values past the window's first (flat, rows ``wc`` long), found without a division; ``(-1, -1)`` if it lies outside."""
    dy = 0
    for t in range(1, pool):
        dy += off >= t * wc
    dx = off - dy * wc
    if dx < 0 or dx >= pool:
        return -1, -1
    return dy, dx


@numba.njit(nogil=True, cache=True, fastmath={"contract"})
def sparse_weight_grad(x, g, idx, kh, kw, pool, n0, n1, dw, db):  # type: ignore[no-untyped-def]
    """Add images ``n0:n1``'s weight and bias gradients to ``dw`` and ``db``; return the number of pooling indices found outside their window (0 unless the input is wrong)."""
    # x (N, C, H, W): the convolution's input; g, idx (N, PH, PW, O): the pooled
    # gradient and the flat position (in the HC x WC convolution map) of each
    # window's maximum; dw (O, KP) with KP > C*kh*kw and db (O,): accumulators.
    #
    # For each row of pooling windows, a table holds every window's pool*pool input
    # patches (C*kh*kw values each, then a 1 whose column of dw sums the bias
    # gradient), copied row by row of the input; each output channel then adds its
    # gradient times the patch under its maximum: one multiply-add over KP
    # contiguous values, which the compiler vectorises.
    c_in = x.shape[1]
    wc = x.shape[3] - kw + 1
    ph, pw, n_out = g.shape[1], g.shape[2], g.shape[3]
    kp = dw.shape[1]
    kb = c_in * kh * kw
    if kp <= kb:
        raise ValueError("sparse_weight_grad: dw needs a column past C*kh*kw for the bias")
    pp = pool * pool
    patches = np.zeros((pw, pp, kp), np.float32)
    patches[:, :, kb] = 1.0
    bad = 0
    for n in range(n0, n1):
        for py in range(ph):
            for dy in range(pool):
                for c in range(c_in):
                    for a in range(kh):
                        src = x[n, c, pool * py + dy + a]
                        k0 = (c * kh + a) * kw
                        for px in range(pw):
                            for dx in range(pool):
                                row = patches[px, dy * pool + dx]
                                x0 = pool * px + dx
                                for b in range(kw):
                                    row[k0 + b] = src[x0 + b]
            for px in range(pw):
                base = pool * py * wc + pool * px
                gw = g[n, py, px]
                iw = idx[n, py, px]
                table = patches[px]
                for o in range(n_out):
                    ry, rx = _in_window(iw[o] - base, wc, pool)
                    if ry < 0:
                        bad += 1
                        continue
                    gv = gw[o]
                    row = table[ry * pool + rx]
                    acc = dw[o]
                    for k in range(kp):
                        acc[k] += gv * row[k]
    for o in range(n_out):
        db[o] += dw[o, kb]
        dw[o, kb] = 0
    return bad


@numba.njit(nogil=True, cache=True, fastmath={"contract"})
def sparse_grads_channels_last(x, g, idx, w, pool, n0, n1, dw, db, dx, need_dx):  # type: ignore[no-untyped-def]
    """Return the same sums as :func:`sparse_weight_grad` for many input channels, and the input's gradient; everything channels-last. Return the number of misplaced pooling indices.

    ``x`` and ``dx`` are C-contiguous (N, H, W, C); ``g`` and ``idx`` (N, PH, PW, O); ``w``
    C-contiguous (O, KH, KW, C); ``dw`` (O, KH, KW, C) and ``db`` (O,) accumulators. Each
    pooled gradient adds its input patch (KH rows of KW * C contiguous values) to its
    output channel's weight gradient, and, when ``need_dx``, that channel's kernel to the
    input gradient under its maximum: one multiply-add loop per kernel row.
    """
    wc = x.shape[2] - w.shape[2] + 1
    ph, pw, n_out = g.shape[1], g.shape[2], g.shape[3]
    kh, kw, c_in = w.shape[1], w.shape[2], w.shape[3]
    rl = kw * c_in
    xr = x.reshape(x.shape[0], x.shape[1], x.shape[2] * c_in)
    dxr = dx.reshape(dx.shape[0], dx.shape[1], dx.shape[2] * c_in)
    wr = w.reshape(n_out, kh, rl)
    dwr = dw.reshape(n_out, kh, rl)
    bad = 0
    for n in range(n0, n1):
        for py in range(ph):
            for px in range(pw):
                base = pool * py * wc + pool * px
                gw = g[n, py, px]
                iw = idx[n, py, px]
                for o in range(n_out):
                    ry, rx = _in_window(iw[o] - base, wc, pool)
                    if ry < 0:
                        bad += 1
                        continue
                    gv = gw[o]
                    db[o] += gv
                    y0 = pool * py + ry
                    s0 = (pool * px + rx) * c_in
                    for a in range(kh):
                        src = xr[n, y0 + a, s0 : s0 + rl]
                        acc = dwr[o, a]
                        for k in range(rl):
                            acc[k] += gv * src[k]
                    if need_dx:
                        for a in range(kh):
                            dst = dxr[n, y0 + a, s0 : s0 + rl]
                            kern = wr[o, a]
                            for k in range(rl):
                                dst[k] += gv * kern[k]
    return bad

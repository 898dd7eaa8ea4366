"""max_pooled_conv2d: the sparse weight gradient of conv -> non-overlapping max-pool."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cxrkit.architectures import _conv_pool, create_architecture, grayscale_first_conv
from cxrkit.architectures._conv_pool import max_pooled_conv2d, sparse_backward_available

needs_numba = pytest.mark.skipif(
    not sparse_backward_available(), reason="the sparse backward needs numba"
)


def _uses_sparse(out: torch.Tensor) -> bool:
    return "MaxPooledConv2d" in type(out.grad_fn).__name__


def _reference(x, w, b, pool):
    out = F.max_pool2d(F.conv2d(x, w, b), pool)
    return out, torch.autograd.grad(
        out.mul(torch.linspace(-1, 2, out.numel()).view_as(out)).sum(),
        [w] + ([b] if b is not None else []),
    )


@needs_numba
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize(
    "channels,kernel,pool,size,chunk,bias,input_grad",
    [
        (1, 5, 3, 40, None, True, False),  # hall2020_cnn's conv1 after the grayscale fold
        (3, 5, 3, 37, 2, True, False),  # three channels, a size the pooling floors, chunks
        (2, 2, 3, 14, None, True, False),  # C*kh*kw = 8: the bias column starts a SIMD vector
        (2, 3, 2, 17, 1, False, True),  # another kernel and pool, no bias, input gradient
        (16, 2, 3, 13, None, True, True),  # hall2020_cnn's conv2 / conv4: many channels
        (16, 2, 3, 13, None, True, False),
    ],
)
def test_forward_is_exact_and_gradients_match_autograd(
    channels, kernel, pool, size, chunk, bias, input_grad, threads
):
    torch.manual_seed(0)
    x = torch.randn(5, channels, size, size, requires_grad=input_grad)
    w = torch.randn(8, channels, kernel, kernel, requires_grad=True)
    b = torch.randn(8, requires_grad=True) if bias else None
    wrt = ([x] if input_grad else []) + [w] + ([b] if b is not None else [])
    ref = F.max_pool2d(F.conv2d(x, w, b), pool)
    weights = torch.linspace(-1, 2, ref.numel()).view_as(ref)
    ref_grads = torch.autograd.grad(ref.mul(weights).sum(), wrt)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        out = max_pooled_conv2d(x, w, b, pool, chunk=chunk)
        assert _uses_sparse(out)
        grads = torch.autograd.grad(out.mul(weights).sum(), wrt)
    finally:
        torch.set_num_threads(before)
    if chunk is None and channels < 8:  # the same kernels on the same batch and layout
        assert torch.equal(out, ref)
    else:  # smaller batches or the channels-last copy may pick another algorithm: rounding
        torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    for g, r in zip(grads, ref_grads):
        assert g.shape == r.shape
        torch.testing.assert_close(g, r, atol=1e-5 * float(r.abs().max()), rtol=1e-5)


@needs_numba
def test_ties_send_the_gradient_where_max_pool_does():
    # a black border: every window position of a constant region ties; torch's
    # max_pool2d gives the gradient to the first maximum, and so must the sparse path
    x = torch.zeros(2, 1, 23, 23)
    x[:, :, 8:, 8:] = torch.rand(2, 1, 15, 15)
    w = torch.randn(4, 1, 5, 5, requires_grad=True)
    b = torch.randn(4, requires_grad=True)
    ref, ref_grads = _reference(x, w, b, 3)
    out = max_pooled_conv2d(x, w, b, 3)
    grads = torch.autograd.grad(
        out.mul(torch.linspace(-1, 2, out.numel()).view_as(out)).sum(), [w, b]
    )
    assert torch.equal(out, ref)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, atol=1e-5 * float(r.abs().max()), rtol=1e-5)


@pytest.mark.parametrize("case", ["no-grad", "float64", "switched-off", "no-numba"])
def test_falls_back_to_the_plain_operators(case, monkeypatch):
    torch.manual_seed(1)
    dtype = torch.float64 if case == "float64" else torch.float32
    x = torch.randn(3, 1, 20, 20, dtype=dtype)
    w = torch.randn(4, 1, 5, 5, dtype=dtype, requires_grad=True)
    b = torch.randn(4, dtype=dtype, requires_grad=True)
    if case == "no-numba":
        monkeypatch.setattr(_conv_pool, "_KERNEL", None)
        monkeypatch.setattr(_conv_pool, "_KERNEL_ERROR", "numba is not importable (test)")
    with torch.set_grad_enabled(case != "no-grad"):
        out = max_pooled_conv2d(x, w, b, 3, sparse_backward=case != "switched-off")
    assert not _uses_sparse(out) if out.grad_fn is not None else case == "no-grad"
    assert torch.equal(out, F.max_pool2d(F.conv2d(x, w, b), 3))


@needs_numba
def test_indices_outside_their_window_are_an_error():
    x = torch.randn(1, 1, 11, 11)
    g = torch.ones(1, 2, 2, 2)
    idx = torch.zeros(1, 2, 2, 2, dtype=torch.int64)  # every window claims position 0
    with pytest.raises(RuntimeError, match="outside their window"):
        _conv_pool._grads(x, torch.randn(2, 1, 5, 5), g, idx, 3, need_dx=False)
    with pytest.raises(RuntimeError, match="outside their window"):
        _conv_pool._grads(x, torch.randn(2, 1, 5, 5), g, idx, 3, need_dx=True)


@needs_numba
def test_hall2020_training_step_matches_the_plain_backward():
    """The network as CXRClassifier trains it: grayscale fold, channels-last, dropout off."""
    torch.manual_seed(0)
    grads = {}
    for sparse in (True, False):
        torch.manual_seed(0)
        net = create_architecture("hall2020_cnn", sparse_backward=sparse)
        net = grayscale_first_conv(net, inplace=True).to(memory_format=torch.channels_last).eval()
        g = torch.rand(6, 1, 100, 100)
        g[:, :, :10] = 0  # a black band: ties in conv1's pooling
        x = g.expand(6, 3, 100, 100).contiguous(memory_format=torch.channels_last)
        out = net(x)
        out.square().sum().backward()
        grads[sparse] = (out.detach(), {k: p.grad.clone() for k, p in net.named_parameters()})
    assert torch.equal(grads[True][0], grads[False][0])
    for k, r in grads[False][1].items():
        torch.testing.assert_close(
            grads[True][1][k], r, atol=1e-5 * float(r.abs().max()), rtol=1e-5, msg=k
        )


@needs_numba
@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_forked_child_gets_its_own_threads():
    import os

    x = torch.randn(4, 16, 9, 9)
    w = torch.randn(4, 16, 2, 2, requires_grad=True)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        max_pooled_conv2d(x, w, None, 3).sum().backward()  # the parent starts its pool
    finally:
        torch.set_num_threads(before)
    assert _conv_pool._POOL is not None
    pid = os.fork()
    if pid == 0:  # child: the inherited pool has no threads; a new one must be made
        code = 1
        try:
            code = 0 if _conv_pool._pool(2).submit(lambda: 42).result(timeout=20) == 42 else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@needs_numba
def test_a_second_derivative_is_an_error_not_a_silent_zero():
    x = torch.randn(2, 1, 11, 11)
    w = torch.randn(3, 1, 5, 5, requires_grad=True)
    out = max_pooled_conv2d(x, w, None, 3)
    (gw,) = torch.autograd.grad(out.square().sum(), [w], create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable|not have been used"):
        torch.autograd.grad(gw.sum(), [w])
    # through the incoming gradient too, which the loops also treat as a constant
    x2 = torch.randn(2, 1, 11, 11)
    out = max_pooled_conv2d(x2, w, None, 3)
    (gw,) = torch.autograd.grad(out.square().sum(), [w], create_graph=True)
    with pytest.raises(RuntimeError, match="once_differentiable"):
        gw.sum().backward()

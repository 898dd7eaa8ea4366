"""cxrkit's RMSprop: torch.optim.RMSprop bit for bit, without subnormal sqrt stalls."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cxrkit.estimators import CXRClassifier, RMSprop, _optim
from cxrkit.estimators._optim import exact_clamp_ok
from cxrkit.estimators._targets import infer_target

FLT_MIN = torch.finfo(torch.float32).tiny


def _grads(step: int, n: int, gen: torch.Generator) -> torch.Tensor:
    """Normal gradients; exact zeros throughout; a dead unit (zero after step 20); tiny
    gradients whose squares straddle the subnormal boundary."""
    g = torch.randn(n, generator=gen)
    g[:8] = 0.0
    if step > 20:
        g[8 : n // 4] = 0.0
    scale = torch.logspace(-25, -15, n // 4)
    g[n // 4 : n // 2] = scale * torch.sign(g[n // 4 : n // 2])
    return g


def _run(
    opt_cls: type[torch.optim.Optimizer], steps: int, **kw: object
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    w = torch.nn.Parameter(torch.randn(400, generator=gen))
    opt = opt_cls([w], **kw)
    for k in range(steps):
        w.grad = _grads(k, w.numel(), gen)
        opt.step()
    return w.detach().clone(), {k: v.clone() for k, v in opt.state[w].items()}


@pytest.mark.parametrize(
    "kw",
    [
        {"lr": 1e-3, "alpha": 0.9, "eps": 1e-8},  # the hall2020 recipe
        {"lr": 1e-2},  # torch's defaults
        {"lr": 1e-3, "alpha": 0.9, "momentum": 0.9},
        {"lr": 1e-3, "alpha": 0.9, "weight_decay": 1e-30},
        {"lr": 1e-3, "alpha": 0.9, "maximize": True, "eps": 1e-6},
    ],
)
def test_identical_to_torch_rmsprop_through_subnormal_averages(kw: dict) -> None:
    w_ref, st_ref = _run(torch.optim.RMSprop, 900, **kw)
    w_new, st_new = _run(RMSprop, 900, **kw)
    v = st_ref["square_avg"]
    subnormal = (v > 0) & (v < FLT_MIN)
    assert subnormal.sum() > 20, "the test must drive running averages into subnormals"
    assert (v == 0).any()
    assert torch.equal(w_new, w_ref)
    assert st_new.keys() == st_ref.keys()
    for k in st_ref:
        assert torch.equal(st_new[k], st_ref[k]), k


def test_fast_path_is_taken_for_the_recipe_and_not_where_it_would_not_be_exact(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    real = _optim._clamped_rmsprop
    monkeypatch.setattr(
        _optim, "_clamped_rmsprop", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    for kw, fast in (
        ({"eps": 1e-8}, True),
        ({"eps": 1e-13}, False),
        ({"eps": 1e-8, "centered": True}, False),
    ):
        calls.clear()
        _run(RMSprop, 3, lr=1e-3, **kw)
        assert bool(calls) is fast, kw
    calls.clear()
    w = torch.nn.Parameter(torch.ones(4, dtype=torch.float64))
    w.grad = torch.ones(4, dtype=torch.float64)
    RMSprop([w], lr=1e-3).step()
    assert not calls


def test_exact_clamp_threshold() -> None:
    assert exact_clamp_ok(1e-8) and exact_clamp_ok(1e-7) and exact_clamp_ok(1e-11)
    assert not exact_clamp_ok(1e-12) and not exact_clamp_ok(0.0)
    assert not exact_clamp_ok(float("nan"))


def test_nan_and_inf_gradients_propagate_as_in_torch() -> None:
    outs = []
    for cls in (torch.optim.RMSprop, RMSprop):
        w = torch.nn.Parameter(torch.zeros(3))
        opt = cls([w], lr=1e-3)
        w.grad = torch.tensor([float("nan"), float("inf"), 1.0])
        opt.step()
        outs.append(w.detach().clone())
    assert torch.equal(outs[0].isnan(), outs[1].isnan())
    assert torch.allclose(outs[0], outs[1], equal_nan=True)


def test_state_dict_round_trips_with_torch_rmsprop() -> None:
    w = torch.nn.Parameter(torch.ones(5))
    ours = RMSprop([w], lr=1e-3, alpha=0.9)
    w.grad = torch.full((5,), 0.5)
    ours.step()
    theirs = torch.optim.RMSprop([w], lr=1e-3, alpha=0.9)
    theirs.load_state_dict(ours.state_dict())
    assert torch.equal(theirs.state[w]["square_avg"], ours.state[w]["square_avg"])


def test_classifier_rmsprop_is_cxrkits() -> None:
    clf = CXRClassifier("tiny_cnn", optimizer="rmsprop")
    clf.device_ = "cpu"
    clf.target_ = infer_target(np.array(["a", "b"]), 2)[0]
    net = clf._make_net(torch.nn.Linear(2, 1), None)
    net.initialize()
    assert isinstance(net.optimizer_, RMSprop)

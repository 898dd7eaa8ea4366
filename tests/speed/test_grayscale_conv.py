"""The grayscale-aware first convolution is exact."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import cxrkit
from cxrkit.architectures import create_architecture
from cxrkit.architectures._grayscale import GrayscaleConv2d, grayscale_first_conv
from cxrkit.estimators import CXRClassifier


def _input(net, n=3, size=None, seed=0):
    p = net.preprocessing
    size = size or p.input_size
    g = torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed))
    mean = torch.tensor(p.mean)[:, None, None]
    std = torch.tensor(p.std)[:, None, None]
    return (g.expand(-1, 3, -1, -1) - mean) / std


@pytest.mark.parametrize("name,size", [("hall2020_cnn", 100), ("tiny_cnn", 16), ("resnet18", 32)])
def test_identical_outputs(name, size):
    torch.manual_seed(0)
    net = create_architecture(name).eval()
    fast = grayscale_first_conv(net).eval()
    assert isinstance(
        fast.backbone.get_submodule("conv1" if name != "tiny_cnn" else "0"), GrayscaleConv2d
    )
    x = _input(net, size=size)
    with torch.no_grad():
        ref, got = net(x), fast(x)
        fref, fgot = net.features(x), fast.features(x)
    scale = max(1.0, float(fref.abs().max()))
    torch.testing.assert_close(got, ref, atol=1e-5 * scale, rtol=1e-5)
    torch.testing.assert_close(fgot, fref, atol=1e-5 * scale, rtol=1e-5)


def test_hall2020_unnormalised_needs_no_offset_map():
    net = create_architecture("hall2020_cnn")
    fast = grayscale_first_conv(net)
    conv = fast.backbone.conv1
    assert not conv.needs_map
    assert conv.weight.shape == (64, 3, 5, 5)  # the state dict is unchanged
    assert set(fast.state_dict()) == set(net.state_dict())
    assert isinstance(net.backbone.conv1, torch.nn.Conv2d)  # the original is untouched (copy)


def test_gradients_flow_and_training_matches():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 255, (16, 24, 24), dtype=np.uint8)
    y = np.array([0, 1] * 8)
    kw = dict(input_size=24, max_epochs=2, batch_size=8, random_state=0)
    with cxrkit.config_context(grayscale_conv=False):
        a = CXRClassifier("tiny_cnn", **kw).fit(X, y)
    with cxrkit.config_context(grayscale_conv=True):
        b = CXRClassifier("tiny_cnn", **kw).fit(X, y)
    np.testing.assert_allclose(a.history_[:, "train_loss"], b.history_[:, "train_loss"], atol=1e-5)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-5)


def test_no_conv_raises():
    from cxrkit.errors import ConfigurationError

    with pytest.raises(
        ConfigurationError,
        match=r"grayscale_first_conv found no first Conv2d "
        r"taking 3 input channels in Linear; it applies to networks whose first "
        r"layer is a Conv2d.",
    ):
        grayscale_first_conv(torch.nn.Linear(3, 2))


def test_auto_uses_the_fast_formats_only_when_the_whole_network_trains():
    from cxrkit.architectures._grayscale import GrayscaleConv2d

    rng = np.random.default_rng(0)
    X = rng.integers(0, 255, (8, 20, 20), dtype=np.uint8)
    y = np.array([0, 1] * 4)
    kw = dict(input_size=16, max_epochs=1, batch_size=4, random_state=0)
    whole = CXRClassifier("tiny_cnn", **kw).fit(X, y)
    first = whole.module_.backbone[0]
    assert isinstance(first, GrayscaleConv2d)
    assert first.weight.is_contiguous(memory_format=torch.channels_last)
    assert whole.net_.channels_last_input is True
    frozen = CXRClassifier("tiny_cnn", freeze="backbone", **kw).fit(X, y)
    assert isinstance(frozen.module_.backbone[0], torch.nn.Conv2d)
    with cxrkit.config_context(grayscale_conv=False, channels_last=False):
        off = CXRClassifier("tiny_cnn", **kw).fit(X, y)
    assert isinstance(off.module_.backbone[0], torch.nn.Conv2d)
    assert off.net_.channels_last_input is False


def test_auto_leaves_architectures_that_do_not_declare_it_alone():
    from cxrkit.architectures import create_architecture

    net = create_architecture("tiny_cnn")
    net.first_conv_reads_input = False  # e.g. a plugin that normalises before its first conv
    clf = CXRClassifier("tiny_cnn")
    assert clf._training_formats(net) == (False, True)
    net.first_conv_reads_input = True
    assert clf._training_formats(net) == (True, True)


def test_format_switches_are_validated():
    from cxrkit.errors import ConfigurationError

    with pytest.raises(
        ConfigurationError,
        match=r"The 'grayscale_conv' configuration key of "
        r"cxrkit must be 'auto', True or False. Got 'yes' instead.",
    ):
        cxrkit.set_config(grayscale_conv="yes")

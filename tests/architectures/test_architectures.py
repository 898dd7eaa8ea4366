"""Built-in architectures: shapes, heads, freezing and weight loading."""

from __future__ import annotations

import math
import os
import pickle
import socket
import warnings
from unittest import mock

import pytest
import torch
import torchvision

from cxrkit._memory import glibc_malloc_available, retain_freed_memory
from cxrkit.architectures import (
    CXRNet,
    _conv_pool,
    create_architecture,
    get_preprocessing,
    hub_checkpoint_dir,
)
from cxrkit.architectures._conv_pool import sparse_backward_available
from cxrkit.errors import WeightsError


def test_hall2020_cnn_matches_published_spec():
    net = create_architecture("hall2020_cnn")
    shapes = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    assert shapes == {
        "backbone.conv1.weight": (64, 3, 5, 5),
        "backbone.conv1.bias": (64,),
        "backbone.conv2.weight": (64, 64, 2, 2),
        "backbone.conv2.bias": (64,),
        "backbone.conv4.weight": (64, 67, 2, 2),
        "backbone.conv4.bias": (64,),
        "head.fc.weight": (1, 576),
        "head.fc.bias": (1,),
    }
    # 4,864 + 16,448 + 17,216 + 577 parameters, as in the authors' Keras model
    assert sum(p.numel() for p in net.parameters()) == 39105
    seen = {}
    net.backbone.conv4.register_forward_hook(
        lambda m, i, o: seen.update(concat=i[0].shape, c4=o.shape)
    )
    net.eval()
    with torch.no_grad():  # the plain layers (training runs conv4 -> pool in one sparse step)
        out = net(torch.rand(2, 3, 100, 100))
    assert out.shape == (2,)
    assert seen["concat"] == (2, 67, 10, 10) and seen["c4"] == (2, 64, 9, 9)
    assert net.features(torch.rand(2, 3, 100, 100)).shape == (2, 576)
    prep = get_preprocessing("hall2020_cnn")
    assert (prep.input_size, prep.interpolation, prep.mean, prep.std) == (
        100,
        "nearest",
        (0.0, 0.0, 0.0),
        (1.0, 1.0, 1.0),
    )


def test_hall2020_flatten_is_channels_last():
    net = create_architecture("hall2020_cnn").eval()
    x = torch.rand(1, 3, 100, 100)
    with torch.no_grad():
        feats = net.features(x)
        b = net.backbone
        a = b.pool3(b.act(b.conv1(x)))
        a = b.pool3(b.act(b.conv2(a)))
        h = b.pool3(torch.relu(b.conv4(torch.cat([b.pool10(b.act(x)), a], 1))))
    # Keras index (i, j, c) -> i*3*64 + j*64 + c
    assert torch.equal(feats[0, 1 * 192 + 2 * 64 + 5], h[0, 5, 1, 2])


@pytest.mark.parametrize("head,n_out", [("hall2020", 1), ("fc", 2)])
def test_heads(head, n_out):
    net = create_architecture("resnet18", head=head).eval()
    last = net.last_layer()
    assert last.out_features == n_out
    if head == "hall2020":
        assert net.head[0].out_features == 64
    out = net(torch.rand(2, 3, 64, 64))
    assert out.shape == (2,)


def test_fc_head_is_two_class_softmax():
    net = create_architecture("resnet18", head="fc").eval()
    feats = torch.rand(4, 512)
    z = net.head.fc(feats)
    softmax_p1 = torch.softmax(z, 1)[:, 1]
    assert torch.allclose(torch.sigmoid(net.forward_head(feats)), softmax_p1, atol=1e-6)


def test_freeze_modes():
    net = create_architecture("resnet18", freeze="backbone")
    assert not any(p.requires_grad for p in net.backbone.parameters())
    assert all(p.requires_grad for p in net.head.parameters())
    net.train()
    assert not net.backbone.training  # batch-norm statistics stay fixed
    net = create_architecture("resnet18", freeze="all_but_last")
    trainable = [n for n, p in net.named_parameters() if p.requires_grad]
    assert trainable == ["head.3.weight", "head.3.bias"]
    with pytest.raises(
        ValueError,
        match=r"The 'freeze' parameter must be one of \('none', "
        r"'backbone', 'all_but_last'\)\. Got 'some' instead\.",
    ):
        create_architecture("tiny_cnn", freeze="some")


def test_imagenet_weights_load_offline_from_torch_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    weights = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    reference = torchvision.models.resnet18(weights=None)
    torch.manual_seed(123)
    for p in reference.parameters():
        p.data.normal_()
    ckpt = hub_checkpoint_dir()
    ckpt.mkdir(parents=True)
    torch.save(reference.state_dict(), ckpt / os.path.basename(weights.url))

    def no_network(*a, **k):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    net = create_architecture("resnet18", pretrained="imagenet")
    ref = reference.state_dict()
    for k, v in net.backbone.state_dict().items():
        assert torch.equal(v, ref[k]), k


def test_vgg16_allocates_only_its_convolutions_and_checks_imagenet_keys(monkeypatch):
    """VGG16's classifier (replaced by the head) is built on the meta device only: the
    network is on the CPU, initialised as torchvision initialises it, and ImageNet
    weights still load through the whole torchvision model with an exact key check."""
    from cxrkit.architectures import _torchvision

    torch.manual_seed(0)
    net = create_architecture("vgg16")
    tensors = [*net.parameters(), *net.buffers()]
    assert all(t.device.type == "cpu" and bool(torch.isfinite(t).all()) for t in tensors)
    assert sum(p.numel() for p in net.backbone.parameters()) == 14_714_688
    last = net.backbone[28]  # 512 -> 512, 3x3: Kaiming fan-out std sqrt(2 / (512 * 9))
    assert abs(last.weight.std().item() / math.sqrt(2 / (512 * 9)) - 1) < 0.02
    assert not last.bias.any()
    with torch.device("meta"):
        full = torchvision.models.vgg16(weights=None).state_dict()
    state = {k: torch.randn(v.shape) if k.startswith("features.") else v for k, v in full.items()}
    monkeypatch.setattr(_torchvision, "load_imagenet_state_dict", lambda enum: state)
    net = create_architecture("vgg16", pretrained="imagenet")
    for k, v in net.backbone.state_dict().items():
        assert torch.equal(v, state["features." + k]), k
    del state["classifier.6.bias"]
    with pytest.raises(WeightsError, match=r"Missing keys: classifier\.6\.bias"):
        create_architecture("vgg16", pretrained="imagenet")


def test_imagenet_weights_missing_offline_gives_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def no_network(*a, **k):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket, "create_connection", no_network)
    with pytest.raises(
        WeightsError,
        match=r"are not in the torch hub cache and could not be "
        r"downloaded .*Place the file at '.*resnet18-",
    ):
        create_architecture("resnet18", pretrained="imagenet")


def test_weights_file_strict_and_backbone_only(tmp_path):
    src = create_architecture("tiny_cnn")
    torch.save(src.state_dict(), tmp_path / "full.pth")
    net = create_architecture("tiny_cnn", pretrained=str(tmp_path / "full.pth"))
    assert all(
        torch.equal(a, b) for a, b in zip(net.state_dict().values(), src.state_dict().values())
    )
    backbone_only = {k: v for k, v in src.state_dict().items() if k.startswith("backbone.")}
    torch.save(backbone_only, tmp_path / "bb.pth")
    with pytest.raises(
        WeightsError,
        match=r"does not match the network exactly\. Missing keys: "
        r"head\.0\.weight, .*pretrained_strict=False",
    ):
        create_architecture("tiny_cnn", pretrained=str(tmp_path / "bb.pth"))
    net = create_architecture(
        "tiny_cnn", pretrained=str(tmp_path / "bb.pth"), pretrained_strict=False
    )
    assert torch.equal(net.backbone[0].weight, src.backbone[0].weight)
    from safetensors.torch import save_file

    save_file(src.state_dict(), str(tmp_path / "w.safetensors"))
    net = create_architecture("tiny_cnn", pretrained=str(tmp_path / "w.safetensors"))
    assert torch.equal(net.head[0].weight, src.head[0].weight)


def test_weights_file_never_unpickles_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > /dev/null",))

    with open(tmp_path / "evil.pth", "wb") as f:
        pickle.dump({"x": Evil()}, f)
    with pytest.raises(
        WeightsError, match=r"could not be read as a state dict .*weights_only=True"
    ):
        create_architecture("tiny_cnn", pretrained=str(tmp_path / "evil.pth"))
    with pytest.raises(WeightsError, match=r"Weights file '.*missing\.pth' does not exist"):
        create_architecture("tiny_cnn", pretrained=str(tmp_path / "missing.pth"))


def test_shape_mismatch_is_reported(tmp_path):
    state = create_architecture("tiny_cnn", width=4).state_dict()
    torch.save(state, tmp_path / "w.pth")
    with pytest.raises(
        WeightsError,
        match=r"Shapes in weights file .* do not fit the network: "
        r"backbone\.0\.weight: file \(4, 3, 3, 3\) vs network "
        r"\(8, 3, 3, 3\)",
    ):
        create_architecture("tiny_cnn", pretrained=str(tmp_path / "w.pth"))


def test_shared_vgg16_backbone_loads(shared_weights):
    path = shared_weights / "vgg16_features_from_hed_bsds500.pth"
    with pytest.raises(WeightsError, match="Missing keys: head"):
        create_architecture("vgg16", pretrained=str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        net = create_architecture(
            "vgg16", pretrained=str(path), pretrained_strict=False, freeze="backbone"
        )
    state = torch.load(path, weights_only=True)
    assert torch.equal(net.backbone[0].weight, state["features.0.weight"])
    assert isinstance(net, CXRNet) and net.num_features == 512


def _uses_sparse_backward(out):
    """Whether ``out``'s autograd graph contains the sparse conv -> pool node."""
    seen, todo = set(), [out.grad_fn]
    while todo:
        fn = todo.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        if "MaxPooledConv2d" in type(fn).__name__:
            return True
        todo.extend(f for f, _ in fn.next_functions)
    return False


def _literal_hall2020_features(b, x):
    """The published layer order: activation before pooling, every row computed."""
    a = b.drop_a(b.pool3(b.act(b.conv2(b.pool3(b.act(b.conv1(x)))))))
    h = torch.cat([b.drop_b(b.pool10(b.act(x))), a], 1)
    return b.pool3(torch.relu(b.conv4(h))).permute(0, 2, 3, 1).flatten(1)


@pytest.mark.parametrize("sparse", [True, False], ids=["sparse-backward", "plain-backward"])
@pytest.mark.parametrize("chunk_bytes", ["auto", "auto-retained", None, 1])
@pytest.mark.parametrize("size", [100, 64])
def test_hall2020_cheaper_order_is_exact_with_gradients(size, chunk_bytes, sparse):
    torch.manual_seed(0)
    net = create_architecture("hall2020_cnn", sparse_backward=sparse).eval()
    if sparse and not sparse_backward_available():
        pytest.skip("the sparse backward needs numba")
    if chunk_bytes not in ("auto", "auto-retained"):
        net.backbone.chunk_bytes = chunk_bytes
    retained = retain_freed_memory(chunk_bytes == "auto-retained")
    if chunk_bytes == "auto-retained" and not glibc_malloc_available():
        pytest.skip("retain_freed_memory needs glibc")
    calls = []  # the images in each conv1 call (5x5 kernel), either path
    conv2d = torch.nn.functional.conv2d
    with mock.patch.object(
        _conv_pool.F,
        "conv2d",
        side_effect=lambda x, w, *a: (
            (w.shape[-1] == 5 and calls.append(len(x))) or conv2d(x, w, *a)
        ),
    ):
        for p in net.parameters():  # random biases too, so that every sign occurs
            torch.nn.init.normal_(p, std=0.1)
        x = torch.randn(4, 3, size, size)
        with retained:
            out = net.features(x)
    chunks = list(calls)
    assert (out.grad_fn.next_functions is not None) and (_uses_sparse_backward(out) == sparse)
    grads = torch.autograd.grad(out.square().sum(), list(net.backbone.parameters()))
    ref = _literal_hall2020_features(net.backbone, x)
    ref_grads = torch.autograd.grad(ref.square().sum(), list(net.backbone.parameters()))
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)
    for g, r in zip(grads, ref_grads):  # summation order differs: within 1e-5 of each scale
        torch.testing.assert_close(g, r, atol=1e-5 * float(r.abs().max()), rtol=1e-4)
    assert out.abs().sum() > 0 and all(g.abs().sum() > 0 for g in grads)
    # 4 images: conv1's output at 100 px is 2.2 MB an image, so 8 MiB chunks are 3 + 1
    chunked = [3, 1] if size == 100 else [4]
    expected = {"auto": chunked, "auto-retained": chunked, None: [4], 1: [1, 1, 1, 1]}
    assert chunks == expected[chunk_bytes]


@pytest.mark.skipif(not glibc_malloc_available(), reason="retain_freed_memory needs glibc")
def test_hall2020_auto_chunks_except_in_inference_with_retained_memory():
    net = create_architecture("hall2020_cnn").eval()
    calls = []
    net.backbone.conv1.register_forward_hook(lambda m, i, o: calls.append(len(i[0])))
    x = torch.rand(8, 3, 100, 100)
    with torch.inference_mode():
        plain = net(x)
        with retain_freed_memory():
            tuned = net(x)
    assert calls == [3, 3, 2, 8]
    torch.testing.assert_close(plain, tuned, atol=1e-6, rtol=1e-5)


def test_hall2020_conv1_skips_the_rows_that_never_reach_the_output():
    # 100 -> conv1 96 -> pool 32 -> conv2 31 -> pool 10 reads 30 rows: input rows 97-99 are
    # unused by branch a (exactness with them dropped is the test above).
    net = create_architecture("hall2020_cnn").eval()
    seen = []
    conv2d = torch.nn.functional.conv2d
    with mock.patch.object(
        _conv_pool.F,
        "conv2d",
        side_effect=lambda x, w, *a: (
            (w.shape[-1] == 5 and seen.append(tuple(x.shape[-2:]))) or conv2d(x, w, *a)
        ),
    ):
        net.features(torch.rand(1, 3, 100, 100))  # training: the sparse path
        with torch.no_grad():
            net.features(torch.rand(1, 3, 100, 100))  # the plain path
    assert seen == [(97, 97), (97, 97)]


def test_frozen_backbone_stays_in_eval_mode_through_train_calls():
    net = create_architecture("tiny_cnn", freeze="backbone")
    for _ in range(2):
        net.train()
        assert net.training and net.head.training
        assert not any(m.training for m in net.backbone.modules())
        net.eval()
        assert not any(m.training for m in net.modules())
    net.backbone.train()  # someone switched it back on: the next train() call repairs it
    net.train()
    assert not any(m.training for m in net.backbone.modules())
    net.freeze("none")
    net.train()
    assert all(m.training for m in net.modules())

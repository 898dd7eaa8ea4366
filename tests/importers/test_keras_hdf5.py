"""The Keras HDF5 importer on small files written here with h5py."""

from __future__ import annotations

import re

import h5py
import numpy as np
import pytest
import torch

from cxrkit.architectures import build_hall2020_cnn
from cxrkit.errors import WeightsError
from cxrkit.importers import (
    HALL2020_KERAS_GRAPH,
    HALL2020_KERAS_MAPPING,
    check_keras_architecture,
    load_hall2020_keras,
    load_keras_vgg16_into,
    load_keras_weights,
    read_keras_hdf5,
)

from ._hall_reference import numpy_forward
from ._keras_files import hall2020_keras2_config, hall2020_random_weights, write_keras_file


@pytest.fixture
def hall_file(tmp_path):
    path = tmp_path / "hall.hdf5"
    write_keras_file(path, hall2020_random_weights(), hall2020_keras2_config())
    return path


@pytest.mark.parametrize("layout", ["model", "weights", "keras1"])
def test_read_keras_hdf5_normalises_every_layout(tmp_path, layout):
    w = hall2020_random_weights()
    path = tmp_path / f"{layout}.h5"
    write_keras_file(
        path,
        w,
        hall2020_keras2_config() if layout == "model" else None,
        layout=layout,
        layer_names=["RGB_input", *w],
    )
    config, weights = read_keras_hdf5(path)
    assert sorted(weights) == ["conv1", "conv2", "conv4", "dense_1"]
    for layer, arrays in w.items():
        assert set(weights[layer]) == {"kernel", "bias"}
        np.testing.assert_array_equal(weights[layer]["kernel"], arrays["kernel"])
        np.testing.assert_array_equal(weights[layer]["bias"], arrays["bias"])
    if layout == "model":
        assert config["class_name"] == "Model" and config["keras_version"] == "2.0.0"
    else:
        assert config == {}


def test_hall2020_import_converts_layouts(hall_file):
    w = hall2020_random_weights()
    net = load_hall2020_keras(hall_file)
    assert not net.training
    sd = net.state_dict()
    np.testing.assert_array_equal(
        sd["backbone.conv1.weight"].numpy(), w["conv1"]["kernel"].transpose(3, 2, 0, 1)
    )
    np.testing.assert_array_equal(
        sd["backbone.conv4.weight"].numpy(), w["conv4"]["kernel"].transpose(3, 2, 0, 1)
    )
    np.testing.assert_array_equal(sd["head.fc.weight"].numpy(), w["dense_1"]["kernel"].T)
    np.testing.assert_array_equal(sd["head.fc.bias"].numpy(), w["dense_1"]["bias"])


def test_hall2020_import_matches_numpy_forward_pass(hall_file):
    """Kernels and the channels-last flatten order, checked against an independent NumPy net."""
    x = np.random.default_rng(1).random((6, 100, 100, 3)).astype(np.float32)
    prob, logit = numpy_forward(str(hall_file), x)
    net = load_hall2020_keras(hall_file)
    with torch.no_grad():
        ours = net(torch.from_numpy(x).permute(0, 3, 1, 2)).double().numpy()
    assert np.abs(ours - logit).max() < 1e-5
    assert np.abs(1 / (1 + np.exp(-ours)) - prob).max() < 1e-5
    # A channels-first flatten would give different outputs: the check can fail.
    perm = np.arange(576).reshape(3, 3, 64).transpose(2, 0, 1).ravel()
    w = hall2020_random_weights()
    w["dense_1"]["kernel"] = w["dense_1"]["kernel"][perm]
    write_keras_file(hall_file, w, hall2020_keras2_config())
    _, wrong = numpy_forward(str(hall_file), x)
    assert np.abs(ours - wrong).max() > 1e-3


def test_shape_mismatch_names_layer_and_both_shapes(tmp_path):
    w = hall2020_random_weights()
    w["conv2"]["kernel"] = np.zeros((3, 3, 64, 64), np.float32)
    path = tmp_path / "bad.h5"
    write_keras_file(path, w, hall2020_keras2_config())
    net = build_hall2020_cnn()
    before = net.backbone.conv1.weight.detach().clone()
    msg = (
        "Keras layer 'conv2' kernel has shape (3, 3, 64, 64) (torch layout (64, 64, 3, 3)) "
        "but 'backbone.conv2.weight' has shape (64, 64, 2, 2). The file holds a different "
        "network; use weights saved from the same architecture."
    )
    with pytest.raises(WeightsError, match=f"^{re.escape(msg)}$"):
        load_keras_weights(net, path, HALL2020_KERAS_MAPPING)
    # nothing was copied, not even the layers that fit
    assert torch.equal(net.backbone.conv1.weight, before)


def test_dense_shape_mismatch(tmp_path):
    w = hall2020_random_weights()
    w["dense_1"]["kernel"] = np.zeros((1024, 1), np.float32)
    path = tmp_path / "bad.h5"
    write_keras_file(path, w)
    msg = (
        "Keras layer 'dense_1' kernel has shape (1024, 1) (torch layout (1, 1024)) but "
        "'head.fc.weight' has shape (1, 576)."
    )
    with pytest.raises(WeightsError, match=re.escape(msg)):
        load_keras_weights(build_hall2020_cnn(), path, HALL2020_KERAS_MAPPING)


def test_missing_extra_and_unfilled_layers_are_refused(tmp_path):
    w = hall2020_random_weights()
    path = tmp_path / "w.h5"
    write_keras_file(path, w)
    net = build_hall2020_cnn()
    with pytest.raises(
        WeightsError,
        match=re.escape(
            "has no weights for layer(s) ['conv3']; layers with weights in the file: "
            "['conv1', 'conv2', 'conv4', 'dense_1']. Check the mapping"
        ),
    ):
        load_keras_weights(net, path, {**HALL2020_KERAS_MAPPING, "conv3": "backbone.conv2"})
    partial = {k: v for k, v in HALL2020_KERAS_MAPPING.items() if k != "conv4"}
    with pytest.raises(
        WeightsError,
        match=re.escape("has weights for layer(s) ['conv4'] that the mapping does not place"),
    ):
        load_keras_weights(net, path, partial)
    with pytest.raises(
        WeightsError,
        match=re.escape(
            "leaves torch tensor(s) ['backbone.conv4.bias', 'backbone.conv4.weight'] without "
            "weights"
        ),
    ):
        load_keras_weights(net, path, partial, ignore=["conv4"])
    load_keras_weights(net, path, partial, ignore=["conv4"], strict=False)
    np.testing.assert_array_equal(net.backbone.conv1.bias.detach().numpy(), w["conv1"]["bias"])
    with pytest.raises(
        WeightsError,
        match=re.escape(
            "Keras layer 'conv1' weight 'kernel' (shape (5, 5, 3, 64)) maps to "
            "'backbone.conv9.weight', which the torch module does not have."
        ),
    ):
        load_keras_weights(net, path, {**HALL2020_KERAS_MAPPING, "conv1": "backbone.conv9"})


@pytest.mark.parametrize(
    "config, message",
    [
        (
            hall2020_keras2_config(conv2_kernel=3),
            "layer 'conv2' (in the place of 'conv2') has kernel_size=[3, 3], expected [2, 2].",
        ),
        (
            hall2020_keras2_config(merge_mode="sum"),
            "layer 'merge_1' (in the place of 'concat') is a Merge[sum], expected Concatenate.",
        ),
        # concatenation order swapped: the conv branch lands where the input branch belongs
        (
            hall2020_keras2_config(merge_inputs=("dropout_1", "dropout_2")),
            "layer 'max_pooling2d_2' (in the place of 'pool_input') has pool_size=[3, 3], "
            "expected [10, 10].",
        ),
    ],
)
def test_architecture_mismatch_is_refused(tmp_path, config, message):
    path = tmp_path / "arch.h5"
    write_keras_file(path, hall2020_random_weights(), config)
    with pytest.raises(
        WeightsError,
        match=r"^Keras file '.*arch\.h5' does not hold the Hall et "
        r"al\. \(2020\) small CNN: " + re.escape(message) + " These weights "
        r"belong to a different network and cannot be imported as this one\.$",
    ):
        load_hall2020_keras(path)


def test_architecture_extra_layer_is_refused():
    config = hall2020_keras2_config()
    layers = config["config"]["layers"]
    layers.append(
        {
            "name": "dense_2",
            "class_name": "Dense",
            "config": {"units": 3},
            "inbound_nodes": [[["dropout_3", 0, 0, {}]]],
        }
    )
    with pytest.raises(
        WeightsError,
        match=r"^Keras file does not hold the Hall CNN: it has "
        r"layer\(s\) \['dense_2'\] that the Hall CNN does "
        r"not have\.$",
    ):
        check_keras_architecture(config, HALL2020_KERAS_GRAPH, name="the Hall CNN")
    assert (
        check_keras_architecture(hall2020_keras2_config(), HALL2020_KERAS_GRAPH)["concat"]
        == "merge_1"
    )


def test_weight_only_file_cannot_be_checked(tmp_path):
    path = tmp_path / "w.h5"
    write_keras_file(path, hall2020_random_weights())
    with pytest.raises(
        WeightsError,
        match=r"has no model_config, so its architecture cannot be "
        r"checked against the Hall et al\. \(2020\) small CNN",
    ):
        load_hall2020_keras(path)


def test_not_a_keras_file(tmp_path):
    path = tmp_path / "x.h5"
    path.write_bytes(b"not hdf5")
    with pytest.raises(WeightsError, match=r"could not be opened as HDF5"):
        read_keras_hdf5(path)
    with pytest.raises(WeightsError, match=r"^Keras weights file '.*nope\.h5' does not exist\.$"):
        read_keras_hdf5(tmp_path / "nope.h5")
    with h5py.File(tmp_path / "empty.h5", "w"):
        pass
    with pytest.raises(WeightsError, match=r"holds no layers"):
        read_keras_hdf5(tmp_path / "empty.h5")


# -- VGG16 (Keras applications) -> torchvision vgg16().features ---------------------------------
_VGG_BLOCKS = [(1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512)]


def _vgg_weights(seed=0, bad=None):
    rng = np.random.default_rng(seed)
    w, cin = {}, 3
    for b, n, cout in _VGG_BLOCKS:
        for c in range(1, n + 1):
            name = f"block{b}_conv{c}"
            shape = (3, 3, cin, cout) if name != bad else (3, 3, cin, cout // 2)
            w[name] = {
                "kernel": rng.normal(0, 0.05, shape).astype(np.float32),
                "bias": rng.normal(0, 0.05, shape[-1]).astype(np.float32),
            }
            cin = cout
    return w


@pytest.fixture(scope="module")
def vgg_features():
    torchvision = pytest.importorskip("torchvision")
    return torchvision.models.vgg16(weights=None).features


@pytest.mark.parametrize("layout", ["weights", "keras1"])
def test_vgg16_keras_applications_file(tmp_path, vgg_features, layout):
    w = _vgg_weights()
    top = {"fc1": {"kernel": np.zeros((8, 4), np.float32), "bias": np.zeros(4, np.float32)}}
    names = ["input_1"] + [n for n in w] + ["flatten", "fc1"]
    path = tmp_path / "vgg16_weights_tf_dim_ordering_tf_kernels.h5"
    write_keras_file(path, {**w, **top}, layout=layout, layer_names=names)
    load_keras_vgg16_into(vgg_features, path)
    np.testing.assert_array_equal(
        vgg_features[28].weight.detach().numpy(), w["block5_conv3"]["kernel"].transpose(3, 2, 0, 1)
    )
    np.testing.assert_array_equal(vgg_features[5].bias.detach().numpy(), w["block2_conv1"]["bias"])
    # The first convolution computes what Keras computes ('same' padding, NHWC, HWIO).
    x = np.random.default_rng(2).random((1, 6, 6, 3)).astype(np.float32)
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(1, 2))
    ref = (
        np.einsum("nhwcij,ijco->nhwo", win, w["block1_conv1"]["kernel"]) + w["block1_conv1"]["bias"]
    )
    with torch.no_grad():
        ours = vgg_features[0](torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    assert np.abs(ours - ref).max() < 1e-5


def test_vgg16_wrong_block_shape_is_refused(tmp_path, vgg_features):
    path = tmp_path / "vgg.h5"
    write_keras_file(path, _vgg_weights(bad="block3_conv2"), layout="weights")
    msg = (
        "Keras layer 'block3_conv2' kernel has shape (3, 3, 256, 128) (torch layout "
        "(128, 256, 3, 3)) but '12.weight' has shape (256, 256, 3, 3)."
    )
    with pytest.raises(WeightsError, match=re.escape(msg)):
        load_keras_vgg16_into(vgg_features, path)


def _with_dense_bias(tmp_path, make):
    """A weights file whose dense_1 bias is replaced by ``make(group, name, other_file)``."""
    path = tmp_path / "w.h5"
    w = hall2020_random_weights()
    write_keras_file(path, w, None, layout="weights", layer_names=list(w))
    secret = tmp_path / "secret.bin"
    secret.write_bytes(np.float32([42.0]).tobytes())
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f.create_dataset("data", data=np.float32([42.0]))
    with h5py.File(path, "a") as f:
        g = f["dense_1/dense_1"]
        del g["bias:0"]
        make(g, "bias:0", secret, other)
    return path


@pytest.mark.parametrize(
    "make, what",
    [
        (
            lambda g, n, secret, other: g.create_dataset(
                n, shape=(1,), dtype="f4", external=[(str(secret), 0, 4)]
            ),
            r"'dense_1/dense_1/bias:0' is a dataset with external storage in '.*secret.bin'",
        ),
        (
            lambda g, n, secret, other: g.__setitem__(n, h5py.ExternalLink(str(other), "/data")),
            r"'dense_1/dense_1/bias:0' is an external link to '.*other.h5:/data'",
        ),
        (
            lambda g, n, secret, other: g.create_virtual_dataset(n, _virtual(other)),
            r"'dense_1/dense_1/bias:0' is a virtual dataset mapped from \['.*other.h5'\]",
        ),
    ],
)
def test_data_outside_the_file_is_refused(tmp_path, make, what):
    path = _with_dense_bias(tmp_path, make)
    with pytest.raises(
        WeightsError,
        match=rf"Keras file '.*w.h5' is refused: {what}, so "
        "reading it would read another file",
    ):
        read_keras_hdf5(path)


def _virtual(other):
    layout = h5py.VirtualLayout(shape=(1,), dtype="f4")
    layout[:] = h5py.VirtualSource(str(other), "data", shape=(1,))
    return layout


def test_soft_links_inside_the_file_are_read(tmp_path):
    def soft(g, n, secret, other):
        g["real_bias"] = np.float32([7.0])
        g[n] = h5py.SoftLink("/dense_1/dense_1/real_bias")

    _, weights = read_keras_hdf5(_with_dense_bias(tmp_path, soft))
    assert weights["dense_1"]["bias"].tolist() == [7.0]

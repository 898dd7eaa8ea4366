"""ONNX Runtime predictor (skipped when onnxruntime/onnx are not installed)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from cxrkit.estimators import CXRClassifier  # noqa: E402
from cxrkit.estimators._onnx import OnnxRuntimePredictor  # noqa: E402


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 255, (24, 16, 16), dtype=np.uint8)
    y = np.array([0, 1] * 12)
    X[y == 1, 4:12, 4:12] = 250
    clf = CXRClassifier("tiny_cnn", input_size=16, max_epochs=2, batch_size=8, random_state=0)
    return clf.fit(X, y), X


def test_fp32_matches_torch(fitted):
    clf, X = fitted
    ort_pred = OnnxRuntimePredictor(clf)
    np.testing.assert_allclose(ort_pred.predict_proba(X), clf.predict_proba(X), atol=1e-5)


def test_hall2020_cnn_exports_with_a_batch_free_graph():
    """The chunked, sparse-gradient first stage of ``hall2020_cnn`` must not be traced into
    the graph: the exported model takes any batch size and matches torch."""
    from cxrkit.architectures import create_architecture
    from cxrkit.architectures._hall2020 import HALL2020_PREPROCESSING

    torch.manual_seed(0)
    net = create_architecture("hall2020_cnn", chunk_bytes=1)  # chunks of one image
    clf = CXRClassifier.from_module(
        net, ["covid", "pneumonia"], batch_size=5, preprocessing=HALL2020_PREPROCESSING
    )
    X = np.random.default_rng(1).integers(0, 255, (7, 110, 110), dtype=np.uint8)
    with torch.enable_grad():  # the export must not take the sparse-gradient path either
        pred = OnnxRuntimePredictor(clf)
    np.testing.assert_allclose(pred.predict_proba(X), clf.predict_proba(X), atol=1e-5)


@pytest.mark.parametrize("allow_spinning", [False, True])
def test_intra_op_spinning_is_off_by_default_and_can_be_turned_on(fitted, allow_spinning):
    clf, X = fitted
    default = OnnxRuntimePredictor(clf)
    opts = default.session_.get_session_options()
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    pred = OnnxRuntimePredictor(clf, allow_spinning=allow_spinning)
    opts = pred.session_.get_session_options()
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == str(
        int(allow_spinning)
    )
    np.testing.assert_array_equal(pred.predict_proba(X), default.predict_proba(X))


def test_int8_runs_and_stays_close(fitted):
    clf, X = fitted
    q = OnnxRuntimePredictor(clf, quantize="int8", calibration=X)
    p = q.predict_proba(X)
    assert p.shape == (len(X), 2)
    assert np.abs(p - clf.predict_proba(X)).max() < 0.05


def _graph(path):
    import onnx

    return list(onnx.load(path).graph.node)


def _consumers(nodes, tensor):
    """Op types reading ``tensor``, looking through Slice (the grayscale first conv reads
    ``x[:, :1]``)."""
    out = set()
    for n in nodes:
        if tensor in n.input:
            out |= _consumers(nodes, n.output[0]) if n.op_type == "Slice" else {n.op_type}
    return out


def _last_conv_output(nodes):
    return [n for n in nodes if n.op_type == "Conv"][-1].output[0]


def test_int8_fp32_layers_keep_first_and_last_conv_and_head_in_fp32(fitted):
    clf, X = fitted
    kept = OnnxRuntimePredictor(clf, quantize="int8", calibration=X)
    assert kept.int8_options_["fp32_layers"] == ("first_conv", "last_conv", "head")
    nodes = _graph(kept.model_path_)
    assert _consumers(nodes, "x") == {"Conv"}
    assert "QuantizeLinear" not in _consumers(nodes, _last_conv_output(nodes))
    allq = OnnxRuntimePredictor(clf, quantize="int8", calibration=X, fp32_layers=())
    nodes = _graph(allq.model_path_)
    assert _consumers(nodes, "x") == {"QuantizeLinear"}
    assert _consumers(nodes, _last_conv_output(nodes)) == {"QuantizeLinear"}
    for q in (kept, allq):
        assert np.abs(q.predict_proba(X) - clf.predict_proba(X)).max() < 0.05


@pytest.mark.parametrize(
    "kw",
    [
        {"calibrate_method": "percentile", "percentile": 99.9},
        {"activation_type": "int8", "activation_symmetric": True},
        {"reduce_range": True},
    ],
)
def test_int8_recipe_options_run_and_stay_close(fitted, kw):
    clf, X = fitted
    q = OnnxRuntimePredictor(clf, quantize="int8", calibration=X, **kw)
    assert np.abs(q.predict_proba(X) - clf.predict_proba(X)).max() < 0.05


@pytest.mark.parametrize(
    "kw, msg",
    [
        (
            {"calibrate_method": "mse"},
            r"calibrate_method must be one of \('minmax', 'percentile', 'entropy'\); got 'mse'\.",
        ),
        (
            {"fp32_layers": "head"},
            r"fp32_layers must be a sequence of names from \('first_conv', 'last_conv', 'head'\) "
            r"\(e\.g\. \('first_conv', 'head'\) or \(\)\); got 'head'\.",
        ),
        (
            {"activation_type": "int4"},
            r"activation_type must be one of \('uint8', 'int8'\); got 'int4'\.",
        ),
        ({"percentile": 0}, r"percentile must be in \(0, 100\]; got 0\."),
    ],
)
def test_int8_bad_options_are_rejected(fitted, kw, msg):
    from cxrkit.errors import ConfigurationError

    clf, X = fitted
    with pytest.raises(ConfigurationError, match=msg):
        OnnxRuntimePredictor(clf, quantize="int8", calibration=X, **kw)


class _Stem(torch.nn.Module):
    """conv -> ReLU -> max-pool -> two convs -> pooled linear logit: ResNet's shape in small."""

    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(3, 2, 1),
            torch.nn.Conv2d(8, 16, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(16, 16, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(),
            torch.nn.Linear(16, 1),
        )

    def forward(self, x):
        return self.body(x)[:, 0]


@pytest.mark.parametrize("fp32_layers", [("first_conv", "last_conv", "head"), ()])
def test_int8_max_pool_runs_quantised_and_channels_last(tmp_path, monkeypatch, fp32_layers):
    import onnx
    import onnxruntime as ort

    from cxrkit.estimators import _onnx

    torch.manual_seed(0)
    src = _onnx.export_onnx(_Stem().eval(), str(tmp_path / "m.onnx"), 20)
    x = np.random.default_rng(0).normal(size=(8, 3, 20, 20)).astype(np.float32)
    new = _onnx.quantize_onnx_int8(src, str(tmp_path / "new.onnx"), [x], fp32_layers=fp32_layers)
    kinds = [n.op_type for n in onnx.load(new).graph.node]
    assert kinds.count("NhwcMaxPool") == 1
    assert kinds.count("MaxPool") == 0
    monkeypatch.setattr(_onnx, "_quantize_before_max_pools", lambda model: 0)
    old = _onnx.quantize_onnx_int8(src, str(tmp_path / "old.onnx"), [x], fp32_layers=fp32_layers)
    assert "NhwcMaxPool" not in [n.op_type for n in onnx.load(old).graph.node]

    def run(path):
        sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        return sess.run(None, {"x": x})[0]

    np.testing.assert_array_equal(run(new), run(old))  # q(max(x)) == max(q(x)): same bytes

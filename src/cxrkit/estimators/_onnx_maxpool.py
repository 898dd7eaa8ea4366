"""Max-pools of an int8 ONNX model rewritten to run on 8-bit integers, channels-last.

:func:`quantize_before_max_pools` is applied by
:func:`cxrkit.estimators._onnx.quantize_onnx_int8` to the quantised model.
"""

from __future__ import annotations

from typing import Any

__all__ = ["quantize_before_max_pools"]

_NHWC_POOL_ATTRS = ("auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "strides")


def quantize_before_max_pools(model: Any) -> int:
    """Max-pool in 8 bits, channels-last, where an fp32 max-pool feeds a QuantizeLinear.

    With the first convolution kept in fp32 (ResNet's stem: conv -> ReLU -> max-pool ->
    first quantised block), ONNX Runtime pools 32-bit floats (or, after moving the
    quantisation up, 8-bit integers) in NCHW with a generic loop: ~60 ms of a 16-image
    ResNet-101 batch on the development VM, about 5 % of the whole network. Quantising
    first and pooling with ONNX Runtime's channels-last 8-bit kernel
    (``com.microsoft.NhwcMaxPool``) takes ~3 ms plus a transpose, and gives the same
    bytes: quantisation is monotonic, so ``q(max(x)) == max(q(x))``. The transpose back to
    NCHW cancels against the one ONNX Runtime inserts before the next (channels-last)
    quantised convolution. Returns the number of max-pools rewritten.
    """
    from onnx import helper

    graph = model.graph
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    rewrites: dict[int, list[Any]] = {}
    dropped: set[int] = set()
    for node in graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        q = _quantizer_after_pool(graph, node, attrs, consumers)
        if q is None:
            continue
        rewrites[id(node)] = _nhwc_pool_nodes(node, q, attrs)
        dropped.add(id(q))
    if not rewrites:
        return 0
    nodes = []
    for node in graph.node:
        if id(node) in rewrites:
            nodes.extend(rewrites[id(node)])
        elif id(node) not in dropped:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    if not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return len(rewrites)


def _quantizer_after_pool(
    graph: Any, node: Any, attrs: dict[str, Any], consumers: dict[str, list[Any]]
) -> Any:
    """Return the only QuantizeLinear fed by 2-D max-pool ``node``, else ``None``."""
    if (
        node.op_type != "MaxPool"
        or node.domain not in ("", "ai.onnx")
        or len([o for o in node.output if o]) != 1
        or len(attrs.get("kernel_shape", ())) != 2
        or attrs.get("storage_order", 0)
    ):
        return None
    users = consumers.get(node.output[0], [])
    if (
        len(users) != 1
        or users[0].op_type != "QuantizeLinear"
        or any(o.name == node.output[0] for o in graph.output)
    ):
        return None
    return users[0]


def _nhwc_pool_nodes(node: Any, q: Any, attrs: dict[str, Any]) -> list[Any]:
    """Return the nodes replacing max-pool ``node`` and its QuantizeLinear ``q``."""
    from onnx import helper

    base = f"{node.name}_nhwc"
    return [
        helper.make_node(
            "QuantizeLinear",
            [node.input[0], *q.input[1:]],
            [f"{base}_q"],
            name=f"{base}_q",
            **{a.name: helper.get_attribute_value(a) for a in q.attribute},
        ),
        helper.make_node(
            "Transpose",
            [f"{base}_q"],
            [f"{base}_in"],
            perm=[0, 2, 3, 1],
            name=f"{base}_to_nhwc",
        ),
        helper.make_node(
            "NhwcMaxPool",
            [f"{base}_in"],
            [f"{base}_out"],
            name=base,
            domain="com.microsoft",
            **{k: v for k, v in attrs.items() if k in _NHWC_POOL_ATTRS},
        ),
        helper.make_node(
            "Transpose",
            [f"{base}_out"],
            [q.output[0]],
            perm=[0, 3, 1, 2],
            name=f"{base}_to_nchw",
        ),
    ]

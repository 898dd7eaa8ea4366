"""Check a Keras ``model_config`` against the layer graph an importer expects."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..errors import WeightsError

# Keras layer classes that hold weights (mapped to torch by layer name).
_WEIGHTED = {"Conv2D", "Dense", "BatchNormalization"}


# -- architecture check -----------------------------------------------------------
def _inbound_names(layer: Mapping[str, Any]) -> list[str]:
    """Input layer names of one layer, from Keras 2 or Keras 3 ``inbound_nodes``."""
    nodes = layer.get("inbound_nodes") or []
    if not nodes:
        return []
    node = nodes[0]
    if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}}
        found: list[str] = []

        def walk(obj: Any) -> None:
            if isinstance(obj, dict):
                hist = obj.get("config", {}).get("keras_history") if "config" in obj else None
                if hist:
                    found.append(hist[0])
                    return
                for v in obj.values():
                    walk(v)
            elif isinstance(obj, list):
                for v in obj:
                    walk(v)

        walk(node.get("args", []))
        return found
    return [entry[0] for entry in node]  # Keras 2: [[name, node_index, tensor_index, kwargs], ...]


def keras_layer_graph(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Layers of a Keras model config, normalised: name -> ``{"class", "config", "inputs"}``.

    Keras 2 ``Merge(mode="concat")`` becomes ``Concatenate`` (``axis`` =
    ``concat_axis``), ``LeakyReLU``'s ``negative_slope`` is read as ``alpha``,
    ``batch_input_shape`` becomes ``shape`` and ``Sequential`` models are chained.
    The model's output layer names are stored under the key ``"__outputs__"``.
    """
    body = config.get("config", {})
    layers = body.get("layers", body if isinstance(body, list) else [])
    graph: dict[str, dict[str, Any]] = {}
    prev: str | None = None
    sequential = config.get("class_name") == "Sequential"
    for layer in layers:
        cls = layer["class_name"]
        cfg = dict(layer.get("config", {}))
        name = str(layer.get("name") or cfg.get("name"))
        if cls == "Merge":
            mode = cfg.get("mode")
            if mode != "concat":
                cls = f"Merge[{mode}]"
            else:
                cls = "Concatenate"
                cfg["axis"] = cfg.get("concat_axis", -1)
        if cls == "LeakyReLU" and "alpha" not in cfg:
            cfg["alpha"] = cfg.get("negative_slope", 0.3)
        shape = cfg.get("batch_input_shape") or cfg.get("batch_shape")
        if shape is not None:
            cfg["shape"] = list(shape[1:])
        inputs = [prev] if sequential and prev is not None else _inbound_names(layer)
        if sequential and prev is None and shape is not None and cls != "InputLayer":
            graph[f"{name}__input"] = {
                "class": "InputLayer",
                "config": {"shape": cfg["shape"]},
                "inputs": [],
            }
            inputs = [f"{name}__input"]
        graph[name] = {"class": cls, "config": cfg, "inputs": inputs}
        prev = name
    outputs = body.get("output_layers") if isinstance(body, dict) else None
    if outputs and isinstance(outputs[0], str):  # Keras 3, single output: [name, 0, 0]
        outputs = [outputs]
    graph["__outputs__"] = {
        "names": [o[0] for o in outputs] if outputs else ([prev] if prev else [])
    }
    return graph


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-5, abs_tol=1e-7)
        except (TypeError, ValueError):
            return False
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return bool(a == b)


def check_keras_architecture(
    config: Mapping[str, Any],
    expected: list[tuple[str, str, dict[str, Any], list[str]]],
    *,
    name: str = "the expected network",
    source: str = "Keras file",
) -> dict[str, str]:
    """Check that a Keras model config describes exactly the ``expected`` graph.

    The graphs are compared from the output backwards, input by input (so
    automatically generated names do not matter); layers with weights must also
    carry the expected names, since weights are mapped by name.

    Parameters
    ----------
    config : mapping
        ``model_config`` as returned by :func:`read_keras_hdf5`.
    expected : list of (id, class, config subset, input ids)
        The network, e.g. :data:`HALL2020_KERAS_GRAPH`.
    name, source : str
        Used in error messages.

    Returns
    -------
    dict of str to str
        Expected id -> Keras layer name.

    Raises
    ------
    WeightsError
        The config is missing, or a layer differs in type, parameters, inputs or
        (for weighted layers) name; the message names the layer and both values.
    """
    if not config:
        raise WeightsError(
            f"{source} has no model_config, so its architecture cannot be checked against "
            f"{name}. Use a file saved with model.save(), or load the weights with "
            "load_keras_weights() after checking the architecture yourself."
        )
    graph = keras_layer_graph(config)
    exp = {e[0]: e for e in expected}
    consumed = {i for e in expected for i in e[3]}
    exp_out = [e[0] for e in expected if e[0] not in consumed]
    outputs = graph["__outputs__"]["names"]
    if len(outputs) != len(exp_out):
        raise WeightsError(
            f"{source} describes a model with {len(outputs)} output(s) {outputs}; {name} has "
            f"{len(exp_out)}."
        )
    matcher = _GraphMatcher(graph, exp, name=name, source=source)
    for eid, actual in zip(exp_out, outputs):
        matcher.match(eid, actual)
    matched = matcher.matched
    real_layers = [k for k in graph if k != "__outputs__"]
    extra = sorted(set(real_layers) - set(matched.values()))
    if extra:
        raise WeightsError(
            f"{source} does not hold {name}: it has layer(s) {extra} that {name} does not have."
        )
    return matched


class _GraphMatcher:
    """Walks a Keras layer graph and the expected one together, from the outputs back."""

    def __init__(
        self,
        graph: dict[str, dict[str, Any]],
        expected: dict[str, tuple[str, str, dict[str, Any], list[str]]],
        *,
        name: str,
        source: str,
    ) -> None:
        self.graph = graph
        self.expected = expected
        self.name = name
        self.source = source
        self.matched: dict[str, str] = {}

    def fail(self, eid: str, actual: str, what: str) -> WeightsError:
        """Return the error for Keras layer ``actual`` differing from ``eid`` in ``what``."""
        return WeightsError(
            f"{self.source} does not hold {self.name}: layer {actual!r} (in the place of "
            f"{eid!r}) {what}. "
            "These weights belong to a different network and cannot be imported as this one."
        )

    def match(self, eid: str, actual: str) -> None:
        """Match expected layer ``eid`` to Keras layer ``actual``, then their inputs."""
        if eid in self.matched:
            if self.matched[eid] != actual:
                raise self.fail(
                    eid,
                    actual,
                    f"is wired differently (expected the output of {self.matched[eid]!r})",
                )
            return
        if actual not in self.graph:
            raise self.fail(eid, actual, "is not in the model config")
        einputs = self.expected[eid][3]
        layer = self.graph[actual]
        self._check_layer(eid, actual, layer)
        self.matched[eid] = actual
        for e_in, a_in in zip(einputs, layer["inputs"]):
            self.match(e_in, a_in)

    def _check_layer(self, eid: str, actual: str, layer: dict[str, Any]) -> None:
        """Raise unless ``layer`` has the class, name, parameters and input count of ``eid``."""
        _, ecls, ecfg, einputs = self.expected[eid]
        if layer["class"] != ecls:
            raise self.fail(eid, actual, f"is a {layer['class']}, expected {ecls}")
        if ecls in _WEIGHTED and actual != eid:
            raise self.fail(
                eid,
                actual,
                f"is named {actual!r}, expected {eid!r} (weights are mapped by layer name)",
            )
        for key, want in ecfg.items():
            got = layer["config"].get(key)
            if key == "alpha" and got is None:
                got = 0.3  # Keras' default slope
            if not _same(got, want):
                raise self.fail(eid, actual, f"has {key}={got!r}, expected {want!r}")
        if len(layer["inputs"]) != len(einputs):
            raise self.fail(
                eid,
                actual,
                f"has {len(layer['inputs'])} input(s) {layer['inputs']}, expected {len(einputs)}",
            )


# -- ready-made importers ---------------------------------------------------------------

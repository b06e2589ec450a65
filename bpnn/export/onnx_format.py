"""ONNX export: the inference plan as a float32 graph at opset 17, built with ``onnx.helper``.

The graph, for input ``input`` of shape ``(batch, features)`` in raw units::

    Sub(input, input_offset) -> Mul(input_factor)          (left out where offset 0 / factor 1)
    MatMul(W_l) -> Add(b_l) -> activation                   every hidden layer
    MatMul(W_L) -> Add(b_L) -> Softmax                      output "probabilities" (multiclass)
                            -> Sigmoid -> Concat(1 - p, p)  output "probabilities" (binary)
                            -> Div(target_factor) -> Add(target_offset)   output "values"

Every activation is the formula the engine uses: an ONNX operator where opset 17 has the same
one (Relu, LeakyRelu, Elu, Sigmoid, Tanh, Softplus), else elementary operators (GELU's tanh
form: ONNX's own Gelu arrives only in opset 20). Opset 17 runs on onnxruntime 1.12 and later.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from bpnn.export.extras import require
from bpnn.export.plan import InferencePlan
from bpnn.nn.activations import Activation

OPSET = 17
#: IR version 8 is what opset 17 was released with; older runtimes refuse newer IR versions
IR_VERSION = 8
INPUT = "input"


class GraphBuilder:
    """Collects nodes and float32 initializers under unique names."""

    def __init__(self, onnx: Any) -> None:
        self.onnx = onnx
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def constant(self, name: str, value: np.ndarray | float) -> str:
        array = np.asarray(value, dtype=np.float32)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name=name))
        return name

    def node(self, op: str, inputs: list[str], output: str | None = None, **attributes: Any) -> str:
        output = output or self.fresh(op.lower())
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [output], **attributes))
        return output


def _gelu_tanh(graph: GraphBuilder, x: str, activation: Activation) -> str:
    """``0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3)))``, operator by operator."""
    cube = graph.node("Mul", [graph.node("Mul", [x, x]), x])
    inner = graph.node("Add", [x, graph.node("Mul", [cube, graph.constant("gelu_k", 0.044715)])])
    t = graph.node(
        "Tanh", [graph.node("Mul", [inner, graph.constant("gelu_c", np.sqrt(2 / np.pi))])]
    )
    one_plus_t = graph.node("Add", [t, graph.constant("one", 1.0)])
    half_x = graph.node("Mul", [x, graph.constant("half", 0.5)])
    return graph.node("Mul", [half_x, one_plus_t])


#: engine activation name -> graph nodes computing it (a test checks every name is here)
ACTIVATION_NODES: dict[str, Callable[[GraphBuilder, str, Activation], str]] = {
    "identity": lambda graph, x, act: x,
    "sigmoid": lambda graph, x, act: graph.node("Sigmoid", [x]),
    "tanh": lambda graph, x, act: graph.node("Tanh", [x]),
    "relu": lambda graph, x, act: graph.node("Relu", [x]),
    "leaky_relu": lambda graph, x, act: graph.node("LeakyRelu", [x], alpha=act.options()["slope"]),
    "elu": lambda graph, x, act: graph.node("Elu", [x], alpha=act.options()["alpha"]),
    "gelu": _gelu_tanh,
    "softplus": lambda graph, x, act: graph.node("Softplus", [x]),
}


def build_onnx(plan: InferencePlan) -> Any:
    """The ``onnx.ModelProto`` of ``plan``, checked by ``onnx.checker``."""
    onnx = require("onnx", "onnx")
    graph = GraphBuilder(onnx)
    x = INPUT
    if np.any(plan.input_offset):
        x = graph.node("Sub", [x, graph.constant("input_offset", plan.input_offset)], "centred")
    if not np.all(plan.input_factor == 1):
        x = graph.node("Mul", [x, graph.constant("input_factor", plan.input_factor)], "scaled")
    for i, layer in enumerate(plan.layers):
        z = graph.node("MatMul", [x, graph.constant(f"{i}.weight", layer.weight)])
        z = graph.node("Add", [z, graph.constant(f"{i}.bias", layer.bias)], f"z{i}")
        if layer.activation is not None:
            x = ACTIVATION_NODES[layer.activation.name](graph, z, layer.activation)
        else:
            x = z

    if plan.output == "softmax":
        output = graph.node("Softmax", [x], "probabilities", axis=1)
    elif plan.output == "sigmoid" and plan.task == "binary":
        p = graph.node("Sigmoid", [x], "p")  # binary: one unit, answered as [1 - p, p]
        not_p = graph.node("Sub", [graph.constant("one", 1.0), p], "one_minus_p")
        output = graph.node("Concat", [not_p, p], "probabilities", axis=1)
    elif plan.output == "sigmoid":  # several sigmoid outputs (one-hot, multi-label): each its own
        output = graph.node("Sigmoid", [x], "probabilities")
    else:
        output = x
        if plan.target_factor is not None and plan.target_offset is not None:
            output = graph.node(
                "Div", [output, graph.constant("target_factor", plan.target_factor)]
            )
            output = graph.node(
                "Add", [output, graph.constant("target_offset", plan.target_offset)]
            )
        output = graph.node("Identity", [output], "values")

    helper, tensor = onnx.helper, onnx.TensorProto
    proto = helper.make_model(
        helper.make_graph(
            graph.nodes,
            f"bpnn_{plan.name}",
            [helper.make_tensor_value_info(INPUT, tensor.FLOAT, ["batch", plan.n_features])],
            [helper.make_tensor_value_info(output, tensor.FLOAT, ["batch", plan.n_outputs])],
            initializer=_unique(graph.initializers),
        ),
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="bpnn",
        producer_version=plan.metadata()["bpnn_version"],
        ir_version=IR_VERSION,
        doc_string=f"bpnn model {plan.name} ({plan.describe()}, {plan.task}); input: raw features",
    )
    helper.set_model_props(proto, plan.metadata())
    onnx.checker.check_model(proto, full_check=True)
    return proto


def _unique(initializers: list[Any]) -> list[Any]:
    """Shared constants (``one``, GELU's coefficients) are added once per use; keep one each."""
    seen: dict[str, Any] = {}
    for item in initializers:
        seen.setdefault(item.name, item)
    return list(seen.values())

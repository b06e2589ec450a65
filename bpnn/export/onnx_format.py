"""ONNX export: the inference plan as a float32 graph at opset 17, built with ``onnx.helper``.

A model trained on a table takes one input per raw column, each of shape ``(batch, 1)``: float32
for a numeric column (NaN where missing), a string tensor for a categorical one (the category's
text as bpnn names it, ``"2007"`` for a number; missing: ``""`` or any of ``MISSING_CELLS``).
The table encoding runs first, in the graph::

    numeric:      Where(IsNaN(x), fill, x)                       (no fill: NaN passes through)
    categorical:  codes = ai.onnx.ml.LabelEncoder(x)             category index; missing -> the
                                                                 fill's index (no fill: -2);
                                                                 unknown -> -1
                  Cast(Equal(codes, [0 .. K-1]), float)          one-hot; -1 is all zeros
                  + Where(codes < limit, NaN, 0)                 a row bpnn refuses is NaN
                                                                 (limit 0 with
                                                                 unknown_category: error, else -1)
    Concat(every column's block) -> the features the input scaling reads

A row that ``bpnn predict`` refuses (an unknown category under ``data.unknown_category:
error``, a missing value the model cannot fill) answers NaN, since a graph cannot stop with a
message. Without a table encoding, the input is the matrix ``input`` of shape
``(batch, features)`` in raw units. From there the graph is::

    Sub(input, input_offset) -> Mul(input_factor)          (left out where offset 0 / factor 1)
    MatMul(W_l) -> Add(b_l) -> activation                   every hidden layer
    MatMul(W_L) -> Add(b_L) -> output activation            model.output: Softmax(axis=1), or
                                                            any activation as in hidden layers
                            -> Concat(1 - p, p)             binary: "probabilities"
                            -> Div(target_factor) -> Add(target_offset)   regression: "values"
                                                            (else "probabilities" as they are)

Every activation, hidden or output, is the formula the engine uses, options included: an ONNX
operator where opset 17 has the same one (Relu, LeakyRelu, Elu, Sigmoid, Tanh, Softplus,
Softmax), else elementary operators (GELU's tanh form: ONNX's own Gelu arrives only in opset
20). An activation with no entry in ``ACTIVATION_NODES`` / ``OUTPUT_NODES`` is refused with an
``ExportError`` (``plan.activation_form``), never approximated. Opset 17 runs on onnxruntime
1.12 and later.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from bpnn.data.table import ColumnEncoding, TableEncoding
from bpnn.errors import ExportError
from bpnn.export.columns import MISSING_CELLS, text_spellings
from bpnn.export.extras import require
from bpnn.export.plan import InferencePlan, activation_form
from bpnn.nn.activations import Activation

OPSET = 17
#: ai.onnx.ml opset: LabelEncoder with string keys (onnxruntime 1.12 and later run it)
ML_OPSET = 2
#: IR version 8 is what opset 17 was released with; older runtimes refuse newer IR versions
IR_VERSION = 8
INPUT = "input"


class GraphBuilder:
    """Collects nodes and initializers (float32 unless told) under unique names, none of them
    the name of a graph input (a table model's inputs are named after its columns)."""

    def __init__(self, onnx: Any, inputs: Sequence[str] = ()) -> None:
        self.onnx = onnx
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0
        self._inputs = set(inputs)  # the graph's inputs (column names): no other name may be one

    def _free(self, name: str) -> str:
        while name in self._inputs:
            name += "_"
        return name

    def fresh(self, hint: str) -> str:
        self._count += 1
        return self._free(f"{hint}_{self._count}")

    def constant(self, name: str, value: np.ndarray | float, dtype: Any = np.float32) -> str:
        name = self._free(name)
        array = np.asarray(value, dtype=dtype)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name=name))
        return name

    def node(
        self,
        op: str,
        inputs: list[str],
        output: str | None = None,
        domain: str = "",
        **attributes: Any,
    ) -> str:
        output = self._free(output) if output else self.fresh(op.lower())
        self.nodes.append(
            self.onnx.helper.make_node(op, inputs, [output], domain=domain, **attributes)
        )
        return output

    def name_output(self, tensor: str, name: str) -> str:
        """Give the graph's result ``tensor`` the name ``name``: the last node's output is
        renamed, or (``tensor`` is an input, the identity output of one layer) an ``Identity``
        node added."""
        name = self._free(name)
        if self.nodes and self.nodes[-1].output[0] == tensor:
            self.nodes[-1].output[0] = name
            return name
        return self.node("Identity", [tensor], name)


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
#: what ``model.output`` may be: every activation, and softmax over each row
OUTPUT_NODES: dict[str, Callable[[GraphBuilder, str, Activation], str]] = {
    **ACTIVATION_NODES,
    "softmax": lambda graph, x, act: graph.node("Softmax", [x], axis=1),
}


def _numeric_block(graph: GraphBuilder, column: ColumnEncoding) -> str:
    """A numeric column's input, its missing values (NaN) filled in when the model can."""
    if column.fill is None:
        return column.name
    gone = graph.node("IsNaN", [column.name])
    return graph.node(
        "Where", [gone, graph.constant(graph.fresh("fill"), column.fill), column.name]
    )


def _categorical_block(graph: GraphBuilder, column: ColumnEncoding, unknown: str) -> str:
    """A categorical column's string input as its one-hot block ``(batch, categories)``."""
    codes = {
        text: i for i, category in enumerate(column.categories) for text in text_spellings(category)
    }
    # as the table encoder: a missing cell is the fill's category (no fill: refused, -2)
    missing_code = -2 if column.fill is None else codes.get(str(column.fill), -1)
    codes = {**{cell: missing_code for cell in MISSING_CELLS}, **codes}
    index = graph.node(
        "LabelEncoder",
        [column.name],
        domain="ai.onnx.ml",
        keys_strings=list(codes),
        values_int64s=list(codes.values()),
        default_int64=-1,
    )
    every = graph.constant(
        graph.fresh("categories"), np.arange(len(column.categories))[None, :], np.int64
    )
    is_category = graph.node("Equal", [index, every])
    one_hot = graph.node("Cast", [is_category], to=graph.onnx.TensorProto.FLOAT)
    limit = 0 if unknown == "error" else -1  # codes below it are rows bpnn refuses
    if column.fill is not None and limit == -1:
        return one_hot
    refused = graph.node("Less", [index, graph.constant("refused_below", limit, np.int64)])
    nan_or_zero = graph.node(
        "Where", [refused, graph.constant("nan", np.nan), graph.constant("zero", 0.0)]
    )
    return graph.node("Add", [one_hot, nan_or_zero])


def _table_inputs(graph: GraphBuilder, encoding: TableEncoding) -> tuple[list[Any], str]:
    """The graph's inputs (one per raw column) and the features the encoding makes of them."""
    helper, tensor = graph.onnx.helper, graph.onnx.TensorProto
    inputs, blocks = [], []
    for column in encoding.columns:
        if column.kind == "numeric":
            inputs.append(helper.make_tensor_value_info(column.name, tensor.FLOAT, ["batch", 1]))
            blocks.append(_numeric_block(graph, column))
        else:
            inputs.append(helper.make_tensor_value_info(column.name, tensor.STRING, ["batch", 1]))
            blocks.append(_categorical_block(graph, column, encoding.unknown_category))
    features = graph.node("Concat", blocks, "features", axis=1)
    return inputs, features


def build_onnx(plan: InferencePlan) -> Any:
    """The ``onnx.ModelProto`` of ``plan``, checked by ``onnx.checker``."""
    onnx = require("onnx", "onnx")
    helper, tensor = onnx.helper, onnx.TensorProto
    output_name = "values" if plan.task == "regression" else "probabilities"
    if plan.encoding is not None:
        if output_name in plan.encoding.column_names:
            raise ExportError(
                f"onnx: the input column '{output_name}' has the name of the model's output; "
                "rename the column and train again, or export to torch or sklearn"
            )
        graph = GraphBuilder(onnx, plan.encoding.column_names)
        inputs, x = _table_inputs(graph, plan.encoding)
    else:
        graph = GraphBuilder(onnx)
        inputs = [helper.make_tensor_value_info(INPUT, tensor.FLOAT, ["batch", plan.n_features])]
        x = INPUT
    if np.any(plan.input_offset):
        x = graph.node("Sub", [x, graph.constant("input_offset", plan.input_offset)], "centred")
    if not np.all(plan.input_factor == 1):
        x = graph.node("Mul", [x, graph.constant("input_factor", plan.input_factor)], "scaled")
    for i, layer in enumerate(plan.layers):
        z = graph.node("MatMul", [x, graph.constant(f"{i}.weight", layer.weight)])
        x = graph.node("Add", [z, graph.constant(f"{i}.bias", layer.bias)], f"z{i}")
        if layer.activation is not None:
            nodes = activation_form(ACTIVATION_NODES, layer.activation, "model.activation", "onnx")
            x = nodes(graph, x, layer.activation)

    output_nodes = activation_form(OUTPUT_NODES, plan.output, "model.output", "onnx")
    output = output_nodes(graph, x, plan.output)
    if plan.task == "binary":  # one sigmoid unit, answered as [1 - p, p]
        not_p = graph.node("Sub", [graph.constant("one", 1.0), output], "one_minus_p")
        output = graph.node("Concat", [not_p, output], axis=1)
    elif plan.target_factor is not None and plan.target_offset is not None:
        output = graph.node("Div", [output, graph.constant("target_factor", plan.target_factor)])
        output = graph.node("Add", [output, graph.constant("target_offset", plan.target_offset)])
    output = graph.name_output(output, output_name)

    opsets = [helper.make_opsetid("", OPSET)]
    if plan.encoding is not None and any(c.kind != "numeric" for c in plan.encoding.columns):
        opsets.append(helper.make_opsetid("ai.onnx.ml", ML_OPSET))
    what = "raw features" if plan.encoding is None else "one raw column each"
    proto = helper.make_model(
        helper.make_graph(
            graph.nodes,
            f"bpnn_{plan.name}",
            inputs,
            [helper.make_tensor_value_info(output, tensor.FLOAT, ["batch", plan.n_outputs])],
            initializer=_unique(graph.initializers),
        ),
        opset_imports=opsets,
        producer_name="bpnn",
        producer_version=plan.metadata()["bpnn_version"],
        ir_version=IR_VERSION,
        doc_string=f"bpnn model {plan.name} ({plan.describe()}, {plan.task}); inputs: {what}",
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

"""PyTorch export without PyTorch: a safetensors file holding the state dict of a
``torch.nn.Sequential``, and the Python source that builds that ``Sequential`` and loads it.

bpnn never imports torch; the state dict is NumPy arrays written by ``safetensors.numpy``
(nothing pickled), and the source is text. The ``Sequential``, module by module::

    InputScaling(n)            x' = (x - offset) * factor (buffers "0.offset", "0.factor"),
                               a five-line module defined in the source: raw inputs in
    Linear(fan_in, fan_out)    weight (fan_out, fan_in) = W^T, batch norm folded in
    activation                 nn.Sigmoid, nn.Tanh, nn.ReLU, nn.LeakyReLU(slope), nn.ELU(alpha),
                               nn.GELU(approximate="tanh"), nn.Softplus, nn.Identity
    ...
    output activation          model.output: nn.Softmax(dim=1), or any activation above
                               (left out where it is the identity)
                               binary: then Linear(1, 2) with weight [[-1], [1]] and bias
                               [1, 0]: the [1 - p, p] that bpnn predict answers
                               regression with scaled targets: then Linear(k, k), diagonal
                               1 / target_factor, bias target_offset (the scaling inverted)

An activation with no entry in ``TORCH_MODULES`` / ``TORCH_OUTPUT_MODULES`` is refused with an
``ExportError`` (``plan.activation_form``), never approximated.

A model trained on a table reads its raw columns through ``encode(rows)``, a function in the
source: the rows (a pandas DataFrame, or a list of dicts from column name to cell) become the
matrix the ``Sequential`` takes, with the categories and fill values written into the source
(``COLUMNS``) and the rules of bpnn's table encoding (``bpnn/data/table.py``): a category by its
text (stripped, whole numbers without ``.0``), a missing cell (None, NaN, a blank, ``NA``,
``NaN``, ``null``, ``None`` in any case) filled in or refused, an unknown category all zeros or
refused, each refusal a ``ValueError`` naming the row and the column.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from bpnn.data.formats import MISSING_TOKENS
from bpnn.data.table import TableEncoding
from bpnn.export.extras import require
from bpnn.export.plan import InferencePlan, activation_form
from bpnn.nn.activations import Activation

#: engine activation name -> the torch module that computes the same formula (source text)
TORCH_MODULES: dict[str, Callable[[Activation], str]] = {
    "identity": lambda act: "torch.nn.Identity()",
    "sigmoid": lambda act: "torch.nn.Sigmoid()",
    "tanh": lambda act: "torch.nn.Tanh()",
    "relu": lambda act: "torch.nn.ReLU()",
    "leaky_relu": lambda act: f"torch.nn.LeakyReLU(negative_slope={act.options()['slope']!r})",
    "elu": lambda act: f"torch.nn.ELU(alpha={act.options()['alpha']!r})",
    "gelu": lambda act: 'torch.nn.GELU(approximate="tanh")',
    "softplus": lambda act: "torch.nn.Softplus()",
}
#: what ``model.output`` may be: every activation, and softmax over each row
TORCH_OUTPUT_MODULES: dict[str, Callable[[Activation], str]] = {
    **TORCH_MODULES,
    "softmax": lambda act: "torch.nn.Softmax(dim=1)",
}

INPUT_SCALING_SOURCE = '''\
class InputScaling(torch.nn.Module):
    """bpnn's fitted input scaling, x' = (x - offset) * factor: the model takes raw inputs."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.register_buffer("offset", torch.zeros(n))
        self.register_buffer("factor", torch.ones(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.offset) * self.factor
'''


ENCODE_SOURCE = '''\
def is_missing(value) -> bool:
    """None, NaN, pandas' NA, or a text bpnn reads as "no value" (in any case)."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    if isinstance(value, str):
        return value.strip().lower() in MISSING_CELLS
    return isinstance(value, numbers.Real) and math.isnan(value)


def category_text(value) -> str:
    """A cell as bpnn names its category: text stripped, whole numbers without ".0"."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return str(bool(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    number = float(value)
    return str(int(number)) if number.is_integer() else repr(number)


def encode(rows) -> torch.Tensor:
    """Raw rows (a pandas DataFrame, or a list of dicts: column name -> cell) as the float32
    tensor the model takes: the numbers, one-hot categories and filled-in missing values of
    bpnn's table encoding. A value bpnn predict refuses is a ValueError naming row and column."""
    if hasattr(rows, "to_dict"):
        rows = rows.to_dict("records")
    index = {name: {c: i for i, c in enumerate(cats)} for name, kind, cats, fill in COLUMNS}
    matrix = []
    for number, row in enumerate(rows, start=1):
        features = []
        for name, kind, categories, fill in COLUMNS:
            if name not in row:
                raise ValueError(f"row {number}: no column {name!r}")
            value = row[name]
            if is_missing(value):
                if fill is None:
                    raise ValueError(
                        f"row {number}, column {name!r}: a missing value, which the model "
                        f"cannot fill (it was trained with data.missing: {MISSING})"
                    )
                value = fill
            if kind == "numeric":
                try:
                    features.append(float(value))
                except (TypeError, ValueError):
                    message = f"row {number}, column {name!r}: {value!r} is not a number"
                    raise ValueError(message) from None
                continue
            one_hot = [0.0] * len(categories)
            text = category_text(value)
            if text in index[name]:
                one_hot[index[name][text]] = 1.0
            elif UNKNOWN_CATEGORY == "error":
                raise ValueError(
                    f"row {number}, column {name!r}: unknown category {text!r} (known: "
                    f"{', '.join(categories)})"
                )
            features += one_hot
        matrix.append(features)
    return torch.tensor(matrix, dtype=torch.float32).reshape(len(matrix), N_FEATURES)
'''


def encoding_source(encoding: TableEncoding, n_features: int) -> list[str]:
    """The lines that define ``encode(rows)``: the encoding's data, then ``ENCODE_SOURCE``."""
    missing_cells = "{" + ", ".join(repr(t.lower()) for t in sorted(MISSING_TOKENS)) + "}"
    lines = [
        f"N_FEATURES = {n_features}",
        f"MISSING = {encoding.missing!r}  # data.missing: what a missing value did in training",
        f"UNKNOWN_CATEGORY = {encoding.unknown_category!r}  # 'error', or 'ignore': all zeros",
        f"MISSING_CELLS = {missing_cells}  # texts read as missing, in any case",
        "# (name, kind, categories, fill): fill is what a missing value becomes (None: refused)",
        "COLUMNS = [",
        *(
            f"    ({c.name!r}, {c.kind!r}, {list(c.categories)!r}, {c.fill!r}),"
            for c in encoding.columns
        ),
        "]",
        "",
        "",
        ENCODE_SOURCE,
    ]
    return lines


@dataclass(frozen=True)
class TorchModule:
    """One module of the ``Sequential``: its constructor call (source text), the tensors of its
    state dict, and a comment for the source."""

    code: str
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    comment: str = ""

    def source_line(self) -> str:
        return f"    {self.code},  # {self.comment}" if self.comment else f"    {self.code},"


def _modules(plan: InferencePlan) -> list[TorchModule]:
    """The ``Sequential``'s modules in order."""
    modules = [
        TorchModule(
            f"InputScaling({plan.n_features})",
            {"offset": plan.input_offset, "factor": plan.input_factor},
        )
    ]
    for layer in plan.layers:
        fan_in, fan_out = layer.weight.shape
        weights = {"weight": layer.weight.T, "bias": layer.bias}
        modules.append(TorchModule(f"torch.nn.Linear({fan_in}, {fan_out})", weights))
        if layer.activation is not None:
            module = activation_form(TORCH_MODULES, layer.activation, "model.activation", "torch")
            modules.append(TorchModule(module(layer.activation)))
    output = activation_form(TORCH_OUTPUT_MODULES, plan.output, "model.output", "torch")
    if plan.output.name != "identity":  # the identity needs no module
        modules.append(TorchModule(output(plan.output)))
    if plan.task == "binary":
        both = {"weight": np.array([[-1.0], [1.0]]), "bias": np.array([1.0, 0.0])}
        modules.append(TorchModule("torch.nn.Linear(1, 2)", both, "[1 - p, p], as bpnn predict"))
    elif plan.target_factor is not None and plan.target_offset is not None:
        k = len(plan.target_factor)
        inverse = {"weight": np.diag(1.0 / plan.target_factor), "bias": plan.target_offset}
        modules.append(
            TorchModule(f"torch.nn.Linear({k}, {k})", inverse, "targets back in their own units")
        )
    return modules


def torch_state_dict(plan: InferencePlan) -> dict[str, np.ndarray]:
    """The ``Sequential``'s state dict as float32 arrays: ``"{index}.{tensor}"``."""
    return {
        f"{index}.{name}": np.ascontiguousarray(value, dtype=np.float32)
        for index, module in enumerate(_modules(plan))
        for name, value in module.tensors.items()
    }


def torch_source(plan: InferencePlan, weights_path: str) -> str:
    """Python source that builds the ``Sequential`` and loads ``weights_path`` into it."""
    answer = "probabilities" if plan.task in ("multiclass", "binary", "multilabel") else "values"
    if plan.encoding is None:
        intro = "it takes raw inputs, as `bpnn predict` does."
        imports = ["import torch"]
        encoding: list[str] = []
        usage = f"# {answer} = model(torch.as_tensor(X_raw, dtype=torch.float32))"
    else:
        intro = "encode(rows) takes the raw rows `bpnn predict` takes."
        imports = ["import math", "import numbers", "", "import torch"]
        encoding = [*encoding_source(plan.encoding, plan.n_features), ""]
        usage = f"# {answer} = model(encode(pandas.read_csv(...)))  # or a list of dicts"
    lines = [
        f"# bpnn model {plan.name!r} ({plan.describe()}, {plan.task}) as a torch.nn.Sequential.",
        f"# Written by `bpnn export --format torch`; {intro}",
        *imports,
        "from safetensors.torch import load_file",
        "",
        "",
        *encoding,
        INPUT_SCALING_SOURCE,
        "",
        "model = torch.nn.Sequential(",
        *(module.source_line() for module in _modules(plan)),
        ")",
        f"model.load_state_dict(load_file({weights_path!r}))",
        "model.eval()",
        usage,
        "",
    ]
    return "\n".join(lines)


def torch_bytes(plan: InferencePlan) -> bytes:
    """The safetensors file: the state dict, and the plan's metadata as its string metadata."""
    safetensors_numpy = require("safetensors.numpy", "torch")
    metadata = {"format": "pt", **plan.metadata()}
    return safetensors_numpy.save(torch_state_dict(plan), metadata=metadata)

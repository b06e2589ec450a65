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
    output                     nn.Softmax(dim=1)  (multiclass)
                               nn.Sigmoid, then Linear(1, 2) with weight [[-1], [1]] and bias
                               [1, 0]: the [1 - p, p] that bpnn predict answers (binary)
                               Linear(k, k), diagonal 1 / target_factor, bias target_offset:
                               the target scaling inverted (regression with scaled targets)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from bpnn.export.extras import require
from bpnn.export.plan import InferencePlan
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
            modules.append(TorchModule(TORCH_MODULES[layer.activation.name](layer.activation)))
    if plan.output == "softmax":
        modules.append(TorchModule("torch.nn.Softmax(dim=1)"))
    elif plan.output == "sigmoid" and plan.task != "binary":  # each output its own sigmoid
        modules.append(TorchModule("torch.nn.Sigmoid()"))
    elif plan.output == "sigmoid":
        modules.append(TorchModule("torch.nn.Sigmoid()"))
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
    lines = [
        f"# bpnn model {plan.name!r} ({plan.describe()}, {plan.task}) as a torch.nn.Sequential.",
        "# Written by `bpnn export --format torch`; it takes raw inputs, as `bpnn predict` does.",
        "import torch",
        "from safetensors.torch import load_file",
        "",
        "",
        INPUT_SCALING_SOURCE,
        "",
        "model = torch.nn.Sequential(",
        *(module.source_line() for module in _modules(plan)),
        ")",
        f"model.load_state_dict(load_file({weights_path!r}))",
        "model.eval()",
        f"# {answer} = model(torch.as_tensor(X_raw, dtype=torch.float32))",
        "",
    ]
    return "\n".join(lines)


def torch_bytes(plan: InferencePlan) -> bytes:
    """The safetensors file: the state dict, and the plan's metadata as its string metadata."""
    safetensors_numpy = require("safetensors.numpy", "torch")
    metadata = {"format": "pt", **plan.metadata()}
    return safetensors_numpy.save(torch_state_dict(plan), metadata=metadata)

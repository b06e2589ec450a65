"""How ``bpnn explain`` shows an ``Explanation`` (``bpnn.tools.explain``): as JSON (every number,
nested lists), as text for a terminal (small tensors in full, large ones summarized), and as
Markdown with LaTeX formulas. The formulas come from the components (``Formula``: text and
LaTeX); the numbers are the explanation's, never recomputed here."""

from __future__ import annotations

from typing import Any

import numpy as np

from bpnn.nn.activations import OUTPUT_ACTIVATIONS
from bpnn.nn.losses import LOSSES
from bpnn.tools.explain import Explanation

#: entries up to which a tensor is shown in full (``--full`` shows every tensor in full)
SMALL = 64
#: entries a summary of a large tensor shows
FEW = 6

#: how the header names each reduction
REDUCTION_WORDS = {
    "mean": "mean over the batch",
    "sum": "sum over the batch",
    "half_sum": "half the sum over the batch",
}


def loss_formula(name: str, reduction: str) -> tuple[str, str]:
    """The loss ``name`` under ``reduction`` as text and LaTeX: what is summed over what (the
    samples, or every element: samples and outputs), and what divides it (``n`` or ``n k``
    for the mean, nothing for the sum, 2 for the half sum)."""
    loss = LOSSES[name]
    term, term_tex, per_sample = loss.term.text, loss.term.latex, loss.per_sample
    over = "the n samples" if per_sample else "all n k elements (samples x outputs)"
    text = {
        "mean": f"L = mean over {over} of {term}",
        "sum": f"L = sum over {over} of {term} (not averaged)",
        "half_sum": f"L = 1/2 sum over {over} of {term}",
    }[reduction]
    count = "n" if per_sample else "nk"
    factor = {"mean": rf"\frac{{1}}{{{count}}} ", "sum": "", "half_sum": r"\frac{1}{2} "}
    index = "i" if per_sample else "i,k"
    return text, rf"L = {factor[reduction]}\sum_{{{index}}} {term_tex}"


def _divided(numerator: str, reduction: str, count: str, latex: bool = False) -> str:
    """``numerator`` divided as the reduction divides (mean: by ``count``; half_sum: by 2,
    which cancels a leading factor 2)."""
    if reduction == "sum":
        return numerator
    if reduction == "half_sum" and numerator.startswith("2 ("):
        return numerator[3:-1]  # 2 (a - t) / 2 = a - t
    divisor = count if reduction == "mean" else "2"
    if latex:
        return rf"\frac{{{numerator}}}{{{divisor.replace(' ', '')}}}"
    return f"{numerator} / ({divisor})" if " " in divisor else f"{numerator} / {divisor}"


# --- JSON -------------------------------------------------------------------------------------


def _nested(array: np.ndarray | None) -> Any:
    """An array as nested lists of Python floats (None stays None). float32 values are written
    in their shortest form (0.1, not 0.10000000149011612), which reads back to the same float32."""
    if array is None:
        return None
    array = np.asarray(array)
    if array.dtype == np.float32:
        shortest = [float(str(v)) for v in array.ravel()]  # str of a float32: its shortest form
        return np.array(shortest, dtype=object).reshape(array.shape).tolist()
    return array.astype(np.float64).tolist()


def to_json(explanation: Explanation) -> dict[str, Any]:
    """The explanation as plain data: nested lists in the engine's shapes (weights (fan_in,
    fan_out), batch first)."""
    e = explanation
    targets = e.labels if e.labels is not None else _nested(e.targets)
    out: dict[str, Any] = {
        "input": _nested(e.input),
        "targets": targets,
        "loss": float(e.loss),
        "layers": [
            {
                "name": layer.name,
                "activation": layer.activation,
                "weight": _nested(layer.weight),
                "bias": _nested(layer.bias),
                "z": _nested(layer.z),
                "a": _nested(layer.a),
                "delta": _nested(layer.delta),
                "grad_weight": _nested(layer.grad_weight),
                "grad_bias": _nested(layer.grad_bias),
            }
            for layer in e.layers
        ],
    }
    if e.classes is not None:
        out["classes"] = e.classes
    if e.update:
        out["update"] = {
            name: {key: _nested(value) for key, value in parts.items()}
            for name, parts in e.update.items()
        }
        out["lr"] = e.lr
    return out


# --- text -------------------------------------------------------------------------------------


def _number(value: float) -> str:
    return f"{value:.6g}"


def _summary(array: np.ndarray) -> str:
    flat = np.asarray(array, dtype=np.float64).ravel()
    shown = ", ".join(_number(v) for v in flat[:FEW])
    return (
        f"shape {'x'.join(map(str, array.shape))}, norm {_number(float(np.linalg.norm(flat)))}, "
        f"mean {_number(float(flat.mean()))}, min {_number(float(flat.min()))}, "
        f"max {_number(float(flat.max()))}; first entries {shown}, ..."
    )


def _matrix_lines(array: np.ndarray, full: bool, indent: str) -> list[str]:
    """A tensor as aligned rows (every entry), or its summary when large."""
    array = np.asarray(array, dtype=np.float64)
    if array.size > SMALL and not full:
        return [indent + _summary(array)]
    rows = array.reshape(1, -1) if array.ndim == 1 else array
    cells = [[_number(v) for v in row] for row in rows]
    width = max((len(c) for row in cells for c in row), default=1)
    return [indent + "[" + "  ".join(c.rjust(width) for c in row) + "]" for row in cells]


def _shape(array: np.ndarray) -> str:
    return "(" + " x ".join(map(str, array.shape)) + ")"


def _output_gradient(e: Explanation) -> tuple[str, str]:
    """``dL/da`` of the explained loss as text and LaTeX, divided as its reduction divides."""
    formula = LOSSES[e.loss_name].output_gradient_formula
    assert formula is not None  # a loss with the general chain rule has one
    text, latex = formula.text, formula.latex
    return (
        f"dL/da = {_divided(text, e.reduction, 'n k')}",
        r"\frac{\partial L}{\partial a} = " + _divided(latex, e.reduction, "n k", latex=True),
    )


def _fused_delta(e: Explanation) -> tuple[str, str]:
    """The fused output delta as text and LaTeX, divided as the reduction divides: by the
    samples ``n`` (cross-entropy) or the elements ``n k`` (binary cross-entropy's outputs)."""
    count = "n" if LOSSES[e.loss_name].per_sample else "n k"
    if e.reduction == "sum":
        return "a - t", "a - t"
    divisor = count if e.reduction == "mean" else "2"
    shown = f"({divisor})" if " " in divisor else divisor
    return f"(a - t) / {shown}", rf"\frac{{a - t}}{{{divisor.replace(' ', '')}}}"


def _activation_text(name: str) -> tuple[str, str]:
    g = OUTPUT_ACTIVATIONS[name]
    return g.formula.text, g.derivative_formula.text


def _output_delta_text(e: Explanation) -> str:
    last = e.layers[-1]
    if e.fused:
        return (
            f"delta = {_fused_delta(e)[0]} (fused: the output's g' cancels against the "
            "loss's dL/da)"
        )
    if last.activation == "softmax":
        return "delta = a * (dL/da - sum_k a_k dL/da_k) (the softmax Jacobian's product)"
    return "delta = dL/da * g'(z) (the general chain rule)"


def to_text(explanation: Explanation, full: bool = False) -> str:
    """The explanation as plain text, each value under the formula that made it."""
    e = explanation
    L = len(e.layers)
    sizes = [e.input.shape[1], *[layer.z.shape[1] for layer in e.layers]]
    out: list[str] = []
    add = out.append
    add(
        f"bpnn explain {e.source}: {' -> '.join(map(str, sizes))}, "
        f"{e.loss_name} ({REDUCTION_WORDS[e.reduction]}), {e.rows} of the training split"
    )
    add("notation: layer l = 1..L has parameters '{l-1}.weight' (W) and '{l-1}.bias' (b)")
    add("")
    add(f"input a0 = x, as the network sees it (scaled) {_shape(e.input)}")
    out += _matrix_lines(e.input, full, "  ")
    if e.labels is not None:
        add(f"targets t: class labels {e.labels} (class indices {np.asarray(e.targets).tolist()})")
    else:
        add(f"targets t {_shape(e.targets)}")
        out += _matrix_lines(e.targets, full, "  ")
    add("")
    add("forward")
    for number, layer in enumerate(e.layers, start=1):
        role = "output layer" if number == L else "hidden layer"
        g_text, _ = _activation_text(layer.activation)
        add(f"{role} {number} ('{layer.name}.weight', '{layer.name}.bias'): {layer.activation}")
        add(f"  W{number} {_shape(layer.weight)}")
        out += _matrix_lines(layer.weight, full, "    ")
        if layer.bias is not None:
            add(f"  b{number}")
            out += _matrix_lines(layer.bias, full, "    ")
        add(f"  z{number} = a{number - 1} W{number} + b{number}")
        out += _matrix_lines(layer.z, full, "    ")
        add(f"  a{number} = {layer.activation}(z{number}), g(z) = {g_text}")
        out += _matrix_lines(layer.a, full, "    ")
    add(f"loss: {loss_formula(e.loss_name, e.reduction)[0]}")
    l2 = f" (with the L2 term {e.l2:g}/2 * sum W^2)" if e.l2 else ""
    add(f"  L = {_number(e.loss)}{l2}")
    add("")
    add("backward")
    for number in range(L, 0, -1):
        layer = e.layers[number - 1]
        _, dg_text = _activation_text(layer.activation)
        if number == L:
            add(f"output layer {number}: {_output_delta_text(e)}")
            if layer.output_gradient is not None:
                add(f"  {_output_gradient(e)[0]}")
                out += _matrix_lines(layer.output_gradient, full, "    ")
            if layer.derivative is not None and not e.fused:
                add(f"  g'(z{number}) = {dg_text}")
                out += _matrix_lines(layer.derivative, full, "    ")
        else:
            add(
                f"hidden layer {number}: delta{number} = (delta{number + 1} "
                f"W{number + 1}^T) * g'(z{number}), g'(z) = {dg_text}"
            )
            add(f"  g'(z{number})")
            out += _matrix_lines(layer.derivative, full, "    ")
        add(f"  delta{number} = dL/dz{number}")
        out += _matrix_lines(layer.delta, full, "    ")
        add(f"  dL/dW{number} = a{number - 1}^T delta{number}   ('{layer.name}.weight')")
        out += _matrix_lines(layer.grad_weight, full, "    ")
        if layer.grad_bias is not None:
            add(f"  dL/db{number} = sum over the batch of delta{number}   ('{layer.name}.bias')")
            out += _matrix_lines(layer.grad_bias, full, "    ")
    if e.l2:
        add(f"  (every dL/dW includes the L2 term {e.l2:g} * W)")
    if e.update:
        add("")
        add(f"update: {e.optimizer}, learning rate lr = {e.lr:g}")
        for line in (e.optimizer_formula or "").splitlines():
            add(f"  {line}")
        for name, parts in e.update.items():
            if parts["old"].size > SMALL and not full:
                add(f"  {name}")
                for key in ("old", "grad", "new"):
                    out += _matrix_lines(parts[key], full, f"    {key:>4} ")
                continue
            add(f"  {name}: old  |  gradient g  |  new")
            columns = [_matrix_lines(parts[key], True, "") for key in ("old", "grad", "new")]
            widths = [max(len(line) for line in column) for column in columns]
            for row in zip(*columns, strict=True):
                add("    " + "  |  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    return "\n".join(out) + "\n"


# --- Markdown ---------------------------------------------------------------------------------


def _table(array: np.ndarray, full: bool) -> list[str]:
    """A tensor as a Markdown table (rows of the batch or of fan_in), or its summary."""
    array = np.asarray(array, dtype=np.float64)
    if array.size > SMALL and not full:
        return ["", _summary(array), ""]
    rows = array.reshape(1, -1) if array.ndim == 1 else array
    header = "| " + " | ".join(f"[{j}]" for j in range(rows.shape[1])) + " |"
    lines = ["", header, "|" + "---:|" * rows.shape[1]]
    lines += ["| " + " | ".join(_number(v) for v in row) + " |" for row in rows]
    return [*lines, ""]


def to_markdown(explanation: Explanation, full: bool = False) -> str:
    """The explanation as a document for notes: formulas in LaTeX, numbers in tables."""
    e = explanation
    L = len(e.layers)
    sizes = [e.input.shape[1], *[layer.z.shape[1] for layer in e.layers]]
    out: list[str] = []
    add = out.append
    add(f"# One step of backpropagation: `{e.source}`")
    add("")
    add(
        f"Network {' → '.join(map(str, sizes))}, loss `{e.loss_name}` "
        f"({REDUCTION_WORDS[e.reduction]}), {e.rows} of the training split. "
        "Layer $l$ has the weights $W^{(l)}$ (parameter `{l-1}.weight`, shape fan_in × "
        "fan_out) and biases $b^{(l)}$."
    )
    add("")
    add("## Input and targets")
    add("")
    add("$a^{(0)} = x$, as the network sees it (after scaling):")
    out += _table(e.input, full)
    if e.labels is not None:
        add(f"Targets: class labels {e.labels} (class indices {np.asarray(e.targets).tolist()}).")
        add("")
    else:
        add("Targets $t$:")
        out += _table(e.targets, full)
    add("## Forward pass")
    add("")
    for number, layer in enumerate(e.layers, start=1):
        g_tex = OUTPUT_ACTIVATIONS[layer.activation].formula.latex
        role = "output layer" if number == L else "hidden layer"
        add(f"### Layer {number} ({role}, {layer.activation})")
        add("")
        add(f"$W^{{({number})}}$ (`{layer.name}.weight`):")
        out += _table(layer.weight, full)
        if layer.bias is not None:
            add(f"$b^{{({number})}}$ (`{layer.name}.bias`):")
            out += _table(layer.bias, full)
        add(f"$z^{{({number})}} = a^{{({number - 1})}} W^{{({number})}} + b^{{({number})}}$:")
        out += _table(layer.z, full)
        add(f"$a^{{({number})}} = g(z^{{({number})}})$ with $g(z) = {g_tex}$:")
        out += _table(layer.a, full)
    loss_tex = loss_formula(e.loss_name, e.reduction)[1]
    add("### Loss")
    add("")
    add(f"$${loss_tex}$$")
    add("")
    l2 = f" (with the L2 term $\\frac{{{e.l2:g}}}{{2}} \\sum W^2$)" if e.l2 else ""
    add(f"$L = {_number(e.loss)}${l2}")
    add("")
    add("## Backward pass")
    add("")
    for number in range(L, 0, -1):
        layer = e.layers[number - 1]
        dg_tex = OUTPUT_ACTIVATIONS[layer.activation].derivative_formula.latex
        add(f"### Layer {number}")
        add("")
        if number == L and e.fused:
            add(f"$\\delta^{{({number})}} = {_fused_delta(e)[1]}$ (fused: exact and stable)")
            add("")
        elif number == L:
            add(f"${_output_gradient(e)[1]}$:")
            out += _table(layer.output_gradient, full)
            if layer.activation == "softmax":
                add(
                    f"$\\delta^{{({number})}} = a \\odot \\left(\\frac{{\\partial L}}"
                    "{\\partial a} - \\sum_k a_k \\frac{\\partial L}{\\partial a_k}\\right)$"
                )
                add("")
            else:
                add(f"$g'(z^{{({number})}}) = {dg_tex}$:")
                out += _table(layer.derivative, full)
                add(
                    f"$\\delta^{{({number})}} = \\frac{{\\partial L}}{{\\partial a}} \\odot "
                    f"g'(z^{{({number})}})$"
                )
                add("")
        else:
            add(f"$g'(z^{{({number})}}) = {dg_tex}$:")
            out += _table(layer.derivative, full)
            add(
                f"$\\delta^{{({number})}} = \\left(\\delta^{{({number + 1})}} "
                f"W^{{({number + 1})\\top}}\\right) \\odot g'(z^{{({number})}})$"
            )
            add("")
        add(f"$\\delta^{{({number})}}$:")
        out += _table(layer.delta, full)
        add(
            f"$\\frac{{\\partial L}}{{\\partial W^{{({number})}}}} = "
            f"a^{{({number - 1})\\top}} \\delta^{{({number})}}$:"
        )
        out += _table(layer.grad_weight, full)
        if layer.grad_bias is not None:
            add(
                f"$\\frac{{\\partial L}}{{\\partial b^{{({number})}}}} = "
                f"\\sum_i \\delta^{{({number})}}_i$:"
            )
            out += _table(layer.grad_bias, full)
    if e.update:
        add(f"## Update: `{e.optimizer}`, learning rate {e.lr:g}")
        add("")
        add("```")
        add(e.optimizer_formula or "")
        add("```")
        add("")
        for name, parts in e.update.items():
            add(f"### `{name}`")
            for key, title in (("old", "old value"), ("grad", "gradient"), ("new", "new value")):
                add("")
                add(f"{title}:")
                out += _table(parts[key], full)
    return "\n".join(out).rstrip() + "\n"

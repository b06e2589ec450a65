"""Specification of ``bpnn explain``: one step of backpropagation in numbers. The numbers are the
engine's own: checked against ``loss_and_gradients``, central differences, a hand calculation
of the worked example, and one real training step."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bpnn.config import load_config, validate
from bpnn.errors import ConfigError, DataError
from bpnn.model import make_seeds
from bpnn.nn.activations import ACTIVATIONS, OUTPUT_ACTIVATIONS
from bpnn.nn.formula import Formula
from bpnn.nn.layers import CHECK
from bpnn.nn.losses import LOSSES
from bpnn.nn.optimizers import OPTIMIZERS
from bpnn.run import build_model, load_data, run_training
from bpnn.tools.explain import explain
from bpnn.tools.explain_views import to_json, to_markdown, to_text
from tests.support import REPO

WORKED = REPO / "configs" / "worked-example.yaml"


def _sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


# --- the worked example, by hand ---------------------------------------------------------------


def test_worked_example_numbers_equal_the_hand_calculation() -> None:
    x = [1.0, 0.5, -1.0]
    t = [1.0, 0.0]
    W1 = [[0.1, -0.2], [0.3, 0.4], [-0.5, 0.2]]
    b1 = [0.1, -0.1]
    W2 = [[0.6, -0.3], [0.2, 0.7]]
    b2 = [0.0, 0.1]
    lr = 0.5
    # forward: z = a W + b, a = sigmoid(z)
    z1 = [sum(x[i] * W1[i][j] for i in range(3)) + b1[j] for j in range(2)]
    assert z1 == pytest.approx([0.85, -0.3])  # 0.1 + 0.15 + 0.5 + 0.1 and -0.2 + 0.2 - 0.2 - 0.1
    a1 = [_sigmoid(z) for z in z1]
    z2 = [sum(a1[i] * W2[i][j] for i in range(2)) + b2[j] for j in range(2)]
    a2 = [_sigmoid(z) for z in z2]
    # loss: the mean over the two outputs of (a - t)^2, i.e. 1/2 sum (a - t)^2
    loss = sum((a2[k] - t[k]) ** 2 for k in range(2)) / 2
    # output delta: dL/da * g'(z) = (2 (a - t) / 2) * a (1 - a)
    delta2 = [(a2[k] - t[k]) * a2[k] * (1 - a2[k]) for k in range(2)]
    dW2 = [[a1[i] * delta2[j] for j in range(2)] for i in range(2)]
    # hidden delta: (delta2 W2^T) * a1 (1 - a1)
    delta1 = [sum(delta2[j] * W2[i][j] for j in range(2)) * a1[i] * (1 - a1[i]) for i in range(2)]
    dW1 = [[x[i] * delta1[j] for j in range(2)] for i in range(3)]
    new_W1 = [[W1[i][j] - lr * dW1[i][j] for j in range(2)] for i in range(3)]
    new_b2 = [b2[j] - lr * delta2[j] for j in range(2)]

    e = explain(load_config(WORKED), step=True)
    hidden, output = e.layers
    close = {"rel": 1e-5, "abs": 1e-7}  # float32, as training computes
    assert hidden.z.ravel().tolist() == pytest.approx(z1, **close)
    assert hidden.a.ravel().tolist() == pytest.approx(a1, **close)
    assert output.z.ravel().tolist() == pytest.approx(z2, **close)
    assert output.a.ravel().tolist() == pytest.approx(a2, **close)
    assert e.loss == pytest.approx(loss, **close)
    assert output.delta.ravel().tolist() == pytest.approx(delta2, **close)
    assert output.grad_weight.ravel().tolist() == pytest.approx(np.ravel(dW2), **close)
    assert hidden.delta.ravel().tolist() == pytest.approx(delta1, **close)
    assert hidden.grad_weight.ravel().tolist() == pytest.approx(np.ravel(dW1), **close)
    assert e.update["0.weight"]["new"].ravel().tolist() == pytest.approx(np.ravel(new_W1), **close)
    assert e.update["1.bias"]["new"].ravel().tolist() == pytest.approx(new_b2, **close)
    assert e.lr == lr
    assert "w <- w - lr * g" in (e.optimizer_formula or "")


# --- the numbers are the engine's, for every pairing ------------------------------------------

RNG = np.random.default_rng(7)
X_INLINE = RNG.normal(size=(6, 3)).round(3).tolist()
LABELS = [0, 1, 2, 0, 1, 2]
VALUES = RNG.normal(size=(6, 2)).round(3).tolist()


def _case(
    loss: str = "mse", hidden: str = "tanh", output: str = "auto", **extra: Any
) -> dict[str, Any]:
    task = LOSSES[loss].task
    one_hot = extra.pop("one_hot", False)
    y = (
        LABELS
        if task == "multiclass" or one_hot
        else [v % 2 for v in LABELS]
        if task == "binary"
        else VALUES
    )
    loss_section: dict[str, Any] = {"name": loss, **extra}
    return {
        "seed": 3,
        "data": {"source": "inline", "X": X_INLINE, "y": y, "one_hot": one_hot},
        "model": {
            "hidden": [4, 3],
            "activation": hidden,
            "output": output,
            "init": "xavier_normal",
        },
        "loss": loss_section,
        "train": {"dtype": "float64"},
    }


CASES: dict[str, dict[str, Any]] = {}
for _activation in ACTIVATIONS:
    CASES[f"hidden {_activation} x mse"] = _case(hidden=_activation)
for _loss in LOSSES:
    CASES[f"{_loss}"] = _case(_loss)
    CASES[f"{_loss} sum"] = _case(_loss, reduction="sum")
    if LOSSES[_loss].task == "regression":
        for _output in OUTPUT_ACTIVATIONS:
            CASES[f"{_output} output x {_loss}"] = _case(_loss, output=_output)
        for _output in ("sigmoid", "softmax", "identity"):
            CASES[f"{_output} output x {_loss} one-hot"] = _case(
                _loss, output=_output, one_hot=True
            )
CASES["textbook: sigmoid x mse one-hot sum"] = _case(
    "mse", hidden="sigmoid", output="sigmoid", one_hot=True, reduction="sum"
)


@pytest.mark.parametrize("raw", list(CASES.values()), ids=list(CASES))
def test_explained_numbers_are_the_engines_and_match_central_differences(
    raw: dict[str, Any],
) -> None:
    config = validate(raw)
    e = explain(config, batch=6)
    # the engine's own loss_and_gradients on the same batch and weights
    data = load_data(config)
    model = build_model(config, data, make_seeds(config.seed)[0])
    loss = model.network.loss_and_gradients(e.input, e.targets, mode=CHECK)
    grads = model.network.gradients()
    assert e.loss == loss
    for layer in e.layers:
        np.testing.assert_array_equal(layer.grad_weight, grads[f"{layer.name}.weight"])
        np.testing.assert_array_equal(layer.grad_bias, grads[f"{layer.name}.bias"])
        np.testing.assert_array_equal(layer.weight, model.parameters()[f"{layer.name}.weight"])
    # the shown formulas hold between the shown numbers
    previous = e.input
    for i, layer in enumerate(e.layers):
        np.testing.assert_allclose(layer.z, previous @ layer.weight + layer.bias, rtol=1e-12)
        np.testing.assert_allclose(layer.grad_weight, previous.T @ layer.delta, rtol=1e-12)
        np.testing.assert_allclose(layer.grad_bias, layer.delta.sum(axis=0), rtol=1e-12)
        if i + 1 < len(e.layers):
            after = e.layers[i + 1]
            np.testing.assert_allclose(
                layer.delta, (after.delta @ after.weight.T) * layer.derivative, rtol=1e-12
            )
        previous = layer.a
    # central differences of the engine's loss, entry by entry
    h = 1e-6
    for layer in e.layers:
        weight = model.network.parameters()[f"{layer.name}.weight"]
        for index in np.ndindex(weight.shape):
            losses = []
            for offset in (h, -h):
                weight[index] = layer.weight[index] + offset
                losses.append(model.network.loss_and_gradients(e.input, e.targets, mode=CHECK))
            weight[index] = layer.weight[index]
            numerical = (losses[0] - losses[1]) / (2 * h)
            assert layer.grad_weight[index] == pytest.approx(numerical, rel=1e-5, abs=1e-8)


def test_every_registered_component_owns_the_formulas_explain_prints() -> None:
    """explain keeps no formula of its own: each activation, loss and optimizer class says its
    own (``formula``, ``derivative_formula``, ``term``, ``output_gradient_formula``,
    ``update_rule``), and a new one without them fails here."""
    for name, activation in OUTPUT_ACTIVATIONS.items():
        for formula in (activation.formula, activation.derivative_formula):
            assert isinstance(formula, Formula) and formula.text and formula.latex, name
    for name, loss in LOSSES.items():
        assert isinstance(loss.term, Formula) and loss.term.text and loss.term.latex, name
        chain_rule = loss.task == "regression"  # their output delta is dL/da * g'(z)
        assert (loss.output_gradient_formula is not None) == chain_rule, name
    for name, optimizer in OPTIMIZERS.items():
        assert optimizer.update_rule.strip() and "<-" in optimizer.update_rule, name
        assert "::" not in (optimizer.__doc__ or ""), f"{name}: the rule is update_rule's alone"


def test_step_equals_one_real_training_step(tmp_path: Path) -> None:
    raw = _case("cross_entropy", hidden="relu")
    raw["optimizer"] = {"name": "adam", "lr": 0.01}
    raw["train"] = {"epochs": 1, "batch_size": 6, "shuffle": False}  # one step on all six rows
    raw["optimizer"]["weight_decay"] = 0.01  # its L2 term is part of the step
    config = validate(raw)
    e = explain(config, batch=6, step=True)
    run_dir, _ = run_training(config, tmp_path / "run")
    from bpnn import checkpoint

    trained = checkpoint.load(run_dir / "checkpoints" / "last.npz").params
    for name, parts in e.update.items():
        np.testing.assert_array_equal(parts["new"], trained[name])
        assert not np.array_equal(parts["old"], parts["new"])


def test_explain_a_checkpoint_uses_its_weights(tmp_path: Path) -> None:
    config = load_config(WORKED)
    run_dir, _ = run_training(config, tmp_path / "run")
    from bpnn import checkpoint

    saved = checkpoint.load(run_dir / "checkpoints" / "last.npz").params
    e = explain(config, checkpoint=run_dir / "checkpoints" / "last.npz")
    np.testing.assert_array_equal(e.layers[0].weight, saved["0.weight"])
    assert e.loss < explain(config).loss  # fifty steps later the sample fits better


def test_sample_and_batch_out_of_range_are_data_errors() -> None:
    config = load_config(WORKED)
    with pytest.raises(DataError, match=r"--sample 1: the training split has samples 0\.\.0"):
        explain(config, sample=1)
    with pytest.raises(DataError, match="--batch 2"):
        explain(config, batch=2)


def test_batch_norm_is_refused_with_a_pointer_to_gradcheck() -> None:
    raw = _case()
    raw["model"]["batch_norm"] = True
    with pytest.raises(ConfigError, match="gradcheck"):
        explain(validate(raw))


# --- shown as JSON, text and Markdown -----------------------------------------------------------


def test_json_has_the_documented_keys_in_the_engines_shapes() -> None:
    out = to_json(explain(load_config(WORKED), step=True))
    assert {"input", "targets", "loss", "layers", "update"} <= set(out)
    assert out["input"] == [[1.0, 0.5, -1.0]]
    assert out["targets"] == [[1.0, 0.0]]
    assert [layer["name"] for layer in out["layers"]] == ["0", "1"]
    first = out["layers"][0]
    assert np.shape(first["grad_weight"]) == (3, 2)  # (fan_in, fan_out)
    assert np.shape(first["z"]) == (1, 2)  # batch first
    assert np.shape(first["grad_bias"]) == (2,)
    assert set(out["update"]) == {"0.weight", "0.bias", "1.weight", "1.bias"}
    assert set(out["update"]["0.weight"]) == {"old", "grad", "new"}
    json.dumps(out)  # plain data
    assert "update" not in to_json(explain(load_config(WORKED)))


def test_classification_targets_are_the_labels() -> None:
    raw = _case("cross_entropy")
    raw["data"]["y"] = ["cat", "dog", "owl", "cat", "dog", "owl"]
    out = to_json(explain(validate(raw), batch=2))
    assert out["targets"] == ["cat", "dog"]
    assert out["classes"] == ["cat", "dog", "owl"]


def test_text_shows_small_tensors_whole_and_large_ones_summarized() -> None:
    text = to_text(explain(load_config(WORKED), step=True))
    assert "z1 = a0 W1 + b1" in text
    assert "[0.85  -0.3]" in text
    assert "delta1 = (delta2 W2^T) * g'(z1)" in text
    assert "dL/dW2 = a1^T delta2" in text
    assert "old  |  gradient g  |  new" in text
    digits = load_config(REPO / "configs" / "digits.yaml")
    summarized = to_text(explain(digits))
    assert "shape 64x16, norm" in summarized
    full = to_text(explain(digits), full=True)
    assert "shape 64x16" not in full and len(full) > 10 * len(summarized) // 2


def test_markdown_has_latex_formulas_and_tables() -> None:
    md = to_markdown(explain(load_config(WORKED), step=True))
    assert "$z^{(1)} = a^{(0)} W^{(1)} + b^{(1)}$" in md
    assert r"\frac{\partial L}{\partial W^{(2)}} = a^{(1)\top} \delta^{(2)}" in md
    assert "| 0.85 | -0.3 |" in md
    assert "## Update: `sgd`, learning rate 0.5" in md


def _cli(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bpnn", *args], cwd=cwd, capture_output=True, text=True
    )


@pytest.mark.slow
def test_cli_explain_prints_json_and_writes_markdown_once(tmp_path: Path) -> None:
    notes = tmp_path / "step.md"
    result = _cli("explain", str(WORKED), "--step", "--json", "--markdown", str(notes))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["loss"] == pytest.approx(0.220277, rel=1e-5)
    assert notes.read_text(encoding="utf-8").startswith("# One step of backpropagation")
    again = _cli("explain", str(WORKED), "--markdown", str(notes))
    assert again.returncode == 2
    assert "already exists" in again.stderr and "\n" not in again.stderr.strip()


def test_formulas_follow_the_reduction_and_the_fused_pairs() -> None:
    textbook = explain(load_config(REPO / "configs" / "textbook-digits.yaml"))
    text = to_text(textbook)
    assert "dL/da = 2 (a - t)\n" in text  # summed: no division by the count
    assert r"\frac{\partial L}{\partial a} = 2 (a - t)$" in to_markdown(textbook)
    fused = to_text(explain(load_config(REPO / "configs" / "digits.yaml")))
    assert "delta = (a - t) / n (fused" in fused
    assert "dL/da = " not in fused  # no separate dL/da and g'(z) for a fused pair

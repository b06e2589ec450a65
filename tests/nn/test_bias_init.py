"""Specification of ``model.bias_init`` and the ``pytorch_linear`` initializer: biases start at 0
unless the config says otherwise, from the initializers that suit a bias vector, and a network
can start as PyTorch's ``nn.Linear`` layers do (its distribution; its very numbers through
``model.initial_weights``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bpnn.config import validate
from bpnn.errors import ConfigError
from bpnn.model import make_seeds
from bpnn.nn.initializers import BIAS_INITIALIZERS, INITIALIZERS, pytorch_linear
from bpnn.run import build_model, load_data


def _raw(**model: Any) -> dict[str, Any]:
    return {
        "data": {"source": "inline", "X": [[0.0, 1.0, 2.0]] * 2, "y": [[0.5], [1.5]]},
        "model": {"hidden": [5, 4], "activation": "tanh", **model},
        "loss": "mse",
        "optimizer": {"name": "sgd", "lr": 0.1},
    }


def _parameters(raw: dict[str, Any]) -> dict[str, np.ndarray]:
    config = validate(raw)
    model = build_model(config, load_data(config), make_seeds(config.seed)[0])
    return {name: value.copy() for name, value in model.parameters().items()}


def test_biases_start_at_zero_by_default_and_the_weights_do_not_move() -> None:
    default = _parameters(_raw())
    for name, value in default.items():
        if name.endswith(".bias"):
            np.testing.assert_array_equal(value, 0.0)
    assert validate(_raw()).resolved()["model"]["bias_init"] == "zeros"
    zeros = _parameters(_raw(bias_init="zeros"))
    assert all(np.array_equal(default[k], zeros[k]) for k in default)


def test_constant_bias_init_sets_every_bias() -> None:
    params = _parameters(_raw(bias_init={"name": "constant", "value": 0.1}))
    for name in ("0.bias", "1.bias", "2.bias"):
        np.testing.assert_array_equal(params[name], np.float32(0.1))


def test_pytorch_linear_draws_each_layers_weights_then_its_bias_within_one_over_sqrt_fan_in() -> (
    None
):
    params = _parameters(_raw(init="pytorch_linear", bias_init="pytorch_linear"))
    for layer, fan_in in (("0", 3), ("1", 5), ("2", 4)):
        bound = 1 / math.sqrt(fan_in)
        for kind in ("weight", "bias"):
            value = params[f"{layer}.{kind}"]
            assert np.all(np.abs(value) <= bound) and np.any(value != 0), (layer, kind)
    # the draws follow the layers: weight 0, bias 0, weight 1, ... from the init generator
    rng = make_seeds(0)[0]
    expected = {}
    for layer, (fan_in, fan_out) in enumerate([(3, 5), (5, 4), (4, 1)]):
        expected[f"{layer}.weight"] = pytorch_linear(rng, (fan_in, fan_out), fan_in, fan_out)
        expected[f"{layer}.bias"] = pytorch_linear(rng, (fan_out,), fan_in, fan_out)
    for name, value in expected.items():
        np.testing.assert_array_equal(params[name], value.astype(np.float32), err_msg=name)


@pytest.mark.parametrize(
    ("bias_init", "expected"),
    [
        ("he_normal", "model.bias_init: unknown bias initializer 'he_normal'"),
        ({"name": "constant", "valu": 1.0}, "model.bias_init.valu: unknown option"),
        ({"name": "constant", "value": "a"}, "model.bias_init.value:"),
    ],
)
def test_invalid_bias_init_is_one_line_naming_the_key(bias_init: Any, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate(_raw(bias_init=bias_init))
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_bias_initializers_are_initializers_for_a_vector() -> None:
    assert set(BIAS_INITIALIZERS) <= set(INITIALIZERS)
    assert "zeros" in BIAS_INITIALIZERS and "he_normal" not in BIAS_INITIALIZERS


@pytest.mark.torch
def test_pytorch_linear_has_the_bounds_of_torch_nn_linear() -> None:
    """PyTorch's ``nn.Linear(fan_in, fan_out)`` draws its weight with
    ``kaiming_uniform_(a=sqrt(5))`` and its bias from ``U(+-1/sqrt(fan_in))``: both within
    ``1/sqrt(fan_in)``, uniform. bpnn's draws (from its own generator) have the same bounds and
    spread."""
    torch = pytest.importorskip("torch")
    fan_in, fan_out = 300, 400
    torch.manual_seed(0)
    layer = torch.nn.Linear(fan_in, fan_out)
    ours = pytorch_linear(np.random.default_rng(0), (fan_in, fan_out), fan_in, fan_out)
    ours_bias = pytorch_linear(np.random.default_rng(1), (fan_out,), fan_in, fan_out)
    bound = 1 / math.sqrt(fan_in)
    for theirs, mine in (
        (layer.weight.detach().numpy(), ours),
        (layer.bias.detach().numpy(), ours_bias),
    ):
        for values in (theirs, mine):
            assert np.abs(values).max() <= bound
            assert np.abs(values).max() > 0.99 * bound
        assert mine.std() == pytest.approx(theirs.std(), rel=0.1)
    assert ours.std() == pytest.approx(bound / math.sqrt(3), rel=0.01)


@pytest.mark.torch
def test_a_torch_networks_weights_loaded_as_initial_weights_give_its_outputs(
    tmp_path: Path,
) -> None:
    torch = pytest.importorskip("torch")
    torch.manual_seed(3)
    net = torch.nn.Sequential(
        torch.nn.Linear(3, 5),
        torch.nn.Tanh(),
        torch.nn.Linear(5, 4),
        torch.nn.Tanh(),
        torch.nn.Linear(4, 1),
    ).double()
    tensors = {}
    for index, module in enumerate(m for m in net if isinstance(m, torch.nn.Linear)):
        tensors[f"{index}.weight"] = module.weight.detach().numpy().T  # bpnn: (fan_in, fan_out)
        tensors[f"{index}.bias"] = module.bias.detach().numpy()
    np.savez(tmp_path / "torch.npz", **tensors)
    raw = _raw(init="pytorch_linear", bias_init="pytorch_linear")
    raw["model"]["initial_weights"] = str(tmp_path / "torch.npz")
    raw["train"] = {"dtype": "float64"}
    config = validate(raw)
    model = build_model(config, load_data(config), make_seeds(0)[0])
    X = np.random.default_rng(0).normal(size=(6, 3))
    expected = net(torch.tensor(X)).detach().numpy()
    np.testing.assert_allclose(model.predict(X), expected, rtol=1e-12)

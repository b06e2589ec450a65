"""Specification of the activations in bpnn.nn.activations.

Evidence: values worked out with the ``math`` module one scalar at a time, derivatives against
central differences of the forward rule (hypothesis, float64), PyTorch's autograd as an oracle
(skipped without torch), and the contract around them (stability at +-1000, dtypes, validation,
the registry).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpnn.nn.activations import (
    ACTIVATIONS,
    ELU,
    OUTPUT_ACTIVATIONS,
    Activation,
    LeakyReLU,
    make_activation,
)

SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


def _gelu(z: float) -> float:
    return 0.5 * z * (1 + math.tanh(SQRT_2_OVER_PI * (z + 0.044715 * z**3)))


# name, options, scalar reference g(z) written with math only
REFERENCES: list[tuple[str, dict[str, float], Callable[[float], float]]] = [
    ("identity", {}, lambda z: z),
    ("sigmoid", {}, lambda z: 1 / (1 + math.exp(-z))),
    ("tanh", {}, math.tanh),
    ("relu", {}, lambda z: max(z, 0.0)),
    ("leaky_relu", {}, lambda z: z if z > 0 else 0.01 * z),
    ("leaky_relu", {"slope": 0.2}, lambda z: z if z > 0 else 0.2 * z),
    ("elu", {}, lambda z: z if z > 0 else math.expm1(z)),
    ("elu", {"alpha": 0.5}, lambda z: z if z > 0 else 0.5 * math.expm1(z)),
    ("gelu", {}, _gelu),
    ("softplus", {}, lambda z: math.log1p(math.exp(z))),
]
IDS = [name + "".join(f"-{k}={v}" for k, v in opts.items()) for name, opts, _ in REFERENCES]
INSTANCES = [(name, opts) for name, opts, _ in REFERENCES]

GRID = [-7.0, -2.5, -1.0, -0.3, -1e-4, 0.0, 1e-4, 0.25, 1.0, 3.0, 7.5]


def _evaluate(act: Activation, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = act.forward(z)
    return a, act.derivative(z, a)


def test_reference_table_covers_every_registered_activation() -> None:
    assert {name for name, _, _ in REFERENCES} == set(ACTIVATIONS)


@pytest.mark.parametrize(("name", "options", "reference"), REFERENCES, ids=IDS)
def test_forward_matches_scalar_math_reference(
    name: str, options: dict[str, float], reference: Callable[[float], float]
) -> None:
    z = np.array(GRID)
    expected = np.array([reference(v) for v in GRID])
    np.testing.assert_allclose(make_activation(name, **options).forward(z), expected, rtol=1e-14)


def test_forward_at_hand_worked_points() -> None:
    z = np.array([0.0, math.log(3)])
    np.testing.assert_allclose(make_activation("sigmoid").forward(z), [0.5, 0.75], rtol=1e-15)
    np.testing.assert_allclose(
        make_activation("softplus").forward(z), [math.log(2), math.log(4)], rtol=1e-15
    )
    np.testing.assert_allclose(make_activation("elu").forward(np.array([-math.log(2)])), [-0.5])
    assert make_activation("gelu").forward(np.array([0.0]))[0] == 0.0


@settings(max_examples=40, deadline=None, derandomize=True, database=None)
@given(
    data=st.lists(
        st.floats(-6, 6, allow_nan=False).filter(lambda v: abs(v) > 1e-3), min_size=1, max_size=16
    )
)
@pytest.mark.parametrize(("name", "options"), INSTANCES, ids=IDS)
def test_derivative_matches_central_difference_of_forward(
    name: str, options: dict[str, float], data: list[float]
) -> None:
    act = make_activation(name, **options)
    z = np.array(data, dtype=np.float64)
    h = 1e-6  # z stays at least 1e-3 from the kinks at 0, so z +- h never crosses one
    numerical = (act.forward(z + h) - act.forward(z - h)) / (2 * h)
    _, derivative = _evaluate(act, z)
    np.testing.assert_allclose(derivative, numerical, rtol=1e-6, atol=1e-8)


def test_derivatives_at_the_kink_follow_pytorch_convention() -> None:
    z = np.array([0.0])
    assert _evaluate(make_activation("relu"), z)[1][0] == 0.0
    assert _evaluate(make_activation("leaky_relu", slope=0.2), z)[1][0] == 0.2
    assert _evaluate(make_activation("elu", alpha=0.5), z)[1][0] == 0.5


def _torch_function(name: str, options: dict[str, float]) -> Callable:
    import torch.nn.functional as nnf

    return {
        "identity": lambda t: t,
        "sigmoid": nnf.sigmoid,
        "tanh": nnf.tanh,
        "relu": nnf.relu,
        "leaky_relu": lambda t: nnf.leaky_relu(t, options.get("slope", 0.01)),
        "elu": lambda t: nnf.elu(t, options.get("alpha", 1.0)),
        "gelu": lambda t: nnf.gelu(t, approximate="tanh"),
        "softplus": nnf.softplus,
    }[name]


@pytest.mark.parametrize(("name", "options"), INSTANCES, ids=IDS)
def test_forward_and_derivative_match_torch(
    name: str, options: dict[str, float], torch: ModuleType
) -> None:
    rng = np.random.default_rng(1)
    z = np.concatenate([rng.normal(0, 3, 200), [0.0, -30.0, 30.0]])  # 0: the kink convention
    zt = torch.tensor(z, requires_grad=True)
    out = _torch_function(name, options)(zt)
    out.sum().backward()
    a, derivative = _evaluate(make_activation(name, **options), z)
    np.testing.assert_allclose(a, out.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(derivative, zt.grad.numpy(), rtol=1e-12, atol=1e-12)


# (g(-1000), g(1000)) and (g'(-1000), g'(1000)) for each instance
LIMITS = {
    "identity": ((-1000, 1000), (1, 1)),
    "sigmoid": ((0, 1), (0, 0)),
    "tanh": ((-1, 1), (0, 0)),
    "relu": ((0, 1000), (0, 1)),
    "leaky_relu": ((-10, 1000), (0.01, 1)),
    "leaky_relu-slope=0.2": ((-200, 1000), (0.2, 1)),
    "elu": ((-1, 1000), (0, 1)),
    "elu-alpha=0.5": ((-0.5, 1000), (0, 1)),
    "gelu": ((0, 1000), (0, 1)),
    "softplus": ((0, 1000), (0, 1)),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "options"), INSTANCES, ids=IDS)
def test_extreme_inputs_give_exact_limits_without_overflow(
    name: str, options: dict[str, float], dtype: type
) -> None:
    key = IDS[INSTANCES.index((name, options))]
    z = np.array([-1000, 1000], dtype=dtype)
    # underflow (exp(-1000) -> 0) is the correct answer here; overflow or nan is not
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        a, derivative = _evaluate(make_activation(name, **options), z)
    values, slopes = LIMITS[key]
    np.testing.assert_allclose(a, values, rtol=1e-6, atol=1e-30)
    np.testing.assert_allclose(derivative, slopes, rtol=1e-6, atol=1e-30)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "options"), INSTANCES, ids=IDS)
def test_forward_and_derivative_preserve_dtype(
    name: str, options: dict[str, float], dtype: type
) -> None:
    z = np.linspace(-3, 3, 13).astype(dtype)
    a, derivative = _evaluate(make_activation(name, **options), z)
    assert (a.dtype, derivative.dtype) == (np.dtype(dtype), np.dtype(dtype))


@pytest.mark.parametrize(
    ("name", "options", "key"),
    [
        ("leaky_relu", {"slope": -0.1}, "slope"),
        ("leaky_relu", {"slope": 1.0}, "slope"),
        ("elu", {"alpha": 0.0}, "alpha"),
        ("elu", {"alpha": -1.0}, "alpha"),
    ],
)
def test_invalid_option_raises_value_error_naming_it(
    name: str, options: dict[str, float], key: str
) -> None:
    with pytest.raises(ValueError, match=key):
        make_activation(name, **options)


def test_options_are_reported_with_their_values() -> None:
    assert LeakyReLU(0.3).options() == {"slope": 0.3}
    assert ELU(2.0).options() == {"alpha": 2.0}
    assert make_activation("tanh").options() == {}


def test_unknown_name_lists_every_choice() -> None:
    with pytest.raises(ValueError, match="swish") as info:
        make_activation("swish")
    for name in ACTIVATIONS:
        assert name in str(info.value)


def _subclasses(cls: type) -> set[type]:
    direct = set(cls.__subclasses__())
    return direct.union(*(_subclasses(c) for c in direct))


def test_registry_holds_every_activation_class_under_its_own_name() -> None:
    engine_classes = {c for c in _subclasses(Activation) if c.__module__.startswith("bpnn.")}
    assert set(OUTPUT_ACTIVATIONS.values()) == engine_classes
    for name, cls in OUTPUT_ACTIVATIONS.items():
        assert cls.name == name
    # softmax mixes its inputs: an output activation only, never a hidden one
    assert set(OUTPUT_ACTIVATIONS) - set(ACTIVATIONS) == {"softmax"}


def test_softmax_backward_is_the_product_with_its_jacobian() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(size=(3, 4))
    grad = rng.normal(size=(3, 4))
    softmax = OUTPUT_ACTIVATIONS["softmax"]()
    a = softmax.forward(z)
    for i in range(3):
        jacobian = np.diag(a[i]) - np.outer(a[i], a[i])  # da_k/dz_j = a_k (1[k=j] - a_j)
        np.testing.assert_allclose(softmax.backward(z, a, grad)[i], grad[i] @ jacobian)


def test_element_wise_backward_is_grad_times_derivative() -> None:
    z = np.linspace(-2, 2, 6).reshape(2, 3)
    grad = np.arange(6.0).reshape(2, 3)
    for name in ACTIVATIONS:
        g = make_activation(name)
        a = g.forward(z)
        np.testing.assert_array_equal(g.backward(z, a, grad), grad * g.derivative(z, a))

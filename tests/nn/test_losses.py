"""Specification of the losses in bpnn.nn.losses.

``value(z, a, y)`` is the loss averaged over the batch (regression losses: over every element) and
``gradient(z, a, y)`` is ``dL/dz``, the gradient with respect to the output layer's
*pre-activation*. Evidence: numbers worked out by hand on 2-3 samples, PyTorch's losses and
autograd on the logits (skipped without torch), the chain rule through the full output Jacobian
computed independently, finite differences of ``value``, and the contract (reduction, huge
logits, dtypes, validation, the registry).
"""

from __future__ import annotations

import math
import warnings
from types import ModuleType

import numpy as np
import pytest
from helpers import torch_loss
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from bpnn.nn.losses import (
    LOSSES,
    BinaryCrossEntropy,
    ChainRule,
    CrossEntropy,
    Huber,
    Loss,
    MeanAbsoluteError,
    MeanSquaredError,
    make_loss,
)

LN2, LN3, LN5 = math.log(2), math.log(3), math.log(5)

# softmax rows [1/4, 1/2, 1/4] and [3/5, 1/5, 1/5]; targets: class 1 and class 2
Z_CE = np.array([[0.0, LN2, 0.0], [LN3, 0.0, 0.0]])
Y_CE = np.array([1, 2])
P_CE = np.array([[1 / 4, 1 / 2, 1 / 4], [3 / 5, 1 / 5, 1 / 5]])
ONEHOT_CE = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])

# regression: a = z (identity output), residuals r = a - y = [0.5, 0, -2, 3]
A_REG = np.array([[1.0, 2.0], [3.0, 4.0]])
Y_REG = np.array([[0.5, 2.0], [5.0, 1.0]])
R_REG = A_REG - Y_REG


def _call(loss: Loss, z: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    a = loss.output(z)
    return loss.value(z, a, y), loss.gradient(z, a, y)


# --- hand-worked numbers ------------------------------------------------------------------------
def test_softmax_cross_entropy_value_and_gradient_is_p_minus_onehot_over_n() -> None:
    value, gradient = _call(CrossEntropy(), Z_CE, Y_CE)
    assert value == pytest.approx((LN2 + LN5) / 2, rel=1e-14)  # mean(-ln 1/2, -ln 1/5)
    np.testing.assert_allclose(gradient, (P_CE - ONEHOT_CE) / 2, rtol=1e-14, atol=1e-16)


def test_label_smoothed_cross_entropy_on_hand_worked_batch() -> None:
    # eps = 0.3, K = 3: t = 0.7 onehot + 0.1 -> rows [.1, .8, .1] and [.1, .1, .8]
    value, gradient = _call(CrossEntropy(label_smoothing=0.3), Z_CE, Y_CE)
    row1 = -(0.1 * math.log(1 / 4) + 0.8 * math.log(1 / 2) + 0.1 * math.log(1 / 4))
    row2 = -(0.1 * math.log(3 / 5) + 0.1 * math.log(1 / 5) + 0.8 * math.log(1 / 5))
    assert value == pytest.approx((row1 + row2) / 2, rel=1e-14)
    t = np.array([[0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])
    np.testing.assert_allclose(gradient, (P_CE - t) / 2, rtol=1e-13, atol=1e-16)


def test_class_weighted_cross_entropy_divides_by_sum_of_sample_weights() -> None:
    # weights [1, 2, 0.5], targets [1, 2] -> sample weights [2, 0.5], sum 2.5
    value, gradient = _call(CrossEntropy(class_weights=[1.0, 2.0, 0.5]), Z_CE, Y_CE)
    assert value == pytest.approx((2 * LN2 + 0.5 * LN5) / 2.5, rel=1e-14)
    expected = np.array([[2.0], [0.5]]) * (P_CE - ONEHOT_CE) / 2.5
    np.testing.assert_allclose(gradient, expected, rtol=1e-14, atol=1e-16)


def test_weighted_and_smoothed_cross_entropy_weights_whole_sample_loss_as_documented() -> None:
    # bpnn: L = sum_i s_i (-sum_k t_ik log a_ik) / sum_i s_i with s_i = w[y_i]. (PyTorch weights
    # the smoothing term per class instead, so the two disagree when both options are set.)
    value, gradient = _call(
        CrossEntropy(label_smoothing=0.3, class_weights=[1.0, 2.0, 0.5]), Z_CE, Y_CE
    )
    row1 = 1.2 * LN2  # 0.1 ln 4 + 0.8 ln 2 + 0.1 ln 4
    row2 = LN5 - 0.1 * LN3  # -(0.1 ln 3/5 + 0.9 ln 1/5)
    assert value == pytest.approx((2 * row1 + 0.5 * row2) / 2.5, rel=1e-14)
    t = np.array([[0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])
    expected = np.array([[2.0], [0.5]]) * (P_CE - t) / 2.5
    np.testing.assert_allclose(gradient, expected, rtol=1e-13, atol=1e-16)


def test_binary_cross_entropy_on_hand_worked_logits() -> None:
    # sigmoid(0) = 1/2, sigmoid(ln 3) = 3/4, sigmoid(-ln 3) = 1/4
    z = np.array([[0.0], [LN3], [-LN3]])
    y = np.array([1, 0, 0])
    value, gradient = _call(BinaryCrossEntropy(), z, y)
    assert value == pytest.approx((LN2 + math.log(4) + math.log(4 / 3)) / 3, rel=1e-14)
    np.testing.assert_allclose(gradient, [[-1 / 6], [1 / 4], [1 / 12]], rtol=1e-14)


def test_mean_squared_error_averages_over_every_element() -> None:
    value, gradient = _call(MeanSquaredError(), A_REG, Y_REG)
    assert value == pytest.approx((0.25 + 0 + 4 + 9) / 4, rel=1e-15)
    np.testing.assert_allclose(gradient, 2 * R_REG / 4, rtol=1e-15)


def test_mean_absolute_error_gradient_is_sign_over_element_count_and_zero_at_a_tie() -> None:
    value, gradient = _call(MeanAbsoluteError(), A_REG, Y_REG)
    assert value == pytest.approx((0.5 + 0 + 2 + 3) / 4, rel=1e-15)
    np.testing.assert_array_equal(gradient, [[0.25, 0.0], [-0.25, 0.25]])


@pytest.mark.parametrize(
    ("delta", "terms", "clipped"),
    [
        (1.0, [0.125, 0.0, 1.5, 2.5], [[0.5, 0.0], [-1.0, 1.0]]),
        (2.5, [0.125, 0.0, 2.0, 4.375], [[0.5, 0.0], [-2.0, 2.5]]),
    ],
)
def test_huber_is_quadratic_inside_delta_and_linear_outside(
    delta: float, terms: list[float], clipped: list[list[float]]
) -> None:
    value, gradient = _call(Huber(delta=delta), A_REG, Y_REG)
    assert value == pytest.approx(sum(terms) / 4, rel=1e-15)
    np.testing.assert_allclose(gradient, np.array(clipped) / 4, rtol=1e-15)


# --- PyTorch as the oracle ----------------------------------------------------------------------
TORCH_CASES = [
    ("cross_entropy", {}),
    ("cross_entropy", {"label_smoothing": 0.2}),
    ("cross_entropy", {"class_weights": [0.5, 2.0, 1.0, 3.0]}),
    ("binary_cross_entropy", {}),
    ("binary_cross_entropy", {"pos_weight": 3.5}),
    ("mse", {}),
    ("mae", {}),
    ("huber", {}),
    ("huber", {"delta": 0.4}),
]
TORCH_IDS = [name + "".join(f"-{k}" for k in opts) for name, opts in TORCH_CASES]


def _random_batch(name: str, rng: np.random.Generator, n: int = 7) -> tuple[np.ndarray, np.ndarray]:
    task = LOSSES[name].task
    if task == "multiclass":
        return rng.normal(0, 2, (n, 4)), np.arange(n) % 4
    if task == "binary":
        return rng.normal(0, 2, (n, 1)), np.arange(n) % 2
    return rng.normal(0, 2, (n, 3)), rng.normal(0, 2, (n, 3))


@pytest.mark.parametrize(("name", "options"), TORCH_CASES, ids=TORCH_IDS)
def test_value_and_logit_gradient_match_torch_autograd(
    name: str, options: dict, torch: ModuleType
) -> None:
    z, y = _random_batch(name, np.random.default_rng(3))
    zt = torch.tensor(z, requires_grad=True)
    expected = torch_loss(name, options, zt, y)
    expected.backward()
    value, gradient = _call(make_loss(name, **options), z, y)
    assert value == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(gradient, zt.grad.numpy(), rtol=1e-10, atol=1e-14)


# --- the fused gradient is the full chain rule --------------------------------------------------
def test_fused_softmax_gradient_equals_full_jacobian_chain_rule_not_its_diagonal() -> None:
    rng = np.random.default_rng(4)
    z = rng.normal(0, 1.5, (5, 4))
    y = np.array([0, 3, 1, 1, 2])
    w = np.array([1.0, 0.5, 2.0, 1.5])
    loss = CrossEntropy(label_smoothing=0.1, class_weights=list(w))
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    t = 0.9 * np.eye(4)[y] + 0.1 / 4
    s = w[y]
    dL_da = -(s[:, None] * t / p) / s.sum()  # L = sum_i s_i (-sum_k t_ik log p_ik) / sum s
    jacobian = np.einsum("ij,jk->ijk", p, np.eye(4)) - np.einsum("ij,ik->ijk", p, p)  # dp_j/dz_k
    chain = np.einsum("ij,ijk->ik", dL_da, jacobian)
    fused = loss.gradient(z, loss.output(z), y)
    np.testing.assert_allclose(fused, chain, rtol=1e-12, atol=1e-15)
    diagonal_only = dL_da * p * (1 - p)
    assert np.abs(diagonal_only - fused).max() > 1e-2


def test_fused_sigmoid_gradient_equals_chain_rule_through_sigmoid() -> None:
    z = np.array([[-2.0], [0.3], [1.7]])
    y = np.array([1, 0, 1])
    a = 1 / (1 + np.exp(-z))
    t = y[:, None]
    dL_da = -(t / a - (1 - t) / (1 - a)) / 3
    fused = BinaryCrossEntropy().gradient(z, a, y)
    np.testing.assert_allclose(fused, dL_da * a * (1 - a), rtol=1e-13)


CASES = [
    *TORCH_CASES,
    ("cross_entropy", {"label_smoothing": 0.1, "class_weights": [1.0, 2.0, 0.5, 1.5]}),
]
CASE_IDS = [*TORCH_IDS, "cross_entropy-smoothing-and-weights"]


@pytest.mark.parametrize(("name", "options"), CASES, ids=CASE_IDS)
def test_gradient_matches_central_difference_of_value(name: str, options: dict) -> None:
    loss = make_loss(name, **options)
    z, y = _random_batch(name, np.random.default_rng(5))
    _, gradient = _call(loss, z, y)
    h = 1e-6
    numerical = np.zeros_like(z)
    for index in np.ndindex(z.shape):
        up, down = z.copy(), z.copy()
        up[index] += h
        down[index] -= h
        numerical[index] = (_call(loss, up, y)[0] - _call(loss, down, y)[0]) / (2 * h)
    np.testing.assert_allclose(gradient, numerical, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize(("name", "options"), CASES[:-1], ids=TORCH_IDS)
def test_loss_is_a_mean_so_repeating_the_batch_keeps_value_and_halves_gradient(
    name: str, options: dict
) -> None:
    loss = make_loss(name, **options)
    z, y = _random_batch(name, np.random.default_rng(6))
    value, gradient = _call(loss, z, y)
    value2, gradient2 = _call(loss, np.concatenate([z, z]), np.concatenate([y, y]))
    assert value2 == pytest.approx(value, rel=1e-13)
    np.testing.assert_allclose(gradient2, np.concatenate([gradient, gradient]) / 2, rtol=1e-13)


@settings(max_examples=50, deadline=None, derandomize=True, database=None)
@given(
    z=arrays(np.float64, (4, 3), elements=st.floats(-80, 80)),
    eps=st.sampled_from([0.0, 0.1, 0.5]),
)
def test_cross_entropy_gradient_rows_sum_to_zero_and_value_is_finite_for_any_logits(
    z: np.ndarray, eps: float
) -> None:
    y = np.array([0, 1, 2, 1])
    value, gradient = _call(CrossEntropy(label_smoothing=eps), z, y)
    assert np.isfinite(value) and value >= 0
    np.testing.assert_allclose(gradient.sum(axis=1), 0.0, atol=1e-15)
    assert np.all(np.abs(gradient) <= 1 / 4 + 1e-15)


# --- stability, dtypes, validation --------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_with_huge_logits_is_finite_and_exact(dtype: type) -> None:
    z = np.array([[1000, -1000, 0], [-1e4, 1e4, 5]], dtype=dtype)
    y = np.array([1, 1])
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        value, gradient = _call(CrossEntropy(label_smoothing=0.0), z, y)
    assert value == pytest.approx(1000.0, rel=1e-6)  # mean(2000, 0)
    np.testing.assert_allclose(gradient, [[0.5, -0.5, 0.0], [0.0, 0.0, 0.0]], atol=1e-7)
    assert gradient.dtype == dtype


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_binary_cross_entropy_with_huge_logits_is_finite_and_exact(dtype: type) -> None:
    z = np.array([[1000], [-1000], [1000], [-1e4]], dtype=dtype)
    y = np.array([0, 0, 1, 1])
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        value, gradient = _call(BinaryCrossEntropy(), z, y)
    assert value == pytest.approx((1000 + 0 + 0 + 1e4) / 4, rel=1e-6)
    np.testing.assert_allclose(gradient, [[0.25], [0.0], [0.0], [-0.25]], atol=1e-7)
    assert gradient.dtype == dtype


@pytest.mark.parametrize(("name", "options"), CASES[:-1], ids=TORCH_IDS)
def test_float32_logits_give_float32_gradient(name: str, options: dict) -> None:
    z, y = _random_batch(name, np.random.default_rng(7))
    z = z.astype(np.float32)
    if LOSSES[name].task == "regression":
        y = y.astype(np.float32)
    _, gradient = _call(make_loss(name, **options), z, y)
    assert gradient.dtype == np.float32


@pytest.mark.parametrize(
    ("name", "options", "key"),
    [
        ("cross_entropy", {"label_smoothing": -0.1}, "label_smoothing"),
        ("cross_entropy", {"label_smoothing": 1.0}, "label_smoothing"),
        ("cross_entropy", {"class_weights": [1.0, 0.0]}, "class_weights"),
        ("cross_entropy", {"class_weights": [1.0, -2.0]}, "class_weights"),
        ("huber", {"delta": 0.0}, "delta"),
        ("huber", {"delta": -1.0}, "delta"),
    ],
)
def test_invalid_option_raises_value_error_naming_it(name: str, options: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        make_loss(name, **options)


def test_class_weights_must_match_the_number_of_classes() -> None:
    loss = CrossEntropy(class_weights=[1.0, 2.0])
    assert loss.output_size(2, 1) == 2
    with pytest.raises(ValueError, match="class_weights"):
        loss.output_size(3, 1)


def test_output_sizes_follow_the_task() -> None:
    assert CrossEntropy().output_size(5, 1) == 5
    assert BinaryCrossEntropy().output_size(2, 1) == 1
    assert MeanSquaredError().output_size(None, 3) == 3


def test_unknown_name_lists_every_choice() -> None:
    with pytest.raises(ValueError, match="hinge") as info:
        make_loss("hinge")
    for name in LOSSES:
        assert name in str(info.value)


def _subclasses(cls: type) -> set[type]:
    direct = set(cls.__subclasses__())
    return direct.union(*(_subclasses(c) for c in direct))


def test_registry_holds_every_loss_class_under_its_own_name() -> None:
    engine_classes = {c for c in _subclasses(Loss) if c.__module__.startswith("bpnn.")}
    # ChainRule is no loss of its own: it puts a registered loss behind another output
    assert set(LOSSES.values()) == engine_classes - {ChainRule}
    for name, cls in LOSSES.items():
        assert cls.name == name
        assert cls.output_activation in {"softmax", "sigmoid", "identity"}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "options"), CASES, ids=CASE_IDS)
def test_output_and_value_together_equal_output_and_value_apart(
    name: str, options: dict, dtype: type
) -> None:
    """The training step asks for both at once (cross-entropy shares its exponentials)."""
    z, y = _random_batch(name, np.random.default_rng(11))
    z = (z * 30).astype(dtype)  # some rows saturate the softmax
    loss = make_loss(name, **options)
    a, value = loss.output_and_value(z, y)
    np.testing.assert_array_equal(a, loss.output(z))
    assert a.dtype == dtype
    assert value == loss.value(z, loss.output(z), y)
    assert math.isfinite(value)


# --- binary cross-entropy on several outputs; the half sum ---------------------------------------
def _multilabel_batch(rng: np.random.Generator, n: int = 7, k: int = 3) -> tuple:
    return rng.normal(0, 2, (n, k)), rng.integers(0, 2, (n, k))


@pytest.mark.torch
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_binary_cross_entropy_on_several_outputs_matches_torch_bce_loss(reduction: str) -> None:
    """PyTorch's ``BCELoss`` on the sigmoid of every output (mean: over all n k elements) and
    autograd through the sigmoid: bpnn's fused ``(a - t) / (n k)`` is its gradient."""
    torch = pytest.importorskip("torch")
    z, y = _multilabel_batch(np.random.default_rng(5))
    zt = torch.tensor(z, requires_grad=True)
    expected = torch.nn.BCELoss(reduction=reduction)(torch.sigmoid(zt), torch.tensor(y * 1.0))
    expected.backward()
    loss = make_loss("binary_cross_entropy", reduction=reduction).reading(multi_label=True)
    assert loss.task == "multilabel" and loss.output_size(None, 3) == 3
    value, gradient = _call(loss, z, y)
    assert value == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(gradient, zt.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.torch
def test_binary_cross_entropy_on_one_hot_rows_matches_torch_on_the_one_hot_targets() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(6)
    z, y = rng.normal(0, 2, (6, 4)), np.array([0, 3, 1, 2, 3, 0])
    zt = torch.tensor(z, requires_grad=True)
    onehot = torch.nn.functional.one_hot(torch.tensor(y), 4).double()
    expected = torch.nn.BCELoss()(torch.sigmoid(zt), onehot)
    expected.backward()
    loss = make_loss("binary_cross_entropy").reading(one_hot=True)
    assert loss.task == "multiclass" and loss.output_size(4, 1) == 4
    value, gradient = _call(loss, z, y)
    assert value == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(gradient, zt.grad.numpy(), rtol=1e-10, atol=1e-14)


def test_half_sum_mse_is_the_textbook_error_with_gradient_a_minus_t() -> None:
    value, gradient = _call(MeanSquaredError(reduction="half_sum"), A_REG, Y_REG)
    assert value == pytest.approx(0.5 * (0.25 + 0 + 4 + 9), rel=1e-15)
    np.testing.assert_array_equal(gradient, R_REG)  # dE/da = a - t, exactly


@pytest.mark.parametrize(("name", "options"), CASES, ids=CASE_IDS)
def test_half_sum_is_half_the_sum_in_value_and_gradient(name: str, options: dict) -> None:
    z, y = _random_batch(name, np.random.default_rng(4))
    total = _call(make_loss(name, **options, reduction="sum"), z, y)
    half = _call(make_loss(name, **options, reduction="half_sum"), z, y)
    assert half[0] == pytest.approx(total[0] / 2, rel=1e-14)
    np.testing.assert_allclose(half[1], total[1] / 2, rtol=1e-14)
    assert make_loss(name, reduction="half_sum").batch_total(half[0], y) == half[0]


def test_unknown_reduction_names_every_choice() -> None:
    with pytest.raises(ValueError, match="mean, sum, half_sum"):
        MeanSquaredError(reduction="halfsum")  # type: ignore[arg-type]


# --- a weight per sample (a table's data.weight) ------------------------------------------------
WEIGHTED_CASES = [
    *CASES,
    ("mse", {"reduction": "sum"}),
    ("huber", {"reduction": "half_sum"}),
    ("binary_cross_entropy", {"pos_weight": 2.0, "reduction": "sum"}),
]


@pytest.mark.parametrize(("name", "options"), WEIGHTED_CASES)
@settings(max_examples=15, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**32 - 1), counts=st.lists(st.integers(1, 3), min_size=7, max_size=7))
def test_integer_weights_are_rows_repeated(
    name: str, options: dict, seed: int, counts: list[int]
) -> None:
    """A sample of weight 3 counts as the same sample written three times: the loss and the
    gradient (summed over a sample's copies) agree with the repeated batch, for every loss
    and reduction."""
    loss = make_loss(name, **options)
    z, y = _random_batch(name, np.random.default_rng(seed))
    weights = np.array(counts, dtype=np.float64)
    a = loss.output(z)
    value = loss.value(z, a, y, weights)
    gradient = loss.gradient(z, a, y, weights)
    repeat = np.repeat(np.arange(len(z)), counts)
    expected, expected_rows = _call(loss, z[repeat], y[repeat])
    summed = np.zeros_like(z)
    np.add.at(summed, repeat, expected_rows)
    assert value == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(gradient, summed, rtol=1e-10, atol=1e-15)
    assert loss.batch_total(value, y, weights) == pytest.approx(
        loss.batch_total(expected, y[repeat]), rel=1e-12
    )

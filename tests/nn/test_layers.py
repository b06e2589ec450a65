"""Specification of the layers in bpnn.nn.layers: Dense, ActivationLayer, BatchNorm, Dropout.

Layers get their parameters and gradients as views (``bind``) and write gradients in place.
Evidence: the textbook formulas evaluated independently (by hand or with plain NumPy), PyTorch's
``BatchNorm1d`` as the oracle for the running statistics and the backward pass (skipped without
torch), and the behaviour of the three modes (TRAIN, CHECK, EVAL).
"""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from bpnn.nn.activations import make_activation
from bpnn.nn.initializers import xavier_normal
from bpnn.nn.layers import CHECK, EVAL, TRAIN, ActivationLayer, BatchNorm, Dense, Dropout


def _bound_dense(W: np.ndarray, b: np.ndarray | None) -> tuple[Dense, dict[str, np.ndarray]]:
    layer = Dense(W.shape[0], W.shape[1], xavier_normal, use_bias=b is not None)
    params = {"weight": W} if b is None else {"weight": W, "bias": b}
    grads = {k: np.full_like(v, np.nan) for k, v in params.items()}
    layer.bind(params, grads)
    return layer, grads


def _bound_batch_norm(
    scale: np.ndarray, shift: np.ndarray, **options: float
) -> tuple[BatchNorm, dict[str, np.ndarray]]:
    layer = BatchNorm(len(scale), **options)
    grads = {"bn_scale": np.full_like(scale, np.nan), "bn_shift": np.full_like(shift, np.nan)}
    layer.bind({"bn_scale": scale, "bn_shift": shift}, grads)
    return layer, grads


# --- Dense --------------------------------------------------------------------------------------
X_HAND = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
W_HAND = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
B_HAND = np.array([0.5, -0.5])
DELTA_HAND = np.array([[1.0, 0.0], [0.0, 2.0]])


def test_dense_forward_is_x_times_w_plus_b_on_hand_worked_numbers() -> None:
    layer, _ = _bound_dense(W_HAND, B_HAND)
    np.testing.assert_array_equal(layer.forward(X_HAND, TRAIN), [[4.5, 4.5], [10.5, 10.5]])


def test_dense_backward_gives_xt_delta_summed_delta_and_delta_wt_on_hand_worked_numbers() -> None:
    layer, grads = _bound_dense(W_HAND, B_HAND)
    layer.forward(X_HAND, TRAIN)
    dx = layer.backward(DELTA_HAND.copy())
    np.testing.assert_array_equal(grads["weight"], [[1.0, 8.0], [2.0, 10.0], [3.0, 12.0]])
    np.testing.assert_array_equal(grads["bias"], [1.0, 2.0])
    np.testing.assert_array_equal(dx, [[1.0, 0.0, 1.0], [0.0, 2.0, 2.0]])


def test_dense_matches_explicit_formulas_on_random_data_and_writes_gradients_in_place() -> None:
    rng = np.random.default_rng(0)
    x, W, b, delta = (rng.normal(size=s) for s in [(6, 4), (4, 3), (3,), (6, 3)])
    layer, grads = _bound_dense(W, b)
    dW_view, db_view = grads["weight"], grads["bias"]
    np.testing.assert_allclose(layer.forward(x, TRAIN), x @ W + b, rtol=1e-14)
    dx = layer.backward(delta.copy())
    assert grads["weight"] is dW_view and grads["bias"] is db_view  # written into the views
    np.testing.assert_allclose(dW_view, x.T @ delta, rtol=1e-13)
    np.testing.assert_allclose(db_view, delta.sum(axis=0), rtol=1e-13)
    np.testing.assert_allclose(dx, delta @ W.T, rtol=1e-13)


def test_dense_without_bias_is_x_times_w_and_declares_only_a_decayed_weight() -> None:
    layer, grads = _bound_dense(W_HAND, None)
    np.testing.assert_array_equal(layer.forward(X_HAND, TRAIN), X_HAND @ W_HAND)
    assert set(grads) == {"weight"}
    specs = layer.parameter_specs()
    assert [(s.name, s.shape, s.decay) for s in specs] == [("weight", (3, 2), True)]


def test_dense_declares_weight_fan_in_by_fan_out_decayed_and_bias_not_decayed() -> None:
    specs = Dense(5, 7, xavier_normal).parameter_specs()
    assert [(s.name, s.shape, s.decay) for s in specs] == [
        ("weight", (5, 7), True),
        ("bias", (7,), False),
    ]
    assert all((s.fan_in, s.fan_out) == (5, 7) for s in specs)


def test_activation_layer_backward_multiplies_by_derivative_at_cached_z() -> None:
    rng = np.random.default_rng(1)
    z, delta = rng.normal(size=(5, 3)), rng.normal(size=(5, 3))
    layer = ActivationLayer(make_activation("tanh"))
    np.testing.assert_allclose(layer.forward(z, TRAIN), np.tanh(z), rtol=1e-15)
    np.testing.assert_allclose(layer.backward(delta.copy()), delta * (1 - np.tanh(z) ** 2))


# --- BatchNorm ----------------------------------------------------------------------------------
def _feature_batch(rng: np.random.Generator, n: int = 8) -> np.ndarray:
    """Features with very different offsets and spreads."""
    return rng.normal(size=(n, 3)) * [0.1, 2.0, 30.0] + [5.0, -3.0, 100.0]


def test_batch_norm_in_training_normalizes_each_feature_to_mean_0_variance_1() -> None:
    x = _feature_batch(np.random.default_rng(2), n=64)
    layer, _ = _bound_batch_norm(np.ones(3), np.zeros(3))
    y = layer.forward(x, TRAIN)
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-12)
    var = x.var(axis=0)
    np.testing.assert_allclose(y.var(axis=0), var / (var + 1e-5), rtol=1e-12)
    np.testing.assert_allclose(y.var(axis=0), 1.0, rtol=2e-3)  # eps matters at var 0.01


def test_batch_norm_applies_scale_and_shift_after_normalizing() -> None:
    x = _feature_batch(np.random.default_rng(3))
    scale, shift = np.array([2.0, -1.0, 0.5]), np.array([1.0, 0.0, -4.0])
    layer, _ = _bound_batch_norm(scale, shift)
    x_hat = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + 1e-5)
    np.testing.assert_allclose(layer.forward(x, TRAIN), scale * x_hat + shift, rtol=1e-12)


def test_batch_norm_running_stats_follow_momentum_with_unbiased_variance() -> None:
    x = _feature_batch(np.random.default_rng(4), n=4)
    layer, _ = _bound_batch_norm(np.ones(3), np.zeros(3))
    layer.forward(x, TRAIN)
    np.testing.assert_allclose(layer.running_mean, 0.9 * 0 + 0.1 * x.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(layer.running_var, 0.9 * 1 + 0.1 * x.var(axis=0, ddof=1))


def test_batch_norm_in_evaluation_uses_running_stats_and_leaves_them_alone() -> None:
    x = _feature_batch(np.random.default_rng(5))
    scale, shift = np.array([2.0, -1.0, 0.5]), np.array([1.0, 0.0, -4.0])
    layer, _ = _bound_batch_norm(scale, shift)
    layer.running_mean[...] = [5.0, -3.0, 90.0]
    layer.running_var[...] = [0.04, 4.0, 400.0]
    y = layer.forward(x, EVAL)
    expected = (x - [5.0, -3.0, 90.0]) / np.sqrt(np.array([0.04, 4.0, 400.0]) + 1e-5)
    np.testing.assert_allclose(y, scale * expected + shift, rtol=1e-12)
    np.testing.assert_array_equal(layer.running_mean, [5.0, -3.0, 90.0])
    np.testing.assert_array_equal(layer.running_var, [0.04, 4.0, 400.0])


def test_batch_norm_check_mode_is_training_math_without_touching_running_stats() -> None:
    x = _feature_batch(np.random.default_rng(6))
    layer, _ = _bound_batch_norm(np.array([2.0, -1.0, 0.5]), np.array([1.0, 0.0, -4.0]))
    layer.forward(_feature_batch(np.random.default_rng(7)), TRAIN)  # non-trivial running stats
    mean, var = layer.running_mean.copy(), layer.running_var.copy()
    checked = layer.forward(x, CHECK)
    np.testing.assert_array_equal(layer.running_mean, mean)
    np.testing.assert_array_equal(layer.running_var, var)
    np.testing.assert_array_equal(checked, layer.forward(x, TRAIN))
    assert not np.array_equal(layer.running_mean, mean)  # and TRAIN does move them


def test_batch_norm_backward_matches_central_differences() -> None:
    rng = np.random.default_rng(8)
    x, dy = _feature_batch(rng, n=5), rng.normal(size=(5, 3))
    scale, shift = np.array([2.0, -1.0, 0.5]), np.array([1.0, 0.0, -4.0])
    layer, grads = _bound_batch_norm(scale, shift)

    def objective() -> float:
        return float((layer.forward(x, CHECK) * dy).sum())

    layer.forward(x, CHECK)
    dx = layer.backward(dy.copy())
    analytic = {"x": dx, "scale": grads["bn_scale"].copy(), "shift": grads["bn_shift"].copy()}
    h = 1e-6
    for name, array in (("x", x), ("scale", scale), ("shift", shift)):
        numerical = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            old = array[index]
            array[index] = old + h
            up = objective()
            array[index] = old - h
            down = objective()
            array[index] = old
            numerical[index] = (up - down) / (2 * h)
        np.testing.assert_allclose(analytic[name], numerical, rtol=1e-5, atol=1e-6, err_msg=name)


def test_batch_norm_matches_torch_batchnorm1d_over_several_steps(torch: ModuleType) -> None:
    rng = np.random.default_rng(9)
    scale, shift = rng.normal(1, 0.3, 3), rng.normal(0, 0.3, 3)
    layer, grads = _bound_batch_norm(scale.copy(), shift.copy())
    reference = torch.nn.BatchNorm1d(3, momentum=0.1, eps=1e-5, dtype=torch.float64)
    with torch.no_grad():
        reference.weight.copy_(torch.tensor(scale))
        reference.bias.copy_(torch.tensor(shift))
    reference.train()
    for step in range(4):
        x, dy = _feature_batch(rng, n=6 + step), rng.normal(size=(6 + step, 3))
        xt = torch.tensor(x, requires_grad=True)
        reference.zero_grad()
        out = reference(xt)
        (out * torch.tensor(dy)).sum().backward()
        y = layer.forward(x, TRAIN)
        dx = layer.backward(dy.copy())
        np.testing.assert_allclose(y, out.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(grads["bn_scale"], reference.weight.grad.numpy(), rtol=1e-10)
        np.testing.assert_allclose(grads["bn_shift"], reference.bias.grad.numpy(), rtol=1e-10)
        np.testing.assert_allclose(layer.running_mean, reference.running_mean.numpy(), rtol=1e-12)
        np.testing.assert_allclose(layer.running_var, reference.running_var.numpy(), rtol=1e-12)
    reference.eval()
    x = _feature_batch(rng)
    with torch.no_grad():
        expected = reference(torch.tensor(x)).numpy()
    np.testing.assert_allclose(layer.forward(x, EVAL), expected, rtol=1e-10, atol=1e-12)


def test_batch_norm_keeps_float32_running_stats_for_a_float32_network() -> None:
    layer, _ = _bound_batch_norm(np.ones(3, np.float32), np.zeros(3, np.float32))
    x = _feature_batch(np.random.default_rng(10)).astype(np.float32)
    assert layer.forward(x, TRAIN).dtype == np.float32
    assert layer.running_mean.dtype == layer.running_var.dtype == np.float32


@pytest.mark.parametrize("momentum", [0.0, -0.1, 1.5])
def test_batch_norm_rejects_momentum_outside_0_1(momentum: float) -> None:
    with pytest.raises(ValueError, match="momentum"):
        BatchNorm(3, momentum=momentum)


# --- Dropout ------------------------------------------------------------------------------------
def test_inverted_dropout_zeroes_units_scales_survivors_and_keeps_the_expectation() -> None:
    rate = 0.3
    layer = Dropout(rate, np.random.default_rng(11))
    y = layer.forward(np.ones((2000, 50)), TRAIN)
    assert set(np.unique(y)) <= {0.0, 1 / (1 - rate)}
    assert np.mean(y == 0) == pytest.approx(rate, abs=0.01)
    assert y.mean() == pytest.approx(1.0, abs=0.015)


def test_dropout_backward_multiplies_by_the_same_mask() -> None:
    rng = np.random.default_rng(12)
    x, dy = rng.normal(size=(40, 10)), rng.normal(size=(40, 10))
    layer = Dropout(0.5, np.random.default_rng(13))
    y = layer.forward(x, TRAIN)
    dx = layer.backward(dy.copy())
    dropped = y == 0
    assert dropped.any() and (~dropped).any()
    np.testing.assert_array_equal(dx[dropped], 0.0)
    np.testing.assert_allclose(dx[~dropped], 2 * dy[~dropped], rtol=1e-15)
    np.testing.assert_allclose(y[~dropped], 2 * x[~dropped], rtol=1e-15)


@pytest.mark.parametrize("mode", [EVAL, CHECK], ids=["EVAL", "CHECK"])
def test_dropout_is_the_identity_outside_training_and_draws_nothing(mode) -> None:
    rng = np.random.default_rng(14)
    state = rng.bit_generator.state
    layer = Dropout(0.5, rng)
    x, dy = np.arange(12.0).reshape(3, 4), np.ones((3, 4))
    np.testing.assert_array_equal(layer.forward(x, mode), x)
    np.testing.assert_array_equal(layer.backward(dy), dy)
    assert rng.bit_generator.state == state


def test_dropout_rate_zero_is_the_identity_in_training() -> None:
    x = np.arange(12.0).reshape(3, 4)
    np.testing.assert_array_equal(Dropout(0.0, np.random.default_rng(0)).forward(x, TRAIN), x)


def test_dropout_mask_is_reproducible_from_the_seeded_generator() -> None:
    x = np.ones((20, 30))
    first = Dropout(0.4, np.random.default_rng(15)).forward(x, TRAIN)
    again = Dropout(0.4, np.random.default_rng(15)).forward(x, TRAIN)
    other = Dropout(0.4, np.random.default_rng(16)).forward(x, TRAIN)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_dropout_keeps_float32() -> None:
    layer = Dropout(0.5, np.random.default_rng(0))
    x = np.ones((4, 5), dtype=np.float32)
    assert layer.forward(x, TRAIN).dtype == np.float32
    assert layer.backward(x).dtype == np.float32


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_dropout_rejects_rate_outside_0_1(rate: float) -> None:
    with pytest.raises(ValueError, match="dropout"):
        Dropout(rate, np.random.default_rng(0))

"""Specification of the multilayer perceptron in bpnn.nn.network.

Evidence: the parameter layout (names, shapes, one flat buffer each for parameters and gradients,
weights first), PyTorch's ``nn.Sequential`` with the same weights as the oracle for the loss and
every gradient (skipped without torch), the L2 term, dtypes, seeding, prediction and the modes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from helpers import torch_loss

from bpnn.nn.activations import ACTIVATIONS, make_activation
from bpnn.nn.initializers import xavier_normal
from bpnn.nn.layers import EVAL
from bpnn.nn.losses import LOSSES, make_loss
from bpnn.nn.network import Network

SIZES = [4, 5, 3]  # inputs and hidden layers; the output size comes from the loss


def _network(
    activation: str = "tanh",
    loss: str = "cross_entropy",
    *,
    seed: int = 0,
    loss_options: dict[str, Any] | None = None,
    dtype: type = np.float64,
    randomize_non_weights: bool = True,
    **options: Any,
) -> Network:
    rng = np.random.default_rng(seed)
    loss_fn = make_loss(loss, **(loss_options or {}))
    hidden = len(SIZES) - 1
    net = Network(
        [*SIZES, loss_fn.output_size(3, 2)],
        [make_activation(activation)] * hidden,
        loss_fn,
        weight_init=xavier_normal,
        rng=rng,
        dtype=dtype,
        **options,
    )
    if randomize_non_weights:  # non-zero biases / batch-norm parameters exercise every term
        rest = net.params[net.weight_slice.stop :]
        rest[...] = np.random.default_rng(seed + 100).normal(0, 0.5, rest.size)
    return net


def _batch(loss: str, n: int = 6, seed: int = 1, dtype: type = np.float64) -> tuple:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, SIZES[0])).astype(dtype)
    task = LOSSES[loss].task
    if task == "multiclass":
        return X, rng.permutation(np.arange(n) % 3)
    if task == "binary":
        return X, rng.permutation(np.arange(n) % 2)
    return X, rng.normal(size=(n, 2)).astype(dtype)


# --- layout -------------------------------------------------------------------------------------
def test_parameters_are_named_by_dense_block_with_fan_in_by_fan_out_weights() -> None:
    net = _network()
    shapes = {name: p.shape for name, p in net.parameters().items()}
    assert list(shapes.items()) == [
        ("0.weight", (4, 5)),
        ("0.bias", (5,)),
        ("1.weight", (5, 3)),
        ("1.bias", (3,)),
        ("2.weight", (3, 3)),
        ("2.bias", (3,)),
    ]
    assert list(net.gradients()) == list(shapes)
    assert all(net.gradients()[k].shape == s for k, s in shapes.items())


def test_batch_norm_replaces_hidden_biases_by_scale_and_shift() -> None:
    net = _network(batch_norm=True)
    shapes = {name: p.shape for name, p in net.parameters().items()}
    assert list(shapes.items()) == [
        ("0.weight", (4, 5)),
        ("0.bn_scale", (5,)),
        ("0.bn_shift", (5,)),
        ("1.weight", (5, 3)),
        ("1.bn_scale", (3,)),
        ("1.bn_shift", (3,)),
        ("2.weight", (3, 3)),
        ("2.bias", (3,)),
    ]
    assert set(net.buffers()) == {
        "0.bn_running_mean",
        "0.bn_running_var",
        "1.bn_running_mean",
        "1.bn_running_var",
    }


@pytest.mark.parametrize("batch_norm", [False, True])
def test_parameters_and_gradients_are_views_into_one_flat_buffer_each(batch_norm: bool) -> None:
    net = _network(batch_norm=batch_norm)
    params, grads = net.parameters(), net.gradients()
    assert sum(p.size for p in params.values()) == net.params.size == net.grads.size
    for name in params:
        assert np.shares_memory(params[name], net.params), name
        assert np.shares_memory(grads[name], net.grads), name
        assert not np.shares_memory(params[name], net.grads), name
    names = list(params)
    for i, a in enumerate(names):  # no two tensors overlap
        for b in names[i + 1 :]:
            assert not np.shares_memory(params[a], params[b]), (a, b)
    net.params[...] = 0.0
    params["1.weight"][2, 1] = 7.0
    assert np.count_nonzero(net.params) == 1


@pytest.mark.parametrize("batch_norm", [False, True])
def test_weight_slice_covers_exactly_the_weight_matrices_at_the_front(batch_norm: bool) -> None:
    net = _network(batch_norm=batch_norm)
    assert net.weight_slice.start in (0, None)
    net.params[...] = 0.0
    net.params[net.weight_slice] = 1.0
    for name, p in net.parameters().items():
        expected = 1.0 if name.endswith(".weight") else 0.0
        np.testing.assert_array_equal(p, expected, err_msg=name)


def test_construction_rejects_mismatched_activations_dropout_and_sizes() -> None:
    loss = make_loss("mse")
    rng = np.random.default_rng(0)
    tanh = make_activation("tanh")
    with pytest.raises(ValueError, match="activation"):
        Network([3, 4, 2], [tanh, tanh], loss, weight_init=xavier_normal, rng=rng)
    with pytest.raises(ValueError, match="dropout"):
        Network([3, 4, 2], [tanh], loss, weight_init=xavier_normal, rng=rng, dropout=[0.1, 0.2])
    with pytest.raises(ValueError, match="sizes"):
        Network([3, 0, 2], [tanh], loss, weight_init=xavier_normal, rng=rng)


# --- PyTorch as the oracle ----------------------------------------------------------------------
def _torch_activation(name: str):
    import torch

    return {
        "identity": torch.nn.Identity,
        "sigmoid": torch.nn.Sigmoid,
        "tanh": torch.nn.Tanh,
        "relu": torch.nn.ReLU,
        "leaky_relu": lambda: torch.nn.LeakyReLU(0.01),
        "elu": lambda: torch.nn.ELU(1.0),
        "gelu": lambda: torch.nn.GELU(approximate="tanh"),
        "softplus": torch.nn.Softplus,
    }[name]()


def _torch_copy(net: Network, activation: str, batch_norm: bool):
    """An nn.Sequential computing the same z_L, with the same parameter values."""
    import torch

    params = net.parameters()
    modules: list[Any] = []
    names: dict[str, Any] = {}
    blocks = len(net.sizes) - 1
    for i, (fan_in, fan_out) in enumerate(zip(net.sizes[:-1], net.sizes[1:], strict=True)):
        hidden = i < blocks - 1
        linear = torch.nn.Linear(
            fan_in, fan_out, bias=not (batch_norm and hidden), dtype=torch.float64
        )
        with torch.no_grad():
            linear.weight.copy_(torch.tensor(params[f"{i}.weight"].T))  # torch stores W^T
            names[f"{i}.weight"] = (linear.weight, True)
            if linear.bias is not None:
                linear.bias.copy_(torch.tensor(params[f"{i}.bias"]))
                names[f"{i}.bias"] = (linear.bias, False)
        modules.append(linear)
        if hidden:
            if batch_norm:
                bn = torch.nn.BatchNorm1d(fan_out, dtype=torch.float64)
                with torch.no_grad():
                    bn.weight.copy_(torch.tensor(params[f"{i}.bn_scale"]))
                    bn.bias.copy_(torch.tensor(params[f"{i}.bn_shift"]))
                names[f"{i}.bn_scale"], names[f"{i}.bn_shift"] = (
                    (bn.weight, False),
                    (bn.bias, False),
                )
                modules.append(bn)
            modules.append(_torch_activation(activation))
    model = torch.nn.Sequential(*modules)
    model.train()
    return model, names


def _assert_matches_torch(
    activation: str,
    loss: str,
    *,
    loss_options: dict | None = None,
    batch_norm: bool = False,
    l2: float = 0.0,
) -> None:
    import torch

    loss_options = loss_options or {}
    net = _network(activation, loss, loss_options=loss_options, batch_norm=batch_norm)
    X, y = _batch(loss)
    value = net.loss_and_gradients(X, y, l2=l2)
    model, tensors = _torch_copy(net, activation, batch_norm)
    expected = torch_loss(loss, loss_options, model(torch.tensor(X)), y)
    if l2:
        expected = expected + 0.5 * l2 * sum((t**2).sum() for t, decay in tensors.values() if decay)
    expected.backward()
    assert value == pytest.approx(expected.item(), rel=1e-10, abs=1e-12)
    grads = net.gradients()
    assert set(grads) == set(tensors)
    for name, (tensor, _) in tensors.items():
        reference = tensor.grad.numpy()
        reference = reference.T if name.endswith(".weight") else reference
        np.testing.assert_allclose(grads[name], reference, rtol=1e-10, atol=1e-12, err_msg=name)


@pytest.mark.torch
@pytest.mark.parametrize("loss", list(LOSSES))
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_loss_and_gradients_match_torch_sequential(activation: str, loss: str) -> None:
    _assert_matches_torch(activation, loss)


@pytest.mark.torch
@pytest.mark.parametrize("loss", list(LOSSES))
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_batch_norm_network_matches_torch_sequential(activation: str, loss: str) -> None:
    _assert_matches_torch(activation, loss, batch_norm=True)


@pytest.mark.torch
@pytest.mark.parametrize(
    ("loss", "options"),
    [
        ("cross_entropy", {"label_smoothing": 0.15}),
        ("cross_entropy", {"class_weights": [0.5, 2.0, 1.0]}),
        ("huber", {"delta": 0.3}),
    ],
    ids=["label_smoothing", "class_weights", "huber_delta"],
)
def test_loss_options_match_torch_sequential(loss: str, options: dict) -> None:
    _assert_matches_torch("elu", loss, loss_options=options)


@pytest.mark.torch
def test_l2_penalty_matches_torch_with_explicit_penalty_on_weights_only() -> None:
    _assert_matches_torch("softplus", "cross_entropy", l2=0.3, batch_norm=True)


# --- L2, dtype, seeding -------------------------------------------------------------------------
@pytest.mark.parametrize("batch_norm", [False, True])
def test_l2_adds_half_l2_sum_w_squared_and_l2_w_to_weight_gradients_only(
    batch_norm: bool,
) -> None:
    net = _network("tanh", "mse", batch_norm=batch_norm)
    X, y = _batch("mse")
    plain = net.loss_and_gradients(X, y)
    plain_grads = {k: v.copy() for k, v in net.gradients().items()}
    penalized = net.loss_and_gradients(X, y, l2=0.3)
    weights = [p for name, p in net.parameters().items() if name.endswith(".weight")]
    assert penalized - plain == pytest.approx(0.15 * sum((w**2).sum() for w in weights), rel=1e-12)
    for name, g in net.gradients().items():
        if name.endswith(".weight"):
            np.testing.assert_allclose(
                g, plain_grads[name] + 0.3 * net.parameters()[name], rtol=1e-12, err_msg=name
            )
        else:
            np.testing.assert_array_equal(g, plain_grads[name], err_msg=name)


@pytest.mark.parametrize("loss", list(LOSSES))
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_float32_network_stays_float32_everywhere(activation: str, loss: str) -> None:
    net = _network(activation, loss, dtype=np.float32, batch_norm=True, dropout=[0.2, 0.2])
    X, y = _batch(loss, dtype=np.float32)
    net.train_step(X, y, l2=0.01)
    assert net.params.dtype == net.grads.dtype == np.float32
    for name, p in net.parameters().items():
        assert (p.dtype, net.gradients()[name].dtype) == (np.float32, np.float32), name
    for name, b in net.buffers().items():
        assert b.dtype == np.float32, name
    assert net.last_output is not None and net.last_output.dtype == np.float32
    assert net.forward(X).dtype == np.float32
    assert net.predict(X).dtype == np.float32


def test_same_seed_gives_identical_initial_parameters_and_another_seed_does_not() -> None:
    def fresh(seed: int) -> np.ndarray:
        return _network("relu", batch_norm=True, seed=seed, randomize_non_weights=False).params

    np.testing.assert_array_equal(fresh(3), fresh(3))
    assert not np.array_equal(fresh(3), fresh(4))


def test_biases_start_at_zero_and_batch_norm_at_identity() -> None:
    net = _network("relu", batch_norm=True, randomize_non_weights=False)
    params = net.parameters()
    np.testing.assert_array_equal(params["2.bias"], 0.0)
    np.testing.assert_array_equal(params["0.bn_scale"], 1.0)
    np.testing.assert_array_equal(params["0.bn_shift"], 0.0)


# --- passes and modes ---------------------------------------------------------------------------
def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize(
    ("loss", "output"),
    [
        ("cross_entropy", _softmax),
        ("binary_cross_entropy", lambda z: 1 / (1 + np.exp(-z))),
        ("mse", lambda z: z),
    ],
)
def test_predict_is_output_activation_of_forward_in_eval_mode(loss: str, output) -> None:
    net = _network("relu", loss, batch_norm=True, dropout=[0.5, 0.5])
    X, y = _batch(loss, n=20)
    net.train_step(X, y)  # non-trivial running statistics
    buffers = {k: v.copy() for k, v in net.buffers().items()}
    expected = output(net.forward(X, EVAL))
    np.testing.assert_allclose(net.predict(X), expected, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(net.predict(X), net.predict(X))  # no dropout randomness
    for name, b in net.buffers().items():
        np.testing.assert_array_equal(b, buffers[name], err_msg=name)


def test_chunked_prediction_equals_one_shot_prediction() -> None:
    net = _network("gelu", "cross_entropy", batch_norm=True)
    X, y = _batch("cross_entropy", n=23)
    net.train_step(X, y)
    np.testing.assert_allclose(net.predict(X, batch_size=4), net.predict(X), rtol=1e-13)
    assert net.predict(X[:0]).shape == (0, 3)


@pytest.mark.parametrize(
    ("loss", "options"),
    [
        ("cross_entropy", {}),
        ("cross_entropy", {"class_weights": [1.0, 5.0, 0.2]}),
        ("binary_cross_entropy", {}),
        ("huber", {}),
    ],
    ids=["cross_entropy", "cross_entropy-class_weights", "binary_cross_entropy", "huber"],
)
def test_evaluate_in_chunks_equals_loss_and_outputs_of_the_whole_set(
    loss: str, options: dict
) -> None:
    net = _network("tanh", loss, loss_options=options)
    X, y = _batch(loss, n=10)
    if loss == "cross_entropy":
        y = np.array([0, 0, 0, 0, 0, 1, 1, 2, 2, 2])  # chunks of 5 with unequal weight sums
    z = net.forward(X, EVAL)
    whole = net.loss.value(z, net.loss.output(z), y)
    for batch_size in (10, 5, 3):
        value, outputs = net.evaluate(X, y, batch_size=batch_size)
        assert value == pytest.approx(whole, rel=1e-12), batch_size
        np.testing.assert_allclose(outputs, net.predict(X), rtol=1e-13, err_msg=str(batch_size))


def test_train_step_with_dropout_only_fills_gradients_and_never_moves_weights() -> None:
    net = _network("relu", "cross_entropy", dropout=[0.5, 0.5])
    X, y = _batch("cross_entropy", n=12)
    before = net.params.copy()
    net.loss_and_gradients(X, y)
    deterministic = net.grads.copy()
    net.train_step(X, y)
    np.testing.assert_array_equal(net.params, before)
    assert np.abs(net.grads).max() > 0
    assert not np.array_equal(net.grads, deterministic)  # the masks were on


def test_train_step_updates_batch_norm_statistics_and_default_check_mode_does_not() -> None:
    net = _network("tanh", "cross_entropy", batch_norm=True)
    X, y = _batch("cross_entropy")
    before = {k: v.copy() for k, v in net.buffers().items()}
    net.loss_and_gradients(X, y)
    for name, b in net.buffers().items():
        np.testing.assert_array_equal(b, before[name], err_msg=name)
    net.train_step(X, y)
    assert all(not np.array_equal(b, before[k]) for k, b in net.buffers().items())


def test_backward_overwrites_every_gradient_entry() -> None:
    net = _network("relu", "cross_entropy", batch_norm=True)
    X, y = _batch("cross_entropy")
    net.loss_and_gradients(X, y)
    first = net.grads.copy()
    net.grads[...] = np.nan
    net.loss_and_gradients(X, y)
    np.testing.assert_array_equal(net.grads, first)

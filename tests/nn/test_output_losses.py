"""Output activations beyond the canonical pairs (``ChainRule``) and the ``sum`` reduction,
against PyTorch's autograd and against the fused gradients they must leave untouched."""

from __future__ import annotations

from types import ModuleType

import numpy as np
import pytest

from bpnn.nn.activations import ACTIVATIONS, OUTPUT_ACTIVATIONS, make_output_activation
from bpnn.nn.losses import LOSSES, ChainRule, make_loss, with_output

REGRESSION = [name for name, cls in LOSSES.items() if cls.task == "regression"]


def _torch_activation(name: str, z):
    import torch
    import torch.nn.functional as nnf

    return {
        "identity": lambda t: t,
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu": torch.relu,
        "leaky_relu": lambda t: nnf.leaky_relu(t, 0.01),
        "elu": nnf.elu,
        "gelu": lambda t: nnf.gelu(t, approximate="tanh"),
        "softplus": nnf.softplus,
        "softmax": lambda t: torch.softmax(t, dim=1),
    }[name](z)


def _torch_regression(name: str, a, t, reduction: str):
    import torch.nn.functional as nnf

    if name == "mse":
        return nnf.mse_loss(a, t, reduction=reduction)
    if name == "mae":
        return nnf.l1_loss(a, t, reduction=reduction)
    return nnf.huber_loss(a, t, reduction=reduction)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("one_hot", [False, True])
@pytest.mark.parametrize("output", list(OUTPUT_ACTIVATIONS))
@pytest.mark.parametrize("loss_name", REGRESSION)
def test_every_output_of_a_regression_loss_matches_torch_autograd(
    loss_name: str, output: str, one_hot: bool, reduction: str, torch: ModuleType
) -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(0, 1.5, (6, 4))
    y = np.arange(6) % 4 if one_hot else rng.normal(0, 1, (6, 4))
    loss = with_output(
        make_loss(loss_name, reduction=reduction), make_output_activation(output), one_hot=one_hot
    )
    a, value = loss.output_and_value(z, y)
    gradient = loss.gradient(z, a, y)

    zt = torch.tensor(z, requires_grad=True)
    target = torch.tensor(np.eye(4)[y] if one_hot else y)
    expected = _torch_regression(loss_name, _torch_activation(output, zt), target, reduction)
    expected.backward()
    assert value == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(gradient, zt.grad.numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("name", list(LOSSES))
def test_sum_reduction_matches_torch_and_is_n_times_the_mean(name: str, torch: ModuleType) -> None:
    import torch.nn.functional as nnf

    rng = np.random.default_rng(2)
    task = LOSSES[name].task
    z = rng.normal(0, 2, (5, 1 if task == "binary" else 3))
    y = {"multiclass": np.arange(5) % 3, "binary": np.arange(5) % 2}.get(
        task, rng.normal(size=(5, 3))
    )
    mean, total = make_loss(name), make_loss(name, reduction="sum")
    a = mean.output(z)
    zt = torch.tensor(z, requires_grad=True)
    if task == "multiclass":
        expected = nnf.cross_entropy(zt, torch.tensor(y), reduction="sum")
    elif task == "binary":
        target = torch.tensor(y, dtype=torch.float64)[:, None]
        expected = nnf.binary_cross_entropy_with_logits(zt, target, reduction="sum")
    else:
        expected = _torch_regression(name, zt, torch.tensor(y), "sum")
    expected.backward()
    assert total.value(z, a, y) == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(total.gradient(z, a, y), zt.grad.numpy(), rtol=1e-10)
    count = len(y) if task != "regression" else y.size
    assert total.value(z, a, y) == pytest.approx(count * mean.value(z, a, y), rel=1e-12)
    # a data set's loss is reported per sample: the mean's value, and the sum's summed loss of
    # a sample (for several outputs: the sum over them, k times the mean over every element)
    outputs = 1 if task != "regression" else y.shape[1]
    assert total.batch_total(total.value(z, a, y), y) / total.batch_weight(y) == pytest.approx(
        outputs * mean.batch_total(mean.value(z, a, y), y) / mean.batch_weight(y), rel=1e-12
    )


def test_class_weighted_sum_reduction_adds_weighted_sample_losses(torch: ModuleType) -> None:
    import torch.nn.functional as nnf

    z = np.random.default_rng(4).normal(size=(6, 3))
    y = np.arange(6) % 3
    weights = [1.0, 2.0, 0.5]
    loss = make_loss("cross_entropy", class_weights=weights, reduction="sum")
    zt = torch.tensor(z, requires_grad=True)
    expected = nnf.cross_entropy(
        zt, torch.tensor(y), weight=torch.tensor(weights, dtype=torch.float64), reduction="sum"
    )
    expected.backward()
    a = loss.output(z)
    assert loss.value(z, a, y) == pytest.approx(expected.item(), rel=1e-12)
    np.testing.assert_allclose(loss.gradient(z, a, y), zt.grad.numpy(), rtol=1e-10)


def test_canonical_output_keeps_the_fused_loss_itself() -> None:
    for name, cls in LOSSES.items():
        loss = make_loss(name)
        assert with_output(loss, None) is loss
        assert with_output(loss, make_output_activation(cls.output_activation)) is loss


@pytest.mark.parametrize("name", ["cross_entropy", "binary_cross_entropy"])
def test_cross_entropy_losses_refuse_other_outputs(name: str) -> None:
    with pytest.raises(ValueError, match="outputs"):
        with_output(make_loss(name), make_output_activation("tanh"))


def test_softmax_cross_entropy_refuses_one_hot_targets() -> None:
    with pytest.raises(ValueError, match="one-hot"):
        with_output(make_loss("cross_entropy"), None, one_hot=True)


def test_binary_cross_entropy_reads_one_hot_targets_itself_with_the_fused_gradient() -> None:
    """Ten sigmoid outputs under binary cross-entropy, the seed's ``delta = y_hat - y``: the
    loss itself (no chain rule), one output per class, ``(a - onehot(y)) / (n k)``."""
    loss = with_output(make_loss("binary_cross_entropy"), None, one_hot=True)
    assert not isinstance(loss, ChainRule)
    assert loss.task == "multiclass"
    assert loss.output_size(10, 1) == 10
    z = np.zeros((2, 3))
    a = loss.output(z)  # every output 1/2: each element's loss is log 2
    assert loss.value(z, a, np.array([0, 2])) == pytest.approx(np.log(2), rel=1e-15)
    expected = (a - np.array([[1.0, 0, 0], [0, 0, 1]])) / 6
    np.testing.assert_array_equal(loss.gradient(z, a, np.array([0, 2])), expected)


def test_one_hot_squared_error_is_a_classifier_with_one_output_per_class() -> None:
    loss = with_output(make_loss("mse"), make_output_activation("sigmoid"), one_hot=True)
    assert isinstance(loss, ChainRule)
    assert loss.task == "multiclass"
    assert loss.output_size(10, 1) == 10
    z = np.zeros((2, 3))
    a = loss.output(z)  # every output 0.5
    # t = [[1,0,0],[0,0,1]]: squared errors 0.25 each, mean 0.25; dL/dz = 2(a-t)/6 * a(1-a)
    assert loss.value(z, a, np.array([0, 2])) == pytest.approx(0.25)
    expected = 2 * (a - np.array([[1.0, 0, 0], [0, 0, 1]])) / 6 * 0.25
    np.testing.assert_allclose(loss.gradient(z, a, np.array([0, 2])), expected)


def test_hidden_activations_do_not_offer_softmax() -> None:
    assert "softmax" not in ACTIVATIONS

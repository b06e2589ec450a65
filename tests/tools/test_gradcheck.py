"""Specification of gradient checking in bpnn.tools.gradcheck.

A gradient check is only evidence if it can fail: besides the self-test grid passing, these tests
break the backward pass on purpose and require the check to notice and name the tensor; they also
require a check to leave the network as it found it and to skip (and count) kink crossings.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from bpnn.nn.activations import ACTIVATIONS, OUTPUT_ACTIVATIONS, ReLU, make_activation
from bpnn.nn.initializers import xavier_normal
from bpnn.nn.layers import Dense
from bpnn.nn.losses import LOSSES, CrossEntropy, make_loss
from bpnn.nn.network import Network
from bpnn.tools.gradcheck import (
    DEFAULT_TOLERANCE,
    STEP,
    PairingCheck,
    TensorCheck,
    check_gradients,
    relative_error,
    self_test,
    verdict,
)


def _network(
    activation: str = "relu",
    *,
    batch_norm: bool = False,
    dtype: type = np.float64,
    seed: int = 0,
) -> Network:
    rng = np.random.default_rng(seed)
    net = Network(
        [4, 5, 3, 3],
        [make_activation(activation)] * 2,
        make_loss("cross_entropy"),
        weight_init=xavier_normal,
        rng=rng,
        batch_norm=batch_norm,
        dtype=dtype,
    )
    rest = net.params[net.weight_slice.stop :]
    rest[...] = rng.normal(0, 0.5, rest.size)
    return net


def _data(seed: int = 1, n: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)), rng.permutation(np.arange(n) % 3)


def _by_name(results: list[TensorCheck]) -> dict[str, TensorCheck]:
    return {r.name: r for r in results}


@pytest.fixture(scope="module")
def self_test_results() -> list[PairingCheck]:
    return self_test()


def test_self_test_passes_every_pairing_under_default_tolerance(
    self_test_results: list[PairingCheck],
) -> None:
    results = self_test_results
    assert DEFAULT_TOLERANCE <= 1e-6
    failures = [
        f"{p.label}: {p.worst.name} rel err {p.worst.max_relative_error:.2e}"
        for p in results
        if p.worst.max_relative_error > 1e-6
    ]
    assert not failures, "\n".join(failures)
    for pairing in results:  # every entry was compared or counted, none silently dropped
        for t in pairing.tensors:
            assert t.checked + t.skipped_at_kinks == int(np.prod(t.shape)), pairing.label
            assert t.checked > 0, f"{pairing.label}: {t.name} never compared"


def test_self_test_covers_every_activation_with_every_loss(
    self_test_results: list[PairingCheck],
) -> None:
    labels = {p.label for p in self_test_results}
    for activation in ACTIVATIONS:
        for loss in LOSSES:
            assert f"{activation} x {loss}" in labels


def test_self_test_covers_every_output_activation_with_every_loss_that_takes_it(
    self_test_results: list[PairingCheck],
) -> None:
    labels = {p.label for p in self_test_results}
    for loss, cls in LOSSES.items():
        assert f"tanh x {loss} (reduction=sum)" in labels
        if cls.task != "regression":  # the log losses take only their own (fused) output
            assert f"tanh x {loss} (output={cls.output_activation})" in labels
            continue
        for output in OUTPUT_ACTIVATIONS:
            assert f"tanh x {loss} (output={output})" in labels
        for output in ("identity", "sigmoid", "softmax"):
            assert f"tanh x {loss} (output={output}, one_hot)" in labels


def test_check_is_clean_on_the_correct_network() -> None:
    net = _network("tanh", batch_norm=True)
    X, y = _data()
    for r in check_gradients(net, X, y, l2=0.01):
        assert r.passed(), f"{r.name}: {r.max_relative_error:.2e}"


def test_check_detects_weight_gradients_scaled_by_one_percent_and_names_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = Dense.backward

    def scaled_backward(self: Dense, delta: np.ndarray) -> np.ndarray:
        out = original(self, delta)
        self.dW *= 1.01
        return out

    monkeypatch.setattr(Dense, "backward", scaled_backward)
    results = _by_name(check_gradients(_network("tanh"), *_data()))
    for name in ("0.weight", "1.weight", "2.weight"):
        assert not results[name].passed(), name
        assert results[name].max_relative_error == pytest.approx(0.01 / 1.01, rel=1e-3), name
    for name in ("0.bias", "1.bias", "2.bias"):
        assert results[name].passed(), name


def test_check_detects_a_wrong_activation_derivative_below_it_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = ReLU.derivative
    monkeypatch.setattr(ReLU, "derivative", lambda self, z, a: 1.01 * original(self, z, a))
    results = _by_name(check_gradients(_network("relu"), *_data()))
    failing = {name for name, r in results.items() if not r.passed()}
    assert failing == {"0.weight", "0.bias", "1.weight", "1.bias"}  # the output layer is right
    assert max(results[n].max_relative_error for n in failing) > 1e-3


def test_check_detects_a_loss_gradient_that_forgets_to_average(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    original = CrossEntropy.gradient
    monkeypatch.setattr(
        CrossEntropy,
        "gradient",
        lambda self, z, a, y, weights=None: original(self, z, a, y, weights) * len(y),
    )
    results = check_gradients(_network("tanh"), *_data())
    assert all(r.max_relative_error > 0.5 for r in results)  # summed is n = 6 times too big


def test_check_leaves_parameters_gradients_and_statistics_bit_identical() -> None:
    net = _network("relu", batch_norm=True)
    X, y = _data()
    net.train_step(X, y)  # non-trivial running statistics
    net.loss_and_gradients(X, y)
    params, grads = net.params.copy(), net.grads.copy()
    buffers = {k: v.copy() for k, v in net.buffers().items()}
    check_gradients(net, X, y, max_entries=7, rng=np.random.default_rng(0))
    assert net.params.tobytes() == params.tobytes()
    assert net.grads.tobytes() == grads.tobytes()
    for name, b in net.buffers().items():
        assert b.tobytes() == buffers[name].tobytes(), name


def test_check_refuses_a_float32_network() -> None:
    with pytest.raises(ValueError, match="float64"):
        check_gradients(_network(dtype=np.float32), *_data())


def test_max_entries_samples_that_many_entries_of_larger_tensors() -> None:
    results = _by_name(
        check_gradients(_network("tanh"), *_data(), max_entries=4, rng=np.random.default_rng(2))
    )
    assert results["0.weight"].checked == 4  # 20 entries, 4 sampled
    assert results["2.bias"].checked == 3  # smaller than max_entries: all of it


def _network_with_unit_at_the_kink() -> tuple[Network, np.ndarray, np.ndarray, float]:
    """Unit 0 of the first hidden ReLU layer has pre-activation STEP/2 for sample 0."""
    net = _network("relu")
    X, y = _data()
    params = net.parameters()
    params["0.bias"][0] = STEP / 2 - X[0] @ params["0.weight"][:, 0]
    return net, X, y, STEP / 2


def test_kink_crossings_are_skipped_counted_and_do_not_count_as_errors() -> None:
    net, X, y, z00 = _network_with_unit_at_the_kink()
    net.forward(X)
    assert net.layers[1][1].z[0, 0] == pytest.approx(z00, rel=1e-6)
    result = _by_name(check_gradients(net, X, y))["0.bias"]
    assert result.skipped_at_kinks >= 1
    assert result.checked + result.skipped_at_kinks == 5
    assert result.max_relative_error < 1e-6


def test_kink_crossing_would_fail_the_check_if_it_were_compared() -> None:
    """Without the skip the test above would be vacuous: show the crossing entry really breaks
    the finite difference."""
    net, X, y, _ = _network_with_unit_at_the_kink()
    net.loss_and_gradients(X, y)
    analytic = net.gradients()["0.bias"][0]
    bias = net.parameters()["0.bias"]
    original = bias[0]
    losses = []
    for offset in (2 * STEP, STEP, -STEP, -2 * STEP):
        bias[0] = original + offset
        losses.append(net.loss_and_gradients(X, y))
    bias[0] = original
    numerical = (-losses[0] + 8 * losses[1] - 8 * losses[2] + losses[3]) / (12 * STEP)
    assert relative_error(np.array(analytic), np.array(numerical)) > 1e-4


def test_relative_error_is_zero_when_both_gradients_are_zero() -> None:
    assert relative_error(np.array([0.0]), np.array([0.0]))[0] == 0.0


def test_exact_zero_gradients_pass_even_when_the_loss_is_large() -> None:
    # mse on targets near 1e4 gives a loss near 1e8: the roundoff of the differences on the
    # exactly-zero gradients of dead ReLU units grows with it, and so does the floor
    rng = np.random.default_rng(3)
    net = Network(
        [4, 6, 2],
        [make_activation("relu")],
        make_loss("mse"),
        weight_init=xavier_normal,
        rng=rng,
        dtype=np.float64,
    )
    net.parameters()["0.bias"][0] = -100.0  # unit 0 is dead: its gradients are exactly 0
    X = rng.normal(size=(6, 4))
    y = rng.normal(1e4, 1.0, size=(6, 2))
    results = _by_name(check_gradients(net, X, y))
    net.loss_and_gradients(X, y)
    assert net.gradients()["0.bias"][0] == 0.0
    assert all(r.passed() for r in results.values()), {
        name: r.max_relative_error for name, r in results.items()
    }


def test_relative_error_divides_by_the_larger_magnitude_with_a_floor() -> None:
    np.testing.assert_allclose(
        relative_error(np.array([1.0, -2.0, 1e-9]), np.array([1.1, -1.0, 0.0]), floor=1e-7),
        [0.1 / 1.1, 0.5, 1e-9 / 1e-7],
        rtol=1e-12,
    )


def _tensor(error: float) -> TensorCheck:
    return TensorCheck("W1", (2, 2), error, None, checked=4, skipped_at_kinks=0)


def test_the_verdict_fails_on_a_non_finite_error_whatever_the_others_are() -> None:
    """A NaN relative error (an overflowed gradient) is the worst tensor and fails; ``max`` on
    the raw errors would have ranked it below any number and passed the check."""
    passed, label, worst = verdict([("a", _tensor(1e-9)), ("b", _tensor(math.nan))], tol=1e-6)
    assert not passed and label == "b" and math.isnan(worst.max_relative_error)
    passed, label, _ = verdict([("a", _tensor(1e-9)), ("b", _tensor(1e-7))], tol=1e-6)
    assert passed and label == "b"
    assert not verdict([(None, _tensor(2e-6))], tol=1e-6)[0]

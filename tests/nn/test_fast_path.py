"""The fast path (float32, one flat parameter buffer, in-place updates) agrees with a plain
reference written the textbook way, in float64, with fresh arrays for everything.

The reference below is independent of the engine: per-layer weight lists, the forward and
backward formulas spelled out, and Adam over each tensor separately.
"""

from __future__ import annotations

import numpy as np

from bpnn.nn.activations import make_activation
from bpnn.nn.initializers import he_normal
from bpnn.nn.losses import make_loss
from bpnn.nn.network import Network
from bpnn.nn.optimizers import make_optimizer

SIZES = [20, 16, 12, 5]


def reference_step(
    weights: list[np.ndarray], biases: list[np.ndarray], X: np.ndarray, y: np.ndarray
) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
    """Loss and gradients of a ReLU MLP with softmax cross-entropy, the textbook way."""
    activations, pre_activations = [X], []
    for i, (W, b) in enumerate(zip(weights, biases, strict=True)):
        z = activations[-1] @ W + b
        pre_activations.append(z)
        activations.append(np.maximum(z, 0) if i < len(weights) - 1 else z)
    logits = activations[-1]
    shifted = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    n = len(X)
    loss = -np.log(p[np.arange(n), y]).mean()
    onehot = np.eye(logits.shape[1])[y]
    delta = (p - onehot) / n
    grad_w, grad_b = [None] * len(weights), [None] * len(weights)
    for i in reversed(range(len(weights))):
        grad_w[i] = activations[i].T @ delta
        grad_b[i] = delta.sum(axis=0)
        if i > 0:
            delta = (delta @ weights[i].T) * (pre_activations[i - 1] > 0)
    return float(loss), grad_w, grad_b


def reference_adam(
    param: np.ndarray, grad: np.ndarray, state: dict, t: int, lr: float
) -> np.ndarray:
    m = state.setdefault("m", np.zeros_like(param)) * 0.9 + 0.1 * grad
    v = state.setdefault("v", np.zeros_like(param)) * 0.999 + 0.001 * grad**2
    state["m"], state["v"] = m, v
    m_hat, v_hat = m / (1 - 0.9**t), v / (1 - 0.999**t)
    return param - lr * m_hat / (np.sqrt(v_hat) + 1e-8)


def make_network(dtype: type) -> Network:
    return Network(
        SIZES,
        [make_activation("relu")] * 2,
        make_loss("cross_entropy"),
        weight_init=he_normal,
        rng=np.random.default_rng(0),
        dtype=dtype,
    )


def test_float32_gradients_match_the_float64_reference_to_float32_precision() -> None:
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(32, SIZES[0])), rng.integers(0, SIZES[-1], 32)
    network = make_network(np.float32)
    params = network.parameters()
    weights = [params[f"{i}.weight"].astype(np.float64) for i in range(3)]
    biases = [params[f"{i}.bias"].astype(np.float64) for i in range(3)]

    loss = network.loss_and_gradients(X, y)
    ref_loss, grad_w, grad_b = reference_step(weights, biases, X, y)

    assert network.grads.dtype == np.float32
    assert loss == np.float32(ref_loss) or abs(loss - ref_loss) < 1e-6 * abs(ref_loss)
    grads = network.gradients()
    for i in range(3):
        scale = np.abs(grad_w[i]).max()
        np.testing.assert_allclose(grads[f"{i}.weight"], grad_w[i], rtol=0, atol=1e-5 * scale)
        np.testing.assert_allclose(grads[f"{i}.bias"], grad_b[i], rtol=0, atol=1e-5 * scale)


def test_fifty_adam_steps_on_the_flat_float32_buffer_follow_the_float64_reference() -> None:
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(64, SIZES[0])), rng.integers(0, SIZES[-1], 64)
    network = make_network(np.float32)
    optimizer = make_optimizer("adam")
    optimizer.build(network.params, network.weight_slice)
    params = network.parameters()
    weights = [params[f"{i}.weight"].astype(np.float64) for i in range(3)]
    biases = [params[f"{i}.bias"].astype(np.float64) for i in range(3)]
    states: list[dict] = [{} for _ in range(6)]

    for t in range(1, 51):
        batch = rng.choice(64, size=16, replace=False)
        network.loss_and_gradients(X[batch], y[batch])
        optimizer.update_step(network.grads, network.params, 1e-2)
        _, grad_w, grad_b = reference_step(weights, biases, X[batch], y[batch])
        for i in range(3):
            weights[i] = reference_adam(weights[i], grad_w[i], states[2 * i], t, 1e-2)
            biases[i] = reference_adam(biases[i], grad_b[i], states[2 * i + 1], t, 1e-2)

    for i in range(3):
        np.testing.assert_allclose(params[f"{i}.weight"], weights[i], rtol=0, atol=1e-5)
        np.testing.assert_allclose(params[f"{i}.bias"], biases[i], rtol=0, atol=1e-5)
    assert network.params.dtype == np.float32

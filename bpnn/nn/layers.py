"""Layers: each holds its forward rule and, right beside it, its backward rule.

A layer never owns memory for its parameters: the network allocates one flat buffer for all
parameters and one for all gradients, and hands each layer *views* into them (``bind``). The
layer writes its gradients into its gradient views in place, so after ``backward`` the network's
flat gradient buffer is complete and an optimizer can update everything in a few vector ops.

Shapes: a batch is ``(batch, features)``; a weight matrix is ``(fan_in, fan_out)``.
``backward(delta)`` receives ``dL/d(output)`` of the layer and returns ``dL/d(input)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bpnn.nn.activations import Activation
from bpnn.nn.initializers import Initializer, ones, zeros


@dataclass(frozen=True)
class Mode:
    """How a forward pass behaves.

    ``training``: batch norm normalizes with the batch's statistics (else the running ones);
    ``dropout``: dropout masks are drawn (else dropout is the identity);
    ``update_statistics``: batch norm's running mean and variance move towards the batch's;
    ``backward``: a backward pass follows, so layers keep what it reads (an evaluation pass
    keeps nothing, so evaluating a data set does not keep the data set alive).
    """

    training: bool
    dropout: bool
    update_statistics: bool
    backward: bool = True


TRAIN = Mode(training=True, dropout=True, update_statistics=True)
#: the training-mode function without its randomness or side effects: what gradcheck differentiates
CHECK = Mode(training=True, dropout=False, update_statistics=False)
EVAL = Mode(training=False, dropout=False, update_statistics=False, backward=False)
#: the evaluation-mode function with a backward pass after it (``Network.input_gradient``)
EVAL_BACKWARD = Mode(training=False, dropout=False, update_statistics=False)


@dataclass(frozen=True)
class ParameterSpec:
    """One parameter tensor a layer needs: its name, shape, initializer and whether weight decay
    applies (weights yes; biases and batch-norm scale/shift no)."""

    name: str
    shape: tuple[int, ...]
    initializer: Initializer
    decay: bool
    fan_in: int
    fan_out: int


class Layer:
    """Base class: a layer without parameters, buffers or state."""

    def parameter_specs(self) -> list[ParameterSpec]:
        return []

    def bind(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        """Receive views into the network's flat parameter and gradient buffers."""

    def buffers(self) -> dict[str, np.ndarray]:
        """Non-trainable state saved with the model (batch norm's running statistics)."""
        return {}

    def forward(self, x: np.ndarray, mode: Mode) -> np.ndarray:
        raise NotImplementedError

    def backward(self, delta: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class Dense(Layer):
    """Fully connected layer ``z = x @ W + b``.

    Backward, with ``delta = dL/dz`` of shape ``(batch, fan_out)``::

        dL/dW = x^T @ delta        dL/db = sum over the batch of delta
        dL/dx = delta @ W^T        (skipped for the first layer: nobody needs it)
    """

    def __init__(
        self,
        fan_in: int,
        fan_out: int,
        weight_init: Initializer,
        *,
        use_bias: bool = True,
        bias_init: Initializer = zeros,
        input_gradient: bool = True,
    ) -> None:
        self.fan_in, self.fan_out = fan_in, fan_out
        self.weight_init, self.bias_init = weight_init, bias_init
        self.use_bias = use_bias
        self.input_gradient = input_gradient

    def parameter_specs(self) -> list[ParameterSpec]:
        specs = [
            ParameterSpec(
                "weight",
                (self.fan_in, self.fan_out),
                self.weight_init,
                True,
                self.fan_in,
                self.fan_out,
            )
        ]
        if self.use_bias:
            specs.append(
                ParameterSpec(
                    "bias", (self.fan_out,), self.bias_init, False, self.fan_in, self.fan_out
                )
            )
        return specs

    def bind(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        self.W, self.dW = params["weight"], grads["weight"]
        self.b = params.get("bias")
        self.db = grads.get("bias")

    def forward(self, x: np.ndarray, mode: Mode) -> np.ndarray:
        # the input is kept for the backward pass (none after an evaluation pass: Mode)
        self.x = x if mode.backward else None
        z = x @ self.W
        if self.b is not None:
            z += self.b
        self.z = z if mode.backward else None  # read by Network.trace, as x and delta
        return z

    def backward(self, delta: np.ndarray) -> np.ndarray:
        self.delta = delta  # nobody changes it after this layer: kept for Network.trace
        np.matmul(self.x.T, delta, out=self.dW)
        if self.db is not None:
            np.sum(delta, axis=0, out=self.db)
        return delta @ self.W.T if self.input_gradient else delta


class ActivationLayer(Layer):
    """Applies ``a = g(z)``; backward is ``dL/dz = dL/da * g'(z)``."""

    def __init__(self, activation: Activation) -> None:
        self.activation = activation

    def forward(self, x: np.ndarray, mode: Mode) -> np.ndarray:
        self.z = x
        self.a = self.activation.forward(x)
        return self.a

    def backward(self, delta: np.ndarray) -> np.ndarray:
        delta *= self.activation.derivative(self.z, self.a)  # delta is ours to overwrite
        return delta


class BatchNorm(Layer):
    """Batch normalization (Ioffe & Szegedy 2015) over the features of a batch::

        mu, var = mean and (biased) variance of x over the batch
        x_hat   = (x - mu) / sqrt(var + eps)
        y       = scale * x_hat + shift

    Backward, with ``dy = dL/dy`` and ``n`` the batch size::

        dL/dscale = sum(dy * x_hat)      dL/dshift = sum(dy)
        dL/dx     = scale / sqrt(var + eps) * (dy - mean(dy) - x_hat * mean(dy * x_hat))

    In evaluation the running statistics are used; they follow the batch statistics as
    ``running = (1 - momentum) running + momentum batch`` (unbiased variance, as PyTorch).
    They are constants there, so backward after an evaluation forward (``Network.input_gradient``)
    is ``dL/dx = scale / sqrt(running_var + eps) * dy``.
    ``shift`` plays the role of the preceding dense layer's bias, which is therefore left out.
    """

    def __init__(self, features: int, *, momentum: float = 0.1, eps: float = 1e-5) -> None:
        if not 0 < momentum <= 1:
            raise ValueError(f"batch norm momentum must be in (0, 1], got {momentum}")
        self.features, self.momentum, self.eps = features, momentum, eps
        self.running_mean = np.zeros(features)
        self.running_var = np.ones(features)
        self.batch_statistics = True

    def parameter_specs(self) -> list[ParameterSpec]:
        n = self.features
        return [
            ParameterSpec("bn_scale", (n,), ones, False, n, n),
            ParameterSpec("bn_shift", (n,), zeros, False, n, n),
        ]

    def bind(self, params: dict[str, np.ndarray], grads: dict[str, np.ndarray]) -> None:
        self.scale, self.shift = params["bn_scale"], params["bn_shift"]
        self.dscale, self.dshift = grads["bn_scale"], grads["bn_shift"]
        self.running_mean = self.running_mean.astype(self.scale.dtype)
        self.running_var = self.running_var.astype(self.scale.dtype)

    def buffers(self) -> dict[str, np.ndarray]:
        return {"bn_running_mean": self.running_mean, "bn_running_var": self.running_var}

    def forward(self, x: np.ndarray, mode: Mode) -> np.ndarray:
        if mode.training:
            mu = x.mean(axis=0)
            var = x.var(axis=0)
            if mode.update_statistics:
                n = len(x)
                unbiased = var * (n / (n - 1)) if n > 1 else var
                self.running_mean *= 1 - self.momentum
                self.running_mean += self.momentum * mu
                self.running_var *= 1 - self.momentum
                self.running_var += self.momentum * unbiased
        else:
            mu, var = self.running_mean, self.running_var
        self.batch_statistics = mode.training  # whether mu and var depend on x (backward)
        self.inv_std = 1.0 / np.sqrt(var + self.eps)
        self.x_hat = (x - mu) * self.inv_std
        return self.x_hat * self.scale + self.shift

    def backward(self, delta: np.ndarray) -> np.ndarray:
        np.sum(delta * self.x_hat, axis=0, out=self.dscale)
        np.sum(delta, axis=0, out=self.dshift)
        if not self.batch_statistics:
            return (self.scale * self.inv_std) * delta
        n = len(delta)
        return (self.scale * self.inv_std) * (
            delta - self.dshift / n - self.x_hat * (self.dscale / n)
        )


class Dropout(Layer):
    """Inverted dropout: in training each unit is kept with probability ``1 - rate`` and scaled by
    ``1 / (1 - rate)``, so evaluation needs no rescaling. ``dL/dx = dL/dy * mask``."""

    def __init__(self, rate: float, rng: np.random.Generator) -> None:
        if not 0 <= rate < 1:
            raise ValueError(f"dropout must be in [0, 1), got {rate}")
        self.rate, self.rng = rate, rng
        self.mask: np.ndarray | None = None

    def forward(self, x: np.ndarray, mode: Mode) -> np.ndarray:
        if not mode.dropout or self.rate == 0:
            self.mask = None
            return x
        keep = self.rng.random(x.shape, dtype=x.dtype) >= self.rate
        self.mask = keep * x.dtype.type(1 / (1 - self.rate))
        return x * self.mask

    def backward(self, delta: np.ndarray) -> np.ndarray:
        return delta if self.mask is None else delta * self.mask

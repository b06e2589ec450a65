"""Weight initializers: functions ``(rng, shape, fan_in, fan_out, **options) -> float64 array``.

A weight matrix has shape ``(fan_in, fan_out)``. The variance-scaling initializers keep the
variance of activations (Glorot/Xavier: both directions; He: the forward pass through ReLUs;
LeCun: SELU-style ``1/fan_in``) roughly constant from layer to layer. All draw from the given
``numpy.random.Generator`` only.

A bias vector (shape ``(fan_out,)``, with its layer's fans) starts from one of
``BIAS_INITIALIZERS``: zeros (the default), a constant, a fixed-width normal or uniform, or
PyTorch's ``nn.Linear`` default; the variance-scaling rules are about the sum over a weight
matrix's inputs and do not apply to it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Initializer = Callable[..., np.ndarray]


def he_normal(
    rng: np.random.Generator, shape: tuple[int, ...], fan_in: int, fan_out: int
) -> np.ndarray:
    """``N(0, std^2)`` with ``std = sqrt(2 / fan_in)`` (He et al. 2015; for ReLU layers)."""
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)


def he_uniform(
    rng: np.random.Generator, shape: tuple[int, ...], fan_in: int, fan_out: int
) -> np.ndarray:
    """``U(-limit, limit)`` with ``limit = sqrt(6 / fan_in)``."""
    limit = np.sqrt(6.0 / fan_in)
    return rng.uniform(-limit, limit, size=shape)


def xavier_normal(
    rng: np.random.Generator, shape: tuple[int, ...], fan_in: int, fan_out: int
) -> np.ndarray:
    """``N(0, std^2)`` with ``std = sqrt(2 / (fan_in + fan_out))`` (Glorot & Bengio 2010)."""
    return rng.normal(0.0, np.sqrt(2.0 / (fan_in + fan_out)), size=shape)


def xavier_uniform(
    rng: np.random.Generator, shape: tuple[int, ...], fan_in: int, fan_out: int
) -> np.ndarray:
    """``U(-limit, limit)`` with ``limit = sqrt(6 / (fan_in + fan_out))``."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape)


def lecun_normal(
    rng: np.random.Generator, shape: tuple[int, ...], fan_in: int, fan_out: int
) -> np.ndarray:
    """``N(0, std^2)`` with ``std = sqrt(1 / fan_in)`` (LeCun et al. 1998)."""
    return rng.normal(0.0, np.sqrt(1.0 / fan_in), size=shape)


def normal(
    rng: np.random.Generator, shape: tuple[int, ...], fan_in: int, fan_out: int, std: float = 0.05
) -> np.ndarray:
    """``N(0, std^2)`` with a fixed ``std`` (default 0.05)."""
    if not std > 0:
        raise ValueError(f"std must be positive, got {std}")
    return rng.normal(0.0, std, size=shape)


def uniform(
    rng: np.random.Generator, shape: tuple[int, ...], fan_in: int, fan_out: int, limit: float = 0.05
) -> np.ndarray:
    """``U(-limit, limit)`` with a fixed ``limit`` (default 0.05)."""
    if not limit > 0:
        raise ValueError(f"limit must be positive, got {limit}")
    return rng.uniform(-limit, limit, size=shape)


def pytorch_linear(
    rng: np.random.Generator, shape: tuple[int, ...], fan_in: int, fan_out: int
) -> np.ndarray:
    """``U(-limit, limit)`` with ``limit = 1 / sqrt(fan_in)``: PyTorch's default for both the
    weight and the bias of ``nn.Linear`` (its ``kaiming_uniform_(a=sqrt(5))`` gives the weight
    ``sqrt(6 / ((1 + a^2) fan_in)) = 1 / sqrt(fan_in)``, and the bias the same bound), so a
    tutorial's PyTorch network starts from the same distribution (not the same draws)."""
    limit = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-limit, limit, size=shape)


def constant(
    rng: np.random.Generator, shape: tuple[int, ...], fan_in: int, fan_out: int, value: float = 0.0
) -> np.ndarray:
    """Every entry ``value`` (default 0): a bias of 0.1 keeps ReLU units alive at the start;
    weights all equal never break symmetry."""
    return np.full(shape, float(value))


def zeros(
    rng: np.random.Generator, shape: tuple[int, ...], fan_in: int, fan_out: int
) -> np.ndarray:
    """All zeros: the default for biases (a weight matrix of zeros never breaks symmetry)."""
    return np.zeros(shape)


def ones(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int, fan_out: int) -> np.ndarray:
    """All ones: batch normalization's scale starts here."""
    return np.ones(shape)


INITIALIZERS: dict[str, Initializer] = {
    f.__name__: f
    for f in (
        he_normal,
        he_uniform,
        xavier_normal,
        xavier_uniform,
        lecun_normal,
        normal,
        uniform,
        pytorch_linear,
        constant,
        zeros,
    )
}

#: the initializers a bias vector may start from (``model.bias_init``)
BIAS_INITIALIZERS: dict[str, Initializer] = {
    f.__name__: f for f in (zeros, constant, normal, uniform, pytorch_linear)
}

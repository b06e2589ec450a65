"""Activation functions, each with its forward rule and its derivative side by side.

Notation (used across the engine): a layer computes the pre-activation ``z = x @ W + b`` and the
activation ``a = g(z)``. Backpropagation needs ``g'(z)``; every ``derivative`` takes ``z`` and the
cached output ``a`` (so ``sigmoid`` can use ``a * (1 - a)`` instead of recomputing ``g(z)``).

An activation is one class with a unique ``name``, its ``formula`` and ``derivative_formula``
(text and LaTeX, what ``bpnn explain`` prints) and its traits (``has_kink``, ``can_die``,
``saturates_at``); the registry ``ACTIVATIONS`` is built from the classes themselves, so adding
one is writing one class.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from bpnn.nn.formula import Formula
from bpnn.nn.options import lookup


def stable_sigmoid(z: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-z))`` without overflow: ``exp`` only ever sees ``-|z|``."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)


class Activation:
    """An element-wise nonlinearity ``a = g(z)``."""

    name: ClassVar[str]
    #: True when g has a kink (a point where g' jumps); gradcheck avoids evaluating across it.
    has_kink: ClassVar[bool] = False
    #: True when a unit whose ``z`` is never positive passes (almost) no gradient back: the
    #: gradient-health report measures the fraction of such "dead" units (the ReLU family)
    can_die: ClassVar[bool] = False
    #: the bounds ``(low, high)`` g saturates at (its slope goes to 0 near them), or None: the
    #: gradient-health report measures the fraction of units stuck near one
    saturates_at: ClassVar[tuple[float, float] | None] = None
    #: ``g(z)`` and ``g'(z)`` as text and LaTeX: what ``bpnn explain`` prints
    formula: ClassVar[Formula]
    derivative_formula: ClassVar[Formula]

    def forward(self, z: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def derivative(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        """``g'(z)``, element-wise; ``a = g(z)`` is the cached forward output."""
        raise NotImplementedError

    def backward(self, z: np.ndarray, a: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """``dL/dz`` from ``grad = dL/da``: the chain rule ``dL/da * g'(z)`` of an element-wise
        ``g`` (an output activation that mixes its inputs, softmax, overrides this)."""
        return grad * self.derivative(z, a)

    def options(self) -> dict[str, float]:
        """The activation's options with their values (empty for most)."""
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.options().items())
        return f"{type(self).__name__}({args})"


class Identity(Activation):
    """The identity: a regression's output, values as they are."""

    name = "identity"
    formula = Formula("z", "z")
    derivative_formula = Formula("1", "1")

    def forward(self, z: np.ndarray) -> np.ndarray:
        return z

    def derivative(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        return np.ones_like(z)


class Sigmoid(Activation):
    """The logistic sigmoid, between 0 and 1; its slope is largest at 0 and vanishes at both
    ends (computed without overflow: ``stable_sigmoid``)."""

    name = "sigmoid"
    formula = Formula("1 / (1 + e^-z)", r"\frac{1}{1 + e^{-z}}")
    derivative_formula = Formula("a (1 - a)", r"a\,(1 - a)")
    saturates_at = (0.0, 1.0)

    def forward(self, z: np.ndarray) -> np.ndarray:
        return stable_sigmoid(z)

    def derivative(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        return a * (1 - a)


class Tanh(Activation):
    """The hyperbolic tangent, between -1 and 1 and centred at 0."""

    name = "tanh"
    formula = Formula("tanh z", r"\tanh z")
    derivative_formula = Formula("1 - a^2", "1 - a^2")
    saturates_at = (-1.0, 1.0)

    def forward(self, z: np.ndarray) -> np.ndarray:
        return np.tanh(z)

    def derivative(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        return 1 - a * a


class ReLU(Activation):
    """The rectified linear unit; its derivative is 0 at the kink z = 0, as PyTorch's."""

    name = "relu"
    formula = Formula("max(z, 0)", r"\max(z, 0)")
    derivative_formula = Formula("1 if z > 0 else 0", "[z > 0]")
    can_die = True
    has_kink = True

    def forward(self, z: np.ndarray) -> np.ndarray:
        return np.maximum(z, 0)

    def derivative(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        return (z > 0).astype(z.dtype)


class LeakyReLU(Activation):
    """ReLU with a small ``slope`` below 0, so that a unit below 0 still passes a gradient."""

    name = "leaky_relu"
    formula = Formula("z if z > 0 else slope z", r"z \text{ if } z > 0 \text{ else } s z")
    derivative_formula = Formula("1 if z > 0 else slope", r"1 \text{ if } z > 0 \text{ else } s")
    can_die = True
    has_kink = True

    def __init__(self, slope: float = 0.01) -> None:
        if not 0 <= slope < 1:
            raise ValueError(f"slope must be in [0, 1), got {slope}")
        self.slope = float(slope)

    def forward(self, z: np.ndarray) -> np.ndarray:
        return np.where(z > 0, z, self.slope * z)

    def derivative(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        return np.where(z > 0, 1, self.slope).astype(z.dtype)

    def options(self) -> dict[str, float]:
        return {"slope": self.slope}


class ELU(Activation):
    """The exponential linear unit: the identity above 0, a smooth curve towards ``-alpha``
    below it."""

    name = "elu"
    formula = Formula(
        "z if z > 0 else alpha (e^z - 1)", r"z \text{ if } z > 0 \text{ else } \alpha (e^z - 1)"
    )
    derivative_formula = Formula(
        "1 if z > 0 else a + alpha", r"1 \text{ if } z > 0 \text{ else } a + \alpha"
    )
    can_die = True
    has_kink = True  # g' jumps from alpha to 1 at z = 0 unless alpha = 1

    def __init__(self, alpha: float = 1.0) -> None:
        if not alpha > 0:
            raise ValueError(f"alpha must be positive, got {alpha}")
        self.alpha = float(alpha)

    def forward(self, z: np.ndarray) -> np.ndarray:
        # expm1 only sees the non-positive part, so large z cannot overflow
        return np.where(z > 0, z, self.alpha * np.expm1(np.minimum(z, 0)))

    def derivative(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        return np.where(z > 0, 1, a + self.alpha).astype(z.dtype)

    def options(self) -> dict[str, float]:
        return {"alpha": self.alpha}


class GELU(Activation):
    """Gaussian error linear unit, in the tanh form of Hendrycks & Gimpel (PyTorch's
    ``gelu(approximate="tanh")``)::

        u = sqrt(2/pi) (z + 0.044715 z^3),  t = tanh(u)
        g(z)  = 0.5 z (1 + t)
        g'(z) = 0.5 (1 + t) + 0.5 z (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 z^2)
    """

    name = "gelu"
    formula = Formula("0.5 z (1 + tanh u)", r"\tfrac12 z (1 + \tanh u)")
    derivative_formula = Formula(
        "0.5 (1 + tanh u) + 0.5 z (1 - tanh^2 u) u'",
        r"\tfrac12 (1 + \tanh u) + \tfrac12 z (1 - \tanh^2 u)\, u'",
    )
    _c = math.sqrt(2 / math.pi)  # a Python float: keeps float32 arrays float32
    _k = 0.044715

    def forward(self, z: np.ndarray) -> np.ndarray:
        return 0.5 * z * (1 + np.tanh(self._c * (z + self._k * z**3)))

    def derivative(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        t = np.tanh(self._c * (z + self._k * z**3))
        return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * self._c * (1 + 3 * self._k * z * z)


class Softplus(Activation):
    """A smooth ReLU, computed as ``max(z, 0) + log1p(e^-|z|)`` (no overflow)."""

    name = "softplus"
    formula = Formula("log(1 + e^z)", r"\log(1 + e^z)")
    derivative_formula = Formula("sigmoid(z)", r"\sigma(z)")

    def forward(self, z: np.ndarray) -> np.ndarray:
        return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))

    def derivative(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        return stable_sigmoid(z)


def softmax(z: np.ndarray) -> np.ndarray:
    """Row-wise ``exp(z) / sum(exp(z))``, shifted by the row maximum so ``exp`` cannot overflow."""
    e = np.exp(z - z.max(axis=1, keepdims=True))
    e /= e.sum(axis=1, keepdims=True)
    return e


class Softmax(Activation):
    """``a_k = e^{z_k} / sum_j e^{z_j}`` over a row: an output activation only, since it is not
    element-wise. Its Jacobian ``da_k/dz_j = a_k (1[k = j] - a_j)`` gives the backward rule::

        dL/dz_j = a_j (dL/da_j - sum_k a_k dL/da_k)
    """

    name = "softmax"
    formula = Formula("e^z_k / sum_j e^z_j", r"\frac{e^{z_k}}{\sum_j e^{z_j}}")
    derivative_formula = Formula("a_k (1[k = j] - a_j)", "a_k ([k = j] - a_j)")

    def forward(self, z: np.ndarray) -> np.ndarray:
        return softmax(z)

    def derivative(self, z: np.ndarray, a: np.ndarray) -> np.ndarray:
        raise TypeError("softmax is not element-wise: use backward(z, a, grad)")

    def backward(self, z: np.ndarray, a: np.ndarray, grad: np.ndarray) -> np.ndarray:
        return a * (grad - (grad * a).sum(axis=1, keepdims=True))


#: the hidden-layer activations (element-wise)
ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls for cls in (Identity, Sigmoid, Tanh, ReLU, LeakyReLU, ELU, GELU, Softplus)
}
#: what ``model.output`` may name: every hidden activation, and softmax
OUTPUT_ACTIVATIONS: dict[str, type[Activation]] = {**ACTIVATIONS, Softmax.name: Softmax}


def make_activation(name: str, **options: float) -> Activation:
    """The activation called ``name`` with its options; unknown names list the choices."""
    return lookup(ACTIVATIONS, "activation", name)(**options)


def make_output_activation(name: str, **options: float) -> Activation:
    """The output activation called ``name`` (any activation, or softmax)."""
    return lookup(OUTPUT_ACTIVATIONS, "output activation", name)(**options)

"""Optimizers: one small class per update rule, applied to the whole flat parameter buffer.

The network keeps every parameter in one contiguous 1-D array ``w`` and every gradient in another,
``g``, of the same shape and dtype. An optimizer never owns ``w``; it owns only its state (moment
estimates, momentum buffers, ...) and follows the Keras contract:

- ``build(w, decay_slice)`` allocates the state (zeros like ``w``, same dtype) and resets the step
  counter ``iterations`` to 0;
- ``update_step(g, w, lr)`` changes ``w`` in place by one step and increments ``iterations``;
- ``state_dict()`` / ``load_state_dict()`` save and restore the state so a resumed run continues
  bit for bit.

Every rule matches its ``torch.optim`` counterpart (same formulas, same defaults), so PyTorch is
the test oracle. Notation in the docstrings: ``w`` parameters, ``g`` gradient, ``lr`` learning rate,
``t = 1, 2, ...`` the number of the step being taken; all operations are element-wise.

Speed: ``update_step`` is the hot loop of training, so each rule is written as a few in-place NumPy
operations (``out=``, ``*=``, ``+=``) through one scratch buffer allocated in ``build``; a step
allocates no array the size of ``w``. ``gradient`` is only read, never written. Adam (and AdamW)
hand their arithmetic to a fused kernel where one can run (``bpnn.nn.kernels``): the same
operations in one compiled pass instead of twelve, with the same results bit for bit.

The learning rate is not an option of the optimizer: it arrives with every step, from the schedule.
L2 weight decay is not the optimizer's job either (the network adds it to the loss and gradient);
only AdamW has a ``weight_decay`` option, because its decay is decoupled from the gradient.
"""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np

from bpnn.nn.kernels import adam_kernel
from bpnn.nn.options import (
    check_bool,
    check_number,
    check_option_names,
    keyword_options,
    lookup,
)


class Optimizer:
    """One update rule over the flat parameter buffer (see the module docstring for the contract).

    A subclass sets ``name`` and ``update_rule`` (the rule as text, one step per line: what
    ``bpnn explain --step`` prints), takes its options as keyword arguments (validated, never the
    learning rate), lists the state arrays it needs in ``_state_names`` and implements
    ``update_step``. The base class allocates, saves and restores the state.

    Attributes: ``iterations`` counts the steps taken since ``build``; ``state`` maps each state
    array's name (``"m"``, ``"velocity"``, ...) to the array, shaped and typed like the buffer.
    """

    name: ClassVar[str]
    update_rule: ClassVar[str]

    def __init__(self) -> None:
        self.iterations: int = 0
        self.state: dict[str, np.ndarray] = {}
        self._scratch: np.ndarray | None = None
        self._decay_slice: slice = slice(None)

    def _state_names(self) -> tuple[str, ...]:
        """Names of the state arrays, each shaped like the parameter buffer."""
        return ()

    def _initial_state(self, variable: np.ndarray) -> dict[str, np.ndarray]:
        """Freshly built state; zeros unless a rule says otherwise (Adagrad)."""
        return {key: np.zeros_like(variable) for key in self._state_names()}

    def build(self, variable: np.ndarray, decay_slice: slice = slice(None)) -> None:
        """Allocate the state for the parameter buffer ``variable`` and reset ``iterations``.

        ``decay_slice`` marks the part of the buffer that decoupled weight decay applies to (the
        network passes the slice holding the weight matrices, so biases are not decayed); only
        AdamW reads it.
        """
        if not np.issubdtype(variable.dtype, np.floating):
            raise ValueError(f"the parameter buffer must be floating point, got {variable.dtype}")
        self.iterations = 0
        self.state = self._initial_state(variable)
        self._scratch = np.empty_like(variable)
        self._decay_slice = decay_slice

    def _begin_step(self) -> np.ndarray:
        """Count the step and return the scratch buffer (checks that ``build`` was called)."""
        if self._scratch is None:
            raise RuntimeError(f"{self.name}: call build(variable) before update_step")
        self.iterations += 1
        return self._scratch

    def update_step(self, gradient: np.ndarray, variable: np.ndarray, learning_rate: float) -> None:
        """One update of ``variable`` in place; reads ``gradient`` without changing it."""
        raise NotImplementedError

    def options(self) -> dict[str, float | bool]:
        """The options with defaults filled in, as they go into the resolved config."""
        return {}

    def state_dict(self) -> dict[str, np.ndarray]:
        """Copies of the state arrays plus ``iterations`` as a 0-d int64 array (npz-safe)."""
        state = {key: array.copy() for key, array in self.state.items()}
        state["iterations"] = np.array(self.iterations, dtype=np.int64)
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Restore a ``state_dict()`` into the built optimizer, after checking keys and shapes.

        Raises ValueError (and changes nothing) when a key is missing or unexpected, or when an
        array has the wrong shape or kind; RuntimeError when ``build`` was not called.
        """
        if self._scratch is None:
            raise RuntimeError(f"{self.name}: call build(variable) before load_state_dict")
        expected = {*self.state, "iterations"}
        missing = sorted(expected - set(state))
        unexpected = sorted(set(state) - expected)
        if missing or unexpected:
            raise ValueError(
                f"{self.name} optimizer state does not match: missing keys {missing}, "
                f"unexpected keys {unexpected}"
            )
        iterations = np.asarray(state["iterations"])
        if iterations.shape != () or not np.issubdtype(iterations.dtype, np.integer):
            raise ValueError(
                f"{self.name} optimizer state 'iterations' must be a 0-d integer array, "
                f"got shape {iterations.shape} dtype {iterations.dtype}"
            )
        if iterations < 0:
            raise ValueError(f"{self.name} optimizer state 'iterations' is negative: {iterations}")
        for key, current in self.state.items():
            array = np.asarray(state[key])
            if array.shape != current.shape:
                raise ValueError(
                    f"{self.name} optimizer state '{key}' has shape {array.shape}, "
                    f"expected {current.shape}"
                )
            if not np.issubdtype(array.dtype, np.floating):
                raise ValueError(
                    f"{self.name} optimizer state '{key}' must be floating point, got {array.dtype}"
                )
        for key, current in self.state.items():
            np.copyto(current, state[key], casting="same_kind")
        self.iterations = int(iterations)

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value}" for key, value in self.options().items())
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Plain stochastic gradient descent (``torch.optim.SGD`` with ``momentum=0``);
    its update is ``update_rule``.

    Every parameter moves against its gradient by the same factor ``lr``.
    """

    name = "sgd"
    update_rule = """\
w <- w - lr * g"""

    def update_step(self, gradient: np.ndarray, variable: np.ndarray, learning_rate: float) -> None:
        step = self._begin_step()
        np.multiply(gradient, float(learning_rate), out=step)
        variable -= step


class Momentum(Optimizer):
    """SGD with heavy-ball momentum (``torch.optim.SGD(momentum=..., dampening=...)``);
    its update is ``update_rule``.

    The velocity ``b`` remembers past gradients, so steps build up along directions where the
    gradient keeps its sign and cancel where it oscillates.
    """

    name = "momentum"
    update_rule = """\
b <- g                                       on the first step (t = 1), as torch does
b <- momentum * b + (1 - dampening) * g      on every later step
w <- w - lr * b"""

    def __init__(self, *, momentum: float = 0.9, dampening: float = 0.0) -> None:
        super().__init__()
        self.momentum = check_number("momentum", momentum, 0.0, 1.0, high_open=True)
        self.dampening = check_number("dampening", dampening, 0.0, 1.0)

    def _state_names(self) -> tuple[str, ...]:
        return ("velocity",)

    def options(self) -> dict[str, float | bool]:
        return {"momentum": self.momentum, "dampening": self.dampening}

    def update_step(self, gradient: np.ndarray, variable: np.ndarray, learning_rate: float) -> None:
        step = self._begin_step()
        b = self.state["velocity"]
        if self.iterations == 1:
            np.copyto(b, gradient)
        else:
            b *= self.momentum
            np.multiply(gradient, 1.0 - self.dampening, out=step)
            b += step
        np.multiply(b, float(learning_rate), out=step)
        variable -= step


class Nesterov(Optimizer):
    """SGD with Nesterov momentum (``torch.optim.SGD(momentum=..., nesterov=True)``);
    its update is ``update_rule``.

    The step looks ahead: it uses the gradient plus the velocity it is about to follow.
    """

    name = "nesterov"
    update_rule = """\
b <- momentum * b + g                  (b starts at 0, so the first step gives b = g)
w <- w - lr * (g + momentum * b)"""

    def __init__(self, *, momentum: float = 0.9) -> None:
        super().__init__()
        self.momentum = check_number("momentum", momentum, 0.0, 1.0, low_open=True, high_open=True)

    def _state_names(self) -> tuple[str, ...]:
        return ("velocity",)

    def options(self) -> dict[str, float | bool]:
        return {"momentum": self.momentum}

    def update_step(self, gradient: np.ndarray, variable: np.ndarray, learning_rate: float) -> None:
        step = self._begin_step()
        b = self.state["velocity"]
        b *= self.momentum
        b += gradient
        np.multiply(b, self.momentum, out=step)
        step += gradient
        step *= float(learning_rate)
        variable -= step


class RMSprop(Optimizer):
    """RMSprop (``torch.optim.RMSprop``; our ``rho`` is torch's ``alpha``);
    its update is ``update_rule``.

    Dividing by ``d`` gives every parameter its own step size: large where gradients are
    small, small where they are large. Centered RMSprop divides by an estimate of the standard
    deviation of the gradient instead of its root mean square.
    """

    name = "rmsprop"
    update_rule = """\
v <- rho * v + (1 - rho) * g^2                 running mean of squared gradients
a <- rho * a + (1 - rho) * g                   running mean of gradients (centered only)
d <- sqrt(v) + eps, or sqrt(v - a^2) + eps when centered
without momentum:  w <- w - lr * g / d
with momentum:     b <- momentum * b + g / d;  w <- w - lr * b"""

    def __init__(
        self,
        *,
        rho: float = 0.99,
        eps: float = 1e-8,
        momentum: float = 0.0,
        centered: bool = False,
    ) -> None:
        super().__init__()
        self.rho = check_number("rho", rho, 0.0, 1.0, high_open=True)
        self.eps = check_number("eps", eps, 0.0, math.inf, low_open=True, high_open=True)
        self.momentum = check_number("momentum", momentum, 0.0, 1.0, high_open=True)
        self.centered = check_bool("centered", centered)

    def _state_names(self) -> tuple[str, ...]:
        names = ("square_avg",)
        if self.centered:
            names += ("grad_avg",)
        if self.momentum > 0:
            names += ("velocity",)
        return names

    def options(self) -> dict[str, float | bool]:
        return {
            "rho": self.rho,
            "eps": self.eps,
            "momentum": self.momentum,
            "centered": self.centered,
        }

    def update_step(self, gradient: np.ndarray, variable: np.ndarray, learning_rate: float) -> None:
        step = self._begin_step()
        lr = float(learning_rate)
        v = self.state["square_avg"]
        v *= self.rho
        np.square(gradient, out=step)
        step *= 1.0 - self.rho
        v += step
        if self.centered:
            a = self.state["grad_avg"]
            a *= self.rho
            np.multiply(gradient, 1.0 - self.rho, out=step)
            a += step
            np.square(a, out=step)
            np.subtract(v, step, out=step)
            np.sqrt(step, out=step)
        else:
            np.sqrt(v, out=step)
        step += self.eps
        np.divide(gradient, step, out=step)  # step = g / d
        if self.momentum > 0:
            b = self.state["velocity"]
            b *= self.momentum
            b += step
            np.multiply(b, lr, out=step)
        else:
            step *= lr
        variable -= step


class Adagrad(Optimizer):
    """Adagrad (``torch.optim.Adagrad`` with ``lr_decay=0``);
    its update is ``update_rule``.

    Every parameter's step shrinks with the total squared gradient it has seen so far.
    """

    name = "adagrad"
    update_rule = """\
s <- s + g^2                     s starts at initial_accumulator_value
w <- w - lr * g / (sqrt(s) + eps)"""

    def __init__(self, *, eps: float = 1e-10, initial_accumulator_value: float = 0.0) -> None:
        super().__init__()
        self.eps = check_number("eps", eps, 0.0, math.inf, low_open=True, high_open=True)
        self.initial_accumulator_value = check_number(
            "initial_accumulator_value", initial_accumulator_value, 0.0, math.inf, high_open=True
        )

    def _state_names(self) -> tuple[str, ...]:
        return ("sum_squares",)

    def _initial_state(self, variable: np.ndarray) -> dict[str, np.ndarray]:
        return {"sum_squares": np.full_like(variable, self.initial_accumulator_value)}

    def options(self) -> dict[str, float | bool]:
        return {"eps": self.eps, "initial_accumulator_value": self.initial_accumulator_value}

    def update_step(self, gradient: np.ndarray, variable: np.ndarray, learning_rate: float) -> None:
        step = self._begin_step()
        s = self.state["sum_squares"]
        np.square(gradient, out=step)
        s += step
        np.sqrt(s, out=step)
        step += self.eps
        np.divide(gradient, step, out=step)
        step *= float(learning_rate)
        variable -= step


class Adam(Optimizer):
    """Adam (``torch.optim.Adam``), optionally with AMSGrad;
    its update is ``update_rule``.

    The bias corrections undo the pull of the zero initial moments towards 0 in early steps.
    As in torch, ``eps`` is added after the square root and the correction of ``v``.
    """

    name = "adam"
    update_rule = """\
m <- beta1 * m + (1 - beta1) * g              first moment (mean of g)
v <- beta2 * v + (1 - beta2) * g^2            second moment (mean of g^2)
v_max <- max(v_max, v)                        amsgrad only; then v_max replaces v below
m_hat = m / (1 - beta1^t),  v_hat = v / (1 - beta2^t)     bias corrections
w <- w - lr * m_hat / (sqrt(v_hat) + eps)"""

    def __init__(
        self,
        *,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        amsgrad: bool = False,
    ) -> None:
        super().__init__()
        self.beta1 = check_number("beta1", beta1, 0.0, 1.0, high_open=True)
        self.beta2 = check_number("beta2", beta2, 0.0, 1.0, high_open=True)
        self.eps = check_number("eps", eps, 0.0, math.inf, low_open=True, high_open=True)
        self.amsgrad = check_bool("amsgrad", amsgrad)

    def _state_names(self) -> tuple[str, ...]:
        names = ("m", "v")
        if self.amsgrad:
            names += ("v_max",)
        return names

    def options(self) -> dict[str, float | bool]:
        return {"beta1": self.beta1, "beta2": self.beta2, "eps": self.eps, "amsgrad": self.amsgrad}

    def update_step(self, gradient: np.ndarray, variable: np.ndarray, learning_rate: float) -> None:
        step = self._begin_step()
        t = self.iterations
        m, v = self.state["m"], self.state["v"]
        # lr * m_hat / (sqrt(v_hat) + eps) with c1 = 1 - beta1^t, c2 = 1 - beta2^t is
        # step_size * m / (sqrt(v) + eps_t): the corrections fold into two scalars
        root_c2 = math.sqrt(1.0 - self.beta2**t)
        eps_t = self.eps * root_c2
        step_size = float(learning_rate) * root_c2 / (1.0 - self.beta1**t)
        fused = None if self.amsgrad else adam_kernel(variable, gradient, m, v)
        if fused is not None:  # the same arithmetic in one compiled pass (bpnn.nn.kernels)
            fused(variable, gradient, m, v, self.beta1, self.beta2, eps_t, step_size)
            return
        m *= self.beta1
        np.multiply(gradient, 1.0 - self.beta1, out=step)
        m += step
        v *= self.beta2
        np.square(gradient, out=step)
        step *= 1.0 - self.beta2
        v += step
        if self.amsgrad:
            v = np.maximum(self.state["v_max"], v, out=self.state["v_max"])
        np.sqrt(v, out=step)
        step += eps_t
        np.divide(m, step, out=step)
        step *= step_size
        variable -= step


class AdamW(Adam):
    """Adam with decoupled weight decay (``torch.optim.AdamW``);
    its update is ``update_rule``.

    The decay shrinks the weights directly instead of adding ``weight_decay * w`` to the
    gradient, so Adam's per-parameter scaling does not weaken it. It applies only to
    ``w[decay_slice]`` from ``build`` (the weight matrices; biases are not decayed).
    """

    name = "adamw"
    update_rule = """\
w[decay] <- w[decay] * (1 - lr * weight_decay)     before the Adam step
then the Adam update above on all of w"""

    def __init__(
        self,
        *,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        amsgrad: bool = False,
        weight_decay: float = 0.01,
    ) -> None:
        super().__init__(beta1=beta1, beta2=beta2, eps=eps, amsgrad=amsgrad)
        self.weight_decay = check_number(
            "weight_decay", weight_decay, 0.0, math.inf, high_open=True
        )

    def options(self) -> dict[str, float | bool]:
        return {**super().options(), "weight_decay": self.weight_decay}

    def update_step(self, gradient: np.ndarray, variable: np.ndarray, learning_rate: float) -> None:
        if self.weight_decay > 0:
            decayed = variable[self._decay_slice]
            decayed *= 1.0 - float(learning_rate) * self.weight_decay
        super().update_step(gradient, variable, learning_rate)


OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.name: cls for cls in (SGD, Momentum, Nesterov, RMSprop, Adagrad, Adam, AdamW)
}


def optimizer_option_names(name: str) -> tuple[str, ...]:
    """The option names the optimizer called ``name`` accepts (its keyword arguments)."""
    return keyword_options(lookup(OPTIMIZERS, "optimizer", name))


def make_optimizer(name: str, **options: float | bool) -> Optimizer:
    """The optimizer called ``name`` with its options (not the learning rate).

    Unknown names and unknown options raise ValueError listing the choices.
    """
    cls = lookup(OPTIMIZERS, "optimizer", name)
    check_option_names("optimizer", name, options, keyword_options(cls))
    return cls(**options)

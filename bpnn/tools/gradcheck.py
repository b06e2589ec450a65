"""Gradient checking: the hand-written backward pass against finite differences.

For every entry ``w_j`` of every parameter tensor the numerical derivative is the fourth-order
central difference (error ``O(h^4)``, so a step as large as ``1e-3`` is accurate in float64)::

    dL/dw_j ~ (-L(w + 2h e_j) + 8 L(w + h e_j) - 8 L(w - h e_j) + L(w - 2h e_j)) / (12 h)

compared with the analytic gradient through the relative error
``|analytic - numerical| / max(|analytic|, |numerical|, floor)``. The ``floor``,
``1e-6 * max(1, |L|)``, sits above the roundoff of the differences (about ``1e-16 |L| / h``): it
keeps entries whose true gradient is exactly zero (a dead ReLU, a shift that batch norm
removes) from dividing noise by noise.

Following CS231n's advice, a difference step that moves any unit across a kink (ReLU, leaky ReLU
and ELU at ``z = 0``; MAE at ``a = y``; Huber at ``|a - y| = delta``) is not compared but counted
as skipped: the function is not differentiable between the two points.

The network is evaluated in ``CHECK`` mode: batch norm uses the batch statistics (the function
that training differentiates) without touching its running statistics, and dropout is off.
Nothing about the network is changed by a check.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from bpnn.data import load_dataset
from bpnn.loss_weights import resolve_loss_weights
from bpnn.model import build_network, make_seeds, set_initial_weights
from bpnn.nn.activations import (
    ACTIVATIONS,
    OUTPUT_ACTIVATIONS,
    make_activation,
    make_output_activation,
)
from bpnn.nn.initializers import xavier_normal
from bpnn.nn.layers import CHECK
from bpnn.nn.losses import LOSSES, make_loss, with_output
from bpnn.nn.network import Network

if TYPE_CHECKING:
    from bpnn.config import Config

DEFAULT_TOLERANCE = 1e-6
STEP = 1e-3
FLOOR = 1e-6  # relative to max(1, |loss|)


@dataclass(frozen=True)
class TensorCheck:
    """The result for one parameter tensor."""

    name: str
    shape: tuple[int, ...]
    max_relative_error: float
    worst_index: tuple[int, ...] | None
    checked: int
    skipped_at_kinks: int

    def passed(self, tolerance: float = DEFAULT_TOLERANCE) -> bool:
        return self.max_relative_error <= tolerance


def relative_error(analytic: np.ndarray, numerical: np.ndarray, floor: float = FLOOR) -> np.ndarray:
    """``|a - n| / max(|a|, |n|, floor)``, element-wise."""
    scale = np.maximum(np.maximum(np.abs(analytic), np.abs(numerical)), floor)
    return np.abs(analytic - numerical) / scale


def _loss_and_kinks(
    network: Network, X: np.ndarray, y: np.ndarray, l2: float
) -> tuple[float, np.ndarray]:
    loss = network.loss_and_gradients(X, y, l2=l2, mode=CHECK)
    kinks = [network.kink_pattern()]
    loss_kinks = network.loss.kink_pattern(network.last_output, y)
    if loss_kinks is not None:
        kinks.append(loss_kinks.ravel())
    return loss, np.concatenate(kinks)


def check_gradients(
    network: Network,
    X: np.ndarray,
    y: np.ndarray,
    *,
    l2: float = 0.0,
    step: float = STEP,
    max_entries: int | None = None,
    rng: np.random.Generator | None = None,
) -> list[TensorCheck]:
    """Compare ``network``'s analytic gradients on ``(X, y)`` with finite differences, tensor by
    tensor. ``max_entries`` checks a random sample of that many entries of larger tensors.
    The network's parameters are restored exactly afterwards."""
    if network.dtype != np.float64:
        raise ValueError(f"gradient checking needs a float64 network, got {network.dtype}")
    rng = rng or np.random.default_rng(0)
    original = network.params.copy()
    try:
        base_loss, base_kinks = _loss_and_kinks(network, X, y, l2)
        floor = FLOOR * max(1.0, abs(base_loss))
        analytic = {name: g.copy() for name, g in network.gradients().items()}
        results = []
        for name, param in network.parameters().items():
            flat = param.reshape(-1)  # a view into network.params
            indices = np.arange(flat.size)
            if max_entries is not None and flat.size > max_entries:
                indices = np.sort(rng.choice(flat.size, size=max_entries, replace=False))
            numerical = np.zeros(len(indices))
            usable = np.ones(len(indices), dtype=bool)
            for k, j in enumerate(indices):
                losses = []
                original_value = flat[j]
                for offset in (2 * step, step, -step, -2 * step):
                    flat[j] = original_value + offset
                    loss, kinks = _loss_and_kinks(network, X, y, l2)
                    flat[j] = original_value
                    losses.append(loss)
                    if not np.array_equal(kinks, base_kinks):
                        usable[k] = False
                numerical[k] = (-losses[0] + 8 * losses[1] - 8 * losses[2] + losses[3]) / (
                    12 * step
                )
            exact = analytic[name].reshape(-1)[indices]
            errors = np.where(usable, relative_error(exact, numerical, floor), 0.0)
            worst = int(np.argmax(errors)) if len(errors) else None
            results.append(
                TensorCheck(
                    name=name,
                    shape=tuple(param.shape),
                    max_relative_error=float(errors[worst]) if worst is not None else 0.0,
                    worst_index=None
                    if worst is None
                    else tuple(int(i) for i in np.unravel_index(indices[worst], param.shape)),
                    checked=int(usable.sum()),
                    skipped_at_kinks=int((~usable).sum()),
                )
            )
        return results
    finally:
        network.params[...] = original
        network.loss_and_gradients(X, y, l2=l2, mode=CHECK)  # leave grads as they were computed


@dataclass(frozen=True)
class PairingCheck:
    """The result of one network in the self-test grid."""

    label: str
    tensors: list[TensorCheck]

    @property
    def worst(self) -> TensorCheck:
        return max(self.tensors, key=lambda t: t.max_relative_error)


def _random_targets(task: str, rng: np.random.Generator, n: int, classes: int) -> np.ndarray:
    if task == "multiclass":
        return rng.permutation(np.arange(n) % classes)
    if task == "binary":
        return rng.permutation(np.arange(n) % 2)
    if task == "multilabel":
        return rng.integers(0, 2, size=(n, 2))
    return rng.normal(size=(n, 2))


@dataclass(frozen=True)
class _Variant:
    """One network of the self-test grid."""

    activation: str
    loss: str
    network_options: dict = field(default_factory=dict)
    loss_options: dict = field(default_factory=dict)
    l2: float = 0.0
    output: str | None = None  # None: the loss's own output activation (the fused gradient)
    one_hot: bool = False
    multi_label: bool = False  # several 0/1 target columns (binary cross-entropy)

    @property
    def label(self) -> str:
        extras = [f"{k}={v}" for k, v in {**self.network_options, **self.loss_options}.items()]
        if self.output is not None:
            extras.append(f"output={self.output}")
        if self.one_hot:
            extras.append("one_hot")
        if self.multi_label:
            extras.append("multi_label")
        if self.l2:
            extras.append(f"l2={self.l2}")
        return f"{self.activation} x {self.loss}" + (f" ({', '.join(extras)})" if extras else "")


def _variants() -> list[_Variant]:
    """Every hidden activation x loss; every output activation x loss the loss accepts (the
    fused pairs and the general chain rule), on one-hot targets too (binary cross-entropy's
    fused a - t on one-hot rows and on several 0/1 columns); every reduction; batch norm,
    dropout, L2 and the loss options."""
    variants: list[_Variant] = []
    for loss_name, loss_class in LOSSES.items():
        for activation in ACTIVATIONS:
            variants.append(_Variant(activation, loss_name))
        variants.append(_Variant("tanh", loss_name, {"batch_norm": True}))
        variants.append(_Variant("relu", loss_name, {"batch_norm": True}))
        variants.append(_Variant("sigmoid", loss_name, {"dropout": [0.5, 0.5]}))
        variants.append(_Variant("tanh", loss_name, l2=0.01))
        variants.append(_Variant("tanh", loss_name, loss_options={"reduction": "sum"}))
        variants.append(_Variant("tanh", loss_name, loss_options={"reduction": "half_sum"}))
        if loss_class.task == "regression":
            for output in OUTPUT_ACTIVATIONS:
                variants.append(_Variant("tanh", loss_name, output=output))
            for output in ("identity", "sigmoid", "softmax"):
                variants.append(_Variant("tanh", loss_name, output=output, one_hot=True))
            variants.append(
                _Variant(
                    "sigmoid",
                    loss_name,
                    loss_options={"reduction": "sum"},
                    output="sigmoid",
                    one_hot=True,
                )
            )
        else:
            variants.append(_Variant("tanh", loss_name, output=loss_class.output_activation))
    for reduction in ("mean", "half_sum"):
        options = {"reduction": reduction}
        variants.append(
            _Variant("sigmoid", "binary_cross_entropy", loss_options=options, one_hot=True)
        )
        variants.append(
            _Variant("tanh", "binary_cross_entropy", loss_options=options, multi_label=True)
        )
    variants.append(_Variant("tanh", "cross_entropy", loss_options={"label_smoothing": 0.1}))
    variants.append(
        _Variant("tanh", "cross_entropy", loss_options={"class_weights": [1.0, 2.0, 0.5]})
    )
    variants.append(
        _Variant(
            "tanh",
            "binary_cross_entropy",
            loss_options={"pos_weight": [2.5, 0.5]},
            multi_label=True,
        )
    )
    variants.append(_Variant("leaky_relu", "huber", loss_options={"delta": 0.5}))
    return variants


def self_test(seed: int = 0, samples: int = 8) -> list[PairingCheck]:
    """Gradient checks over every activation x loss pairing and every output activation x loss
    pairing on small random float64 networks, plus one-hot and multi-label targets, the sum
    and half-sum reductions, batch norm, dropout (off, as in evaluation), L2 and the
    cross-entropy options."""
    results = []
    for variant in _variants():
        rng = np.random.default_rng(seed)
        output = None if variant.output is None else make_output_activation(variant.output)
        loss = with_output(
            make_loss(variant.loss, **variant.loss_options),
            output,
            one_hot=variant.one_hot,
            multi_label=variant.multi_label,
        )
        n_outputs = loss.output_size(3, 2)
        network = Network(
            [5, 4, 3, n_outputs],
            [make_activation(variant.activation)] * 2,
            loss,
            weight_init=xavier_normal,
            rng=rng,
            dtype=np.float64,
            **variant.network_options,
        )
        # non-zero biases and batch-norm parameters, so every term of the backward pass matters
        network.params[network.weight_slice.stop :] = rng.normal(
            0, 0.5, network.params.size - network.weight_slice.stop
        )
        X = rng.normal(size=(samples, 5))
        y = _random_targets(loss.task, rng, samples, 3)
        results.append(PairingCheck(variant.label, check_gradients(network, X, y, l2=variant.l2)))
    return results


def check_config(
    config: Config,
    *,
    samples: int = 8,
    max_entries: int | None = 500,
    log: Callable[[str], None] | None = None,
) -> list[TensorCheck]:
    """Check the network of ``config`` at its initial weights (the ones training starts from),
    in float64, on the first ``samples`` samples of its training split. Weight decay of a
    non-decoupled optimizer is included as the L2 term it adds to loss and gradient."""
    data = load_dataset(config.data, task=config.task, seed=config.seed, dtype=np.float64, log=log)
    init_rng, _ = make_seeds(config.seed)
    n_targets = data.y_train.shape[1] if data.y_train.ndim == 2 else 1
    config = resolve_loss_weights(config, data.y_train, data.classes)
    network = build_network(
        config, data.n_features, data.classes, n_targets, init_rng, dtype=np.float64
    )
    if config.model.initial_weights is not None:
        set_initial_weights(network, config.model.initial_weights)
    l2 = config.l2_penalty()
    X, y = data.X_train[:samples], data.y_train[:samples]
    return check_gradients(
        network, X, y, l2=l2, max_entries=max_entries, rng=np.random.default_rng(config.seed)
    )


def verdict(checked: Sequence[tuple[str | None, Any]], tol: float) -> tuple[bool, str | None, Any]:
    """Whether a gradient check passed, and its worst tensor with the label of its network:
    ``checked`` is ``(label, TensorCheck)`` pairs. A relative error that is NaN or infinite
    (a gradient that overflowed) is the worst of all and fails, whatever ``tol`` is."""

    def badness(item: tuple[str | None, Any]) -> float:
        error = item[1].max_relative_error
        return error if math.isfinite(error) else math.inf

    worst_label, worst = max(checked, key=badness)
    error = worst.max_relative_error
    return math.isfinite(error) and error <= tol, worst_label, worst


@dataclass(frozen=True)
class GradientReport:
    """A whole gradient check: every ``(network label, TensorCheck)`` checked (the label is
    None for a config's one network), the tolerance, and the verdict (``verdict``)."""

    checked: list[tuple[str | None, TensorCheck]]
    tolerance: float

    @property
    def labelled(self) -> bool:
        """Whether the check covered several labelled networks (the self-test)."""
        return self.checked[0][0] is not None

    @property
    def passed(self) -> bool:
        return verdict(self.checked, self.tolerance)[0]

    def summary(self) -> str:
        """``passed: worst W 1.2e-09 (tolerance 1e-06)``, or ``FAILED: ... at index (i, j)``."""
        passed, worst_label, worst = verdict(self.checked, self.tolerance)
        where = f"{worst_label}: " if worst_label else ""
        line = (
            f"{'passed' if passed else 'FAILED'}: worst {where}{worst.name} "
            f"{worst.max_relative_error:.2e} (tolerance {self.tolerance:g})"
        )
        return line if passed else f"{line} at index {worst.worst_index}"

    def as_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "tolerance": self.tolerance,
            "tensors": [
                {
                    "network": label,
                    "tensor": t.name,
                    "shape": list(t.shape),
                    "max_relative_error": t.max_relative_error,
                    "checked": t.checked,
                    "skipped_at_kinks": t.skipped_at_kinks,
                }
                for label, t in self.checked
            ],
        }


def gradient_check(
    config: Config | None = None,
    *,
    samples: int = 8,
    max_entries: int | None = 500,
    tolerance: float = DEFAULT_TOLERANCE,
    log: Callable[[str], None] | None = None,
) -> GradientReport:
    """``check_config`` of ``config``, or without one the ``self_test`` of every activation x
    loss pairing, as one report."""
    if config is None:
        checked = [(pairing.label, t) for pairing in self_test() for t in pairing.tensors]
    else:
        tensors = check_config(config, samples=samples, max_entries=max_entries, log=log)
        checked = [(None, t) for t in tensors]
    return GradientReport(checked, tolerance)

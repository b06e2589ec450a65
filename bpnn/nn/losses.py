"""Loss functions, each tied to the output activation it is canonical for.

The network's last layer produces the pre-activation ``z`` (shape ``(batch, outputs)``); the loss
owns the output activation ``a = output(z)`` (softmax, sigmoid or identity) and gives

- ``value(z, a, y)``: the loss averaged over the batch (``mse``, ``mae`` and ``huber``: over
  every element, as PyTorch's and Keras' default ``mean`` reduction does), or summed over it
  with ``reduction="sum"`` (PyTorch's ``reduction="sum"``), or half that sum with
  ``reduction="half_sum"`` (the textbooks' ``E = 1/2 sum_samples sum_outputs (a - t)^2``, whose
  gradient is ``a - t``), and
- ``gradient(z, a, y)``: ``dL/dz``, the gradient with respect to the *pre-activation*, already
  divided by the same count as the value. For the canonical pairs this is the fused
  ``(a - y) / n``: the softmax Jacobian and the ``1/a`` of the log cancel, which is both exact and
  numerically stable.

Any other output activation of a regression loss, and one-hot class targets, go through
``ChainRule``: ``a = g(z)``, ``dL/dz = dL/da * g'(z)`` (``with_output`` picks the one that
applies). The regression losses' ``gradient`` is their ``dL/da``: their own output is the
identity, whose ``g'`` is 1.

Targets ``y``: class indices (int, shape ``(batch,)``) for ``cross_entropy`` and
``binary_cross_entropy`` (which also reads several 0/1 columns, ``(batch, outputs)``, and one-hot
rows of class indices); real values of shape ``(batch, outputs)`` for the regression losses.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np

from bpnn.nn.activations import Activation, Identity, softmax, stable_sigmoid
from bpnn.nn.formula import Formula
from bpnn.nn.options import lookup

Task = Literal["multiclass", "binary", "multilabel", "regression"]
#: a weight per sample of the batch, shape ``(batch,)`` (a table's ``data.weight`` column), or
#: None: every sample weighs 1. A weighted loss is ``sum_i w_i l_i / sum_i w_i`` (the mean)
Weights = np.ndarray | None
Reduction = Literal["mean", "sum", "half_sum"]
REDUCTIONS: tuple[str, ...] = ("mean", "sum", "half_sum")

__all__ = ["softmax"]  # re-exported: the softmax the cross-entropy uses


class Loss:
    """A loss and its output activation. Sets set ``name``, ``task``, ``output_activation``.

    ``reduction``: ``mean`` divides the loss and its gradient by the count of the batch (samples,
    or elements for the regression losses); ``sum`` does not, so the gradient is the sum of the
    per-sample gradients; ``half_sum`` divides by 2 instead: with squared error that is the
    textbooks' ``E = 1/2 sum_p sum_k (a_pk - t_pk)^2``, its gradient ``a - t``."""

    name: ClassVar[str]
    task: ClassVar[Task]
    output_activation: ClassVar[str]
    #: the loss of one term as text and LaTeX (``bpnn explain`` adds the reduction over them),
    #: and whether there is a term per sample (cross-entropy) or per element, sample x output
    term: ClassVar[Formula]
    per_sample: ClassVar[bool] = False
    #: ``dL/da`` of one element before the reduction's division, for the losses whose output
    #: delta is the general chain rule ``dL/da * g'(z)`` (the regression losses)
    output_gradient_formula: ClassVar[Formula | None] = None
    #: a weighting rule given as a rule (``balanced``, a mapping of labels) that needs the
    #: training labels to become numbers; None when the loss can train as it is
    unresolved_weights: object | None = None

    def __init__(self, reduction: Reduction = "mean") -> None:
        if reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {', '.join(REDUCTIONS)}, got {reduction!r}")
        self.reduction = reduction

    def _count(self, count: int) -> int:
        """What the loss and its gradient divide by: the batch's ``count`` (mean), 1 (sum) or
        2 (half_sum)."""
        return {"mean": count, "sum": 1, "half_sum": 2}[self.reduction]

    def _reduce(self, values: np.ndarray, weights: Weights = None) -> float:
        """The mean (``sum``: the sum, ``half_sum``: half the sum) of per-element losses
        ``values`` (a row per sample); with a weight ``w_i`` per sample, the weighted mean
        ``sum_i w_i sum_k v_ik / (k sum_i w_i)`` (the weighted sum)."""
        if weights is None:
            if self.reduction == "mean":
                return float(np.mean(values))
            return float(np.sum(values)) / self._count(values.size)
        w = np.asarray(weights, dtype=values.dtype).reshape(-1, *([1] * (values.ndim - 1)))
        total = float(np.sum(w * values))
        if self.reduction == "mean":
            return total / (float(np.sum(weights)) * (values.size // max(len(values), 1)))
        return total / self._count(values.size)

    def _weigh(self, gradient: np.ndarray, weights: Weights) -> np.ndarray:
        """The gradient of the weighted loss from the unweighted one (already divided by the
        count ``n k``): ``w_i n / sum_i w_i`` times it for the mean, ``w_i`` times it for the
        sums."""
        if weights is None:
            return gradient
        w = np.asarray(weights, dtype=gradient.dtype).reshape(-1, 1)
        if self.reduction == "mean":
            return gradient * (w * (len(w) / float(np.sum(weights))))
        return gradient * w

    def output(self, z: np.ndarray) -> np.ndarray:
        """The network's prediction ``a`` from the last pre-activation ``z``."""
        raise NotImplementedError

    def value(self, z: np.ndarray, a: np.ndarray, y: np.ndarray, weights: Weights = None) -> float:
        raise NotImplementedError

    def output_and_value(
        self, z: np.ndarray, y: np.ndarray, weights: Weights = None
    ) -> tuple[np.ndarray, float]:
        """``output(z)`` and ``value(z, a, y)`` together (a loss may share work between them)."""
        a = self.output(z)
        return a, self.value(z, a, y, weights)

    def gradient(
        self, z: np.ndarray, a: np.ndarray, y: np.ndarray, weights: Weights = None
    ) -> np.ndarray:
        raise NotImplementedError

    def options(self) -> dict[str, object]:
        return {"reduction": self.reduction}

    def batch_weight(self, y: np.ndarray, weights: Weights = None) -> float:
        """What ``value`` averages over for targets ``y`` (their count, or the sum of their
        ``weights``; for a class-weighted cross-entropy the sum of their class weights): the
        weight to combine batch losses with."""
        return float(len(y)) if weights is None else float(np.sum(weights))

    def batch_total(self, value: float, y: np.ndarray, weights: Weights = None) -> float:
        """The batch's ``value`` as a sum over its samples, to add up batches with: ``value *
        batch_weight(y)`` for the mean, ``value`` itself for the sum. A data set's loss is the
        total over its batches divided by the total ``batch_weight``: the mean per sample."""
        return value * self.batch_weight(y, weights) if self.reduction == "mean" else value

    def kink_pattern(self, a: np.ndarray, y: np.ndarray) -> np.ndarray | None:
        """Which side of a non-differentiable point each element is on (None: smooth loss).
        Gradient checking skips a difference step that changes this pattern."""
        return None

    def output_size(self, n_classes: int | None, n_targets: int) -> int:
        """Units of the output layer: one per class, one for binary, one per regression target."""
        return n_targets


#: class weights as a config writes them: one per class in class order, ``balanced`` (scikit-learn's
#: ``n_samples / (n_classes * count)``) or a mapping of class labels to weights (1 for a class
#: it leaves out); the last two are turned into the list by the data layer
ClassWeights = list[float] | dict[str, float] | Literal["balanced"]


def check_weights(option: str, value: object) -> object | None:
    """``value`` when it is a rule (``balanced``, a mapping) still to resolve, None when it is
    no weights or resolved ones; a ``ValueError`` naming ``option`` for a weight that is not
    positive."""
    if value is None:
        return None
    numbers = value.values() if isinstance(value, dict) else value
    if isinstance(numbers, str):
        if numbers != "balanced":
            raise ValueError(f"{option} must be 'balanced', a weight or a list of weights")
        return value
    numbers = [numbers] if isinstance(numbers, int | float) else list(numbers)
    if any(not w > 0 for w in numbers):
        raise ValueError(f"{option} must all be positive, got {value}")
    return value if isinstance(value, dict) else None


def refuse_unresolved(option: str, rule: object | None) -> None:
    """A loss cannot train on ``balanced`` or a mapping of labels, only on the numbers they
    give for a data set."""
    if rule is not None:
        raise ValueError(f"{option} {rule!r} must be resolved against the training labels first")


class CrossEntropy(Loss):
    """Softmax cross-entropy over ``K`` classes, optionally label-smoothed and class-weighted.

    With the target distribution ``t = (1 - eps) onehot(y) + eps / K`` and the per-sample weight
    ``s_i = w[y_i]`` (all ones without ``class_weights``)::

        L     = sum_i s_i * (-sum_k t_ik log a_ik) / sum_i s_i
        dL/dz = s_i (a_i - t_i) / sum_i s_i

    Without smoothing and weights this is ``mean_i(-log a_{i,y_i})`` and ``(a - onehot(y)) / n``.
    With ``reduction="sum"`` the division by ``sum_i s_i`` is left out (``half_sum``: a division
    by 2 instead).
    """

    name = "cross_entropy"
    term = Formula("-log a_i,y_i", r"-\log a_{i, y_i}")
    per_sample = True
    task = "multiclass"
    output_activation = "softmax"

    def __init__(
        self,
        label_smoothing: float = 0.0,
        class_weights: ClassWeights | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(reduction)
        if not 0 <= label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = float(label_smoothing)
        #: ``balanced`` or a mapping by class label: the weights the data gives them, which the
        #: loss is built with (``bpnn.model.resolve_loss_weights``); training needs the list
        self.unresolved_weights = check_weights("class_weights", class_weights)
        self.class_weights = (
            [float(w) for w in class_weights] if isinstance(class_weights, list) else None
        )

    def output_size(self, n_classes: int | None, n_targets: int) -> int:
        assert n_classes is not None
        refuse_unresolved("class_weights", self.unresolved_weights)
        if self.class_weights is not None and len(self.class_weights) != n_classes:
            raise ValueError(
                f"class_weights has {len(self.class_weights)} entries "
                f"but the data has {n_classes} classes"
            )
        return n_classes

    def _sample_weights(self, y: np.ndarray, dtype: np.dtype, weights: Weights) -> Weights:
        """``s_i``: the class weight of each sample times its own weight (None: all 1)."""
        if self.class_weights is None:
            return None if weights is None else np.asarray(weights, dtype=dtype)
        s = np.asarray(self.class_weights, dtype=dtype)[y]
        return s if weights is None else s * np.asarray(weights, dtype=dtype)

    def output(self, z: np.ndarray) -> np.ndarray:
        return softmax(z)

    def batch_weight(self, y: np.ndarray, weights: Weights = None) -> float:
        s = self._sample_weights(y, np.dtype(np.float64), weights)
        return float(len(y)) if s is None else float(s.sum())

    def value(self, z: np.ndarray, a: np.ndarray, y: np.ndarray, weights: Weights = None) -> float:
        return self.output_and_value(z, y, weights)[1]

    def output_and_value(
        self, z: np.ndarray, y: np.ndarray, weights: Weights = None
    ) -> tuple[np.ndarray, float]:
        # the softmax's exponentials and their sums serve the loss too
        shifted = z - z.max(axis=1, keepdims=True)
        a = np.exp(shifted)
        sums = a.sum(axis=1)
        a /= sums[:, None]
        return a, self._mean(shifted, np.log(sums), y, weights)

    def _mean(
        self, shifted: np.ndarray, log_sums: np.ndarray, y: np.ndarray, weights: Weights = None
    ) -> float:
        """The loss from ``shifted = z - max(z)`` and ``log_sums = log sum_k exp(shifted_k)``:
        with ``log a_ik = shifted_ik - log_sums_i``, ``-sum_k t_ik log a_ik`` is
        ``log_sums_i - (1 - eps) shifted_{i,y_i} - eps / K sum_k shifted_ik``."""
        eps = self.label_smoothing
        per_sample = log_sums - (1 - eps) * shifted[np.arange(len(y)), y]
        if eps:
            per_sample -= eps / shifted.shape[1] * shifted.sum(axis=1)
        s = self._sample_weights(y, shifted.dtype, weights)
        if s is None:
            return self._reduce(per_sample)
        if self.reduction == "mean":
            return float((s * per_sample).sum() / s.sum())
        return float((s * per_sample).sum()) / self._count(len(y))

    def gradient(
        self, z: np.ndarray, a: np.ndarray, y: np.ndarray, weights: Weights = None
    ) -> np.ndarray:
        # a - t, with t = (1 - eps) onehot(y) + eps / K subtracted in two parts
        eps = self.label_smoothing
        delta = a - eps / z.shape[1] if eps else a.copy()
        delta[np.arange(len(y)), y] -= 1 - eps
        s = self._sample_weights(y, z.dtype, weights)
        if s is None:
            if self.reduction != "sum":
                delta /= self._count(len(y))
        else:
            delta *= (s / s.sum() if self.reduction == "mean" else s / self._count(len(y)))[:, None]
        return delta

    def options(self) -> dict[str, object]:
        return {
            "label_smoothing": self.label_smoothing,
            "class_weights": self.class_weights,
            **super().options(),
        }


class BinaryCrossEntropy(Loss):
    """Sigmoid cross-entropy of every output, computed from the logits ``z`` (PyTorch's
    ``BCEWithLogitsLoss``), with ``t`` the targets as 0/1 columns::

    L     = mean over all n k elements of max(z, 0) - z t + log(1 + e^-|z|)
                                                  (= -t log a - (1 - t) log(1 - a))
    dL/dz = (a - t) / (n k)

    With ``pos_weight`` ``w`` (one number, or one per output; PyTorch's ``pos_weight``) the
    positive term weighs ``w`` times: ``-(w t log a + (1 - t) log(1 - a))`` and
    ``dL/dz = (a (w t + 1 - t) - w t) / (n k)``, which is ``(a - t) / (n k)`` again at ``w = 1``.

    The targets ``y``: class indices 0/1 (shape ``(batch,)``) for one output, the ``binary``
    task; several 0/1 columns (``(batch, k)``, ``multilabel``: each output a yes/no of its own);
    or, ``one_hot``, class indices ``0 .. K-1`` read as one-hot rows of ``K`` sigmoid outputs
    (``multiclass``). Every case takes the fused ``a - t``.
    """

    name = "binary_cross_entropy"
    term = Formula("-(t log a + (1 - t) log(1 - a))", r"-\big(t \log a + (1 - t) \log(1 - a)\big)")
    task = "binary"
    output_activation = "sigmoid"

    def __init__(
        self,
        pos_weight: float | list[float] | Literal["balanced"] | None = None,
        reduction: Reduction = "mean",
    ) -> None:
        super().__init__(reduction)
        self.one_hot = False
        #: ``balanced``: ``count(t = 0) / count(t = 1)`` of each output's training targets,
        #: turned into numbers by the data layer (``bpnn.model.resolve_loss_weights``)
        self.unresolved_weights = check_weights("pos_weight", pos_weight)
        self.pos_weight: float | list[float] | None = (
            None if self.unresolved_weights is not None or pos_weight is None else pos_weight
        )

    def reading(self, *, one_hot: bool = False, multi_label: bool = False) -> BinaryCrossEntropy:
        """This loss reading one-hot rows of class indices (``one_hot``, the ``multiclass``
        task), or several 0/1 target columns (``multi_label``, the ``multilabel`` task)."""
        if one_hot and multi_label:
            raise ValueError("one-hot targets are class indices, not several target columns")
        self.one_hot = one_hot
        if one_hot or multi_label:
            self.task = "multiclass" if one_hot else "multilabel"  # type: ignore[misc]
        return self

    def output_size(self, n_classes: int | None, n_targets: int) -> int:
        """One output for the binary task, one per class (one-hot), one per target column
        (multi-label)."""
        refuse_unresolved("pos_weight", self.unresolved_weights)
        if self.one_hot:
            assert n_classes is not None
            size = n_classes
        else:
            size = n_targets if self.task == "multilabel" else 1
        if isinstance(self.pos_weight, list) and len(self.pos_weight) != size:
            raise ValueError(
                f"pos_weight has {len(self.pos_weight)} entries but the network has {size} outputs"
            )
        return size

    def _positive(self, dtype: np.dtype) -> np.ndarray | None:
        """``pos_weight`` as a row that multiplies every output's positive term."""
        if self.pos_weight is None:
            return None
        return np.asarray(self.pos_weight, dtype=dtype).reshape(1, -1)

    def targets(self, y: np.ndarray, z: np.ndarray) -> np.ndarray:
        """``t`` as 0/1 columns in the dtype of ``z``, shape ``(batch, outputs)``."""
        if self.one_hot:
            return np.eye(z.shape[1], dtype=z.dtype)[np.asarray(y, dtype=np.int64)]
        return y.reshape(len(y), -1).astype(z.dtype, copy=False)

    def output(self, z: np.ndarray) -> np.ndarray:
        return stable_sigmoid(z)

    def value(self, z: np.ndarray, a: np.ndarray, y: np.ndarray, weights: Weights = None) -> float:
        t = self.targets(y, z)
        softplus = np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))  # -log(1 - a)
        w = self._positive(z.dtype)
        if w is None:
            return self._reduce(softplus - z * t, weights)
        # -(w t log a + (1 - t) log(1 - a)), with -log a = softplus - z
        return self._reduce(w * t * (softplus - z) + (1 - t) * softplus, weights)

    def gradient(
        self, z: np.ndarray, a: np.ndarray, y: np.ndarray, weights: Weights = None
    ) -> np.ndarray:
        t = self.targets(y, z)
        w = self._positive(z.dtype)
        if w is None:
            return self._weigh((a - t) / self._count(a.size), weights)
        # dL/dz = a (w t + 1 - t) - w t: a - t when w = 1
        return self._weigh((a * (w * t + 1 - t) - w * t) / self._count(a.size), weights)

    def options(self) -> dict[str, object]:
        return {"pos_weight": self.pos_weight, **super().options()}


class MeanSquaredError(Loss):
    """``L = mean over all n*k elements of (a - y)^2``; ``dL/dz = 2 (a - y) / (n k)``.

    ``sum``: ``L = sum (a - y)^2``, ``dL/dz = 2 (a - y)``; ``half_sum``: the textbooks'
    ``E = 1/2 sum (a - y)^2`` over samples and outputs, ``dE/dz = a - y``."""

    name = "mse"
    term = Formula("(a - t)^2", "(a - t)^2")
    output_gradient_formula = Formula("2 (a - t)", "2 (a - t)")
    task = "regression"
    output_activation = "identity"

    def output(self, z: np.ndarray) -> np.ndarray:
        return z

    def value(self, z: np.ndarray, a: np.ndarray, y: np.ndarray, weights: Weights = None) -> float:
        r = a - y
        return self._reduce(r * r, weights)

    def gradient(
        self, z: np.ndarray, a: np.ndarray, y: np.ndarray, weights: Weights = None
    ) -> np.ndarray:
        return self._weigh(2 * (a - y) / self._count(a.size), weights)


class MeanAbsoluteError(Loss):
    """``L = mean |a - y|``; ``dL/dz = sign(a - y) / (n k)`` (0 at a = y, as PyTorch)."""

    name = "mae"
    term = Formula("|a - t|", "|a - t|")
    output_gradient_formula = Formula("sign(a - t)", r"\operatorname{sign}(a - t)")
    task = "regression"
    output_activation = "identity"

    def output(self, z: np.ndarray) -> np.ndarray:
        return z

    def value(self, z: np.ndarray, a: np.ndarray, y: np.ndarray, weights: Weights = None) -> float:
        return self._reduce(np.abs(a - y), weights)

    def gradient(
        self, z: np.ndarray, a: np.ndarray, y: np.ndarray, weights: Weights = None
    ) -> np.ndarray:
        return self._weigh(np.sign(a - y) / self._count(a.size), weights)

    def kink_pattern(self, a: np.ndarray, y: np.ndarray) -> np.ndarray | None:
        return a > y


class Huber(Loss):
    """Huber loss with threshold ``delta`` (PyTorch's ``HuberLoss``), ``r = a - y``::

    L     = mean( 0.5 r^2            if |r| <= delta
                  delta (|r| - delta/2) otherwise )
    dL/dz = clip(r, -delta, delta) / (n k)
    """

    name = "huber"
    term = Formula("0.5 r^2 (|r| <= delta) or delta (|r| - delta/2), r = a - t", r"h_\delta(a - t)")
    output_gradient_formula = Formula(
        "clip(a - t, -delta, delta)", r"\operatorname{clip}(a - t, -\delta, \delta)"
    )
    task = "regression"
    output_activation = "identity"

    def __init__(self, delta: float = 1.0, reduction: Reduction = "mean") -> None:
        super().__init__(reduction)
        if not delta > 0:
            raise ValueError(f"delta must be positive, got {delta}")
        self.delta = float(delta)

    def output(self, z: np.ndarray) -> np.ndarray:
        return z

    def value(self, z: np.ndarray, a: np.ndarray, y: np.ndarray, weights: Weights = None) -> float:
        r = np.abs(a - y)
        quadratic = np.minimum(r, self.delta)
        return self._reduce(0.5 * quadratic**2 + self.delta * (r - quadratic), weights)

    def gradient(
        self, z: np.ndarray, a: np.ndarray, y: np.ndarray, weights: Weights = None
    ) -> np.ndarray:
        return self._weigh(np.clip(a - y, -self.delta, self.delta) / self._count(a.size), weights)

    def kink_pattern(self, a: np.ndarray, y: np.ndarray) -> np.ndarray | None:
        return np.abs(a - y) <= self.delta

    def options(self) -> dict[str, object]:
        return {"delta": self.delta, **super().options()}


LOSSES: dict[str, type[Loss]] = {
    cls.name: cls
    for cls in (CrossEntropy, BinaryCrossEntropy, MeanSquaredError, MeanAbsoluteError, Huber)
}


def make_loss(name: str, **options: object) -> Loss:
    """The loss called ``name`` with its options; unknown names list the choices."""
    return lookup(LOSSES, "loss", name)(**options)  # type: ignore[arg-type]


class ChainRule(Loss):
    """A regression loss (``mse``, ``mae``, ``huber``) on the outputs of any activation ``g``,
    its targets optionally one-hot rows of class indices. Forward and backward::

        a = g(z),   t = onehot(y) (one_hot) or y,   L = loss(a, t)
        dL/dz = dL/da * g'(z)                          element-wise g (sigmoid, tanh, ...)
        dL/dz = a * (dL/da - sum_k a_k dL/da_k)        softmax (its Jacobian's product)

    With ``one_hot`` the targets are class indices, the task is ``multiclass`` and the output
    has one unit per class: squared error on sigmoid outputs, the textbook classifier.
    """

    def __init__(self, loss: Loss, activation: Activation, *, one_hot: bool = False) -> None:
        if loss.task != "regression":
            raise ValueError(
                f"{loss.name} needs {loss.output_activation} outputs (probabilities), "
                f"not {activation.name}"
            )
        super().__init__(loss.reduction)
        self.base, self.activation, self.one_hot = loss, activation, one_hot
        self.name = loss.name  # type: ignore[misc]
        self.task = "multiclass" if one_hot else loss.task  # type: ignore[misc]
        self.output_activation = activation.name  # type: ignore[misc]

    def targets(self, y: np.ndarray, a: np.ndarray) -> np.ndarray:
        """``t``: the one-hot rows of class indices ``y`` (``one_hot``), else ``y`` itself."""
        if not self.one_hot:
            return y
        return np.eye(a.shape[1], dtype=a.dtype)[np.asarray(y, dtype=np.int64)]

    def output(self, z: np.ndarray) -> np.ndarray:
        return self.activation.forward(z)

    def value(self, z: np.ndarray, a: np.ndarray, y: np.ndarray, weights: Weights = None) -> float:
        return self.base.value(a, a, self.targets(y, a), weights)

    def output_gradient(self, a: np.ndarray, y: np.ndarray, weights: Weights = None) -> np.ndarray:
        """``dL/da``: the regression loss's own gradient (its output is the identity)."""
        return self.base.gradient(a, a, self.targets(y, a), weights)

    def gradient(
        self, z: np.ndarray, a: np.ndarray, y: np.ndarray, weights: Weights = None
    ) -> np.ndarray:
        return self.activation.backward(z, a, self.output_gradient(a, y, weights))

    def batch_weight(self, y: np.ndarray, weights: Weights = None) -> float:
        return self.base.batch_weight(y, weights)

    def batch_total(self, value: float, y: np.ndarray, weights: Weights = None) -> float:
        return self.base.batch_total(value, y, weights)

    def kink_pattern(self, a: np.ndarray, y: np.ndarray) -> np.ndarray | None:
        """The loss's kinks, and the output activation's: relu, leaky relu and elu have theirs
        at ``z = 0``, where ``a`` changes sign."""
        kinks = [self.base.kink_pattern(a, self.targets(y, a))]
        if self.activation.has_kink:
            kinks.append(a > 0)
        kinks = [k.ravel() for k in kinks if k is not None]
        return np.concatenate(kinks) if kinks else None

    def output_size(self, n_classes: int | None, n_targets: int) -> int:
        if self.one_hot:
            assert n_classes is not None
            return n_classes
        return self.base.output_size(n_classes, n_targets)

    def options(self) -> dict[str, object]:
        return self.base.options()


def with_output(
    loss: Loss,
    output: Activation | None = None,
    *,
    one_hot: bool = False,
    multi_label: bool = False,
) -> Loss:
    """``loss`` with the output activation ``output`` (None: the loss's own) on class indices
    turned into one-hot rows (``one_hot``), or on several 0/1 target columns (``multi_label``,
    binary cross-entropy only). The loss itself, with its fused gradient, when the output is its
    own and it reads the targets itself (binary cross-entropy reads one-hot rows and several
    columns too); else a ``ChainRule``. Cross-entropy losses take only their own output (the
    log loss needs probabilities): a ``ValueError``."""
    own_output = output is None or output.name == loss.output_activation
    if isinstance(loss, BinaryCrossEntropy) and own_output:
        return loss.reading(one_hot=one_hot, multi_label=multi_label)
    if multi_label:
        raise ValueError(f"{loss.name} does not read several 0/1 target columns")
    if own_output and not one_hot:
        return loss
    if loss.task != "regression":
        if one_hot:
            raise ValueError(
                f"{loss.name} reads class indices as they are; one-hot targets are for "
                "binary_cross_entropy and the regression losses"
            )
        assert output is not None
        return ChainRule(loss, output)  # raises: names the output the loss needs
    return ChainRule(loss, output or Identity(), one_hot=one_hot)

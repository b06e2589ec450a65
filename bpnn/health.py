"""Gradient and activation health: per-layer numbers every epoch, and the diagnoses they support.

For every dense layer ``l`` (``"0"`` is the first, the last is the output layer) each epoch's
logs gain ``logs["health"][str(l)]`` with:

``grad_norm``
    the mean of ``||dL/dW_l||`` over ``NORM_BATCHES`` (16) evenly spaced batches of the epoch
    (every batch when there are fewer), the weight matrix's gradient as the optimizer received
    it: after clipping, with the L2 term;
``update_ratio``
    ``||W_l(after) - W_l(before)|| / ||W_l(before)||`` of one update step: the larger of the
    epoch's first and last steps (two copies of the weights per epoch, not one per batch; the
    first step catches a rate that blows the weights up at once, the last one the rate the run
    settles with); a healthy step is about ``1e-3`` (a rule of thumb from the CS231n notes);
``dead_fraction``
    for ReLU-family activations (relu, leaky_relu, elu): the fraction of the layer's units whose
    pre-activation is never positive over the health sample, else null;
``saturated_fraction``
    for sigmoid and tanh: the fraction of the layer's units whose output is within ``0.01`` of
    a bound of the activation on at least 99 % of the health sample's rows (stuck where the
    derivative is almost 0), else null.

The health sample is the validation split's first ``SAMPLE_ROWS`` (2,048) rows, or the training
split's when there is none; it goes through one extra forward pass in evaluation mode at the end
of each epoch.
Nothing here draws a random number or changes a weight, a buffer or a generator: a run trains to
the same numbers, bit for bit, with health on or off.

``Diagnoser`` turns the epochs' health into ``Diagnosis`` records (vanishing or exploding
gradients, dying ReLUs, saturation, an update ratio far from 1e-3); ``diagnose`` replays a
``metrics.jsonl`` history through it, which is how ``summary.json`` and ``bpnn diagnose`` get them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from bpnn.callbacks import Callback
from bpnn.nn.layers import EVAL, ActivationLayer

#: rows of the validation split (or, without one, of the training split) in the health sample
SAMPLE_ROWS = 2048
#: batches per epoch whose gradient norms are measured (evenly spaced)
NORM_BATCHES = 16
#: rows per forward pass of the health sample (bounds the memory of the extra pass)
CHUNK_ROWS = 8192
#: activations whose units can die (never positive pre-activation means no gradient, or little)
RELU_FAMILY = ("relu", "leaky_relu", "elu")
#: activations that saturate, with their bounds
SATURATING = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}
#: an output within this distance of a bound counts as saturated, and a unit whose output is
#: saturated on at least this fraction of the sample's rows is a saturated unit
SATURATION_MARGIN = 0.01
SATURATED_ROWS = 0.99

#: the thresholds of the diagnoses (see ``Diagnoser``)
VANISHING_RATIO = 1e-3  # first layer's gradient norm / last layer's
EXPLODING_GROWTH = 10.0  # a layer's gradient norm from one epoch to the next
CLIPPED_MAJORITY = 0.5  # fraction of batches clipped
DEAD_MAJORITY = 0.5
SATURATED_MAJORITY = 0.5
UPDATE_RATIO_HIGH = 0.3  # 300x the healthy 1e-3: a third of the weights' size in one step
UPDATE_RATIO_LOW = 1e-5  # 1/100 of it

KINDS = ("vanishing_gradients", "exploding_gradients", "dying_relu", "saturation", "update_ratio")


@dataclass(frozen=True)
class Diagnosis:
    """One finding: its ``kind`` (see ``KINDS``), the layer (None: the whole network), the epoch
    it first appeared in, and a message that names the layer and the usual remedies."""

    kind: str
    layer: int | None
    epoch: int
    message: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _norm(x: np.ndarray) -> float:
    """The L2 norm; infinite for a diverged gradient (the trainer reports that in its own line)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return math.sqrt(float(np.dot(x, x)))


def activation_health(
    layers: list[ActivationLayer], sample: np.ndarray, forward: Callable[[np.ndarray], Any]
) -> list[tuple[float | None, float | None]]:
    """``(dead_fraction, saturated_fraction)`` of each activation layer over ``sample``.

    ``forward(chunk)`` runs the network's evaluation-mode forward pass, after which each
    ``ActivationLayer`` holds its pre-activation ``z`` and output ``a`` for the chunk.
    """
    ever_positive: list[np.ndarray | None] = [None] * len(layers)
    saturated: list[np.ndarray | None] = [None] * len(layers)
    seen = 0
    for start in range(0, len(sample), CHUNK_ROWS):
        forward(sample[start : start + CHUNK_ROWS])
        for i, layer in enumerate(layers):
            name = layer.activation.name
            if name in RELU_FAMILY:
                positive = (layer.z > 0).any(axis=0)
                before = ever_positive[i]
                ever_positive[i] = positive if before is None else before | positive
            elif name in SATURATING:
                low, high = SATURATING[name]
                a = layer.a
                near = (a - low < SATURATION_MARGIN) | (high - a < SATURATION_MARGIN)
                counts = near.sum(axis=0)
                before = saturated[i]
                saturated[i] = counts if before is None else before + counts
        seen += min(CHUNK_ROWS, len(sample) - start)
    results: list[tuple[float | None, float | None]] = []
    for i, layer in enumerate(layers):
        name = layer.activation.name
        dead = None
        positive = ever_positive[i]
        if positive is not None:
            dead = 1.0 - float(np.count_nonzero(positive)) / positive.size
        saturation = None
        counts = saturated[i]
        if counts is not None:
            saturation = float(np.count_nonzero(counts >= SATURATED_ROWS * seen)) / counts.size
        results.append((dead, saturation))
    return results


class HealthMonitor(Callback):
    """Adds ``logs["health"]`` (and ``logs["clipped_fraction"]`` with gradient clipping) to every
    epoch's logs, and says each diagnosis once, through ``log``, when it first appears.

    It must come before the metrics writer and the checkpointer in the callback list, so that
    ``metrics.jsonl`` and the checkpoint's metrics hold the health. ``history`` holds the epochs
    already run (a resumed run), replayed so that their diagnoses are not said again.
    """

    def __init__(
        self,
        log: Callable[[str], None] | None = None,
        history: Iterable[dict[str, Any]] = (),
    ) -> None:
        self.log = log
        self.diagnoser = Diagnoser()
        for row in history:
            self.diagnoser.update(row)

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        network = self.trainer.network
        self.layers = len(network.sizes) - 1
        params, grads = network.parameters(), network.gradients()
        self.weights = [params[f"{i}.weight"].reshape(-1) for i in range(self.layers)]
        self.gradients = [grads[f"{i}.weight"].reshape(-1) for i in range(self.layers)]
        self.activation_layers = {
            block: layer for block, layer in network.layers if isinstance(layer, ActivationLayer)
        }
        data = self.trainer.data
        self.sample = (data.X_val if len(data.X_val) else data.X_train)[:SAMPLE_ROWS]
        self.norm_every = max(1, self.trainer.batches_per_epoch // NORM_BATCHES)

    def _snapshot(self) -> None:
        self.before = [w.copy() for w in self.weights]

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any]) -> None:
        self.grad_norm_sums = [0.0] * self.layers
        self.batches = self.clipped = self.norm_batches = 0
        self.ratios: list[float | None] = [None] * self.layers
        self._snapshot()  # the weights before the first update

    def _step_ratios(self) -> None:
        """Keep the larger update ratio of the step since the snapshot and earlier ones."""
        for i, (before, now) in enumerate(zip(self.before, self.weights, strict=True)):
            size = _norm(before)
            if size > 0:
                ratio = _norm(now - before) / size
                self.ratios[i] = max(ratio, self.ratios[i] or 0.0)

    def on_batch_end(self, batch: int, logs: dict[str, Any]) -> None:
        if batch % self.norm_every == 0:
            for i, gradient in enumerate(self.gradients):
                self.grad_norm_sums[i] += _norm(gradient)
            self.norm_batches += 1
        self.batches += 1
        self.clipped += bool(logs.get("clipped"))
        last = self.trainer.batches_per_epoch
        if batch == 1 or batch == last:  # the first and the last update step
            self._step_ratios()
        if batch == last - 1:  # the weights before the last update
            self._snapshot()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        network = self.trainer.network
        blocks = sorted(self.activation_layers)
        fractions = dict(
            zip(
                blocks,
                activation_health(
                    [self.activation_layers[b] for b in blocks],
                    self.sample,
                    lambda chunk: network.forward(chunk, EVAL),
                ),
                strict=True,
            )
        )
        health: dict[str, dict[str, float | None]] = {}
        for i in range(self.layers):
            dead, saturated = fractions.get(i, (None, None))
            health[str(i)] = {
                "grad_norm": self.grad_norm_sums[i] / max(self.norm_batches, 1),
                "update_ratio": self.ratios[i],
                "dead_fraction": dead,
                "saturated_fraction": saturated,
            }
        logs["health"] = health
        if self.trainer.grad_clip is not None:
            logs["clipped_fraction"] = self.clipped / max(self.batches, 1)
        for diagnosis in self.diagnoser.update(logs):
            if self.log is not None:
                self.log(f"diagnosis ({diagnosis.kind}): {diagnosis.message}")

    def on_train_end(self, logs: dict[str, Any]) -> None:
        """Let go of the health sample and the weight copies, so that the training and
        validation arrays can be freed before the test evaluation (see ``run_training``)."""
        self.sample = self.before = None


def _layer_name(layer: int, layers: int) -> str:
    return f"layer {layer} (the output layer)" if layer == layers - 1 else f"layer {layer}"


class Diagnoser:
    """Reads each epoch's logs (with ``health``) and returns the diagnoses that are new: each
    ``(kind, layer)`` is reported once, at the first epoch it appears in.

    - ``vanishing_gradients``: the first layer's gradient norm is below ``1e-3`` of the last's;
    - ``exploding_gradients``: a layer's gradient norm grew more than tenfold since the previous
      epoch (and above its first epoch's), or clipping was active on most batches;
    - ``dying_relu``: more than half of a layer's units are dead;
    - ``saturation``: more than half of a layer's outputs are saturated;
    - ``update_ratio``: layers whose update ratio is above ``0.3`` or below ``1e-5`` (the
      healthy step is about ``1e-3``): a learning rate likely too high or too low (one
      diagnosis for each direction, naming the layers, its ``layer`` the worst of them).
    """

    def __init__(self) -> None:
        self.seen: set[Any] = set()
        self.first_norms: dict[str, float] = {}
        self.previous_norms: dict[str, float] = {}
        self.found: list[Diagnosis] = []

    def update(self, logs: dict[str, Any]) -> list[Diagnosis]:
        health = logs.get("health")
        if not isinstance(health, dict) or not health:
            return []
        epoch = int(logs.get("epoch", 0))
        lr = logs.get("lr")
        layers = len(health)
        new: list[Diagnosis] = []

        def add(kind: str, layer: int | None, message: str, key: Any = None) -> None:
            key = (kind, layer) if key is None else key
            if key not in self.seen:
                self.seen.add(key)
                new.append(Diagnosis(kind, layer, epoch, message))

        high = {
            int(k): v["update_ratio"] for k, v in health.items() if _above(v, UPDATE_RATIO_HIGH)
        }
        low = {
            int(k): v["update_ratio"]
            for k, v in health.items()
            if v.get("update_ratio") is not None and 0 < v["update_ratio"] < UPDATE_RATIO_LOW
        }
        lr_text = f"optimizer.lr={lr:.3g}" if isinstance(lr, float | int) else "optimizer.lr"
        if high:
            worst = max(high, key=high.__getitem__)
            add(
                "update_ratio",
                worst,
                f"{_layers_text(high)}: an update changes the weights by up to "
                f"{high[worst]:.2g} of their norm (layer {worst}; a healthy step is about 1e-3): "
                f"{lr_text} is likely too high. Remedies, most likely first: 'bpnn lr-find "
                "CONFIG' and its suggestion; a tenth of the rate; train.grad_clip=1.0",
                key=("update_ratio", "high"),
            )
        norms = {k: v.get("grad_norm") for k, v in health.items()}
        first, last = norms.get("0"), norms.get(str(layers - 1))
        if layers > 1 and first is not None and last and first < VANISHING_RATIO * last:
            add(
                "vanishing_gradients",
                0,
                f"layer 0's gradient norm is {first:.2g}, {first / last:.1e} of the output "
                f"layer's ({last:.2g}): the gradients vanish on their way back. Remedies, most "
                "likely first: model.activation=relu with model.init=he_normal; "
                "model.batch_norm=true; fewer hidden layers; an adaptive optimizer (adam)",
            )
        for key, norm in norms.items():
            previous = self.previous_norms.get(key)
            first_norm = self.first_norms.setdefault(key, norm) if norm is not None else None
            if (
                norm is not None
                and previous
                and norm > EXPLODING_GROWTH * previous
                and first_norm is not None
                and norm > first_norm
            ):
                add(
                    "exploding_gradients",
                    int(key),
                    f"{_layer_name(int(key), layers)}: the gradient norm grew "
                    f"{norm / previous:.0f}x in epoch {epoch} (to {norm:.3g}): the gradients "
                    "explode. Remedies, most likely first: a lower optimizer.lr; "
                    "train.grad_clip=1.0; model.batch_norm=true; a scaled init (he_normal for "
                    "ReLU, xavier_normal for sigmoid/tanh)",
                )
            if norm is not None:
                self.previous_norms[key] = norm
        clipped = logs.get("clipped_fraction")
        if clipped is not None and clipped > CLIPPED_MAJORITY:
            add(
                "exploding_gradients",
                None,
                f"gradient clipping was active on {clipped:.0%} of the batches of epoch "
                f"{epoch}: the gradients are larger than train.grad_clip most of the time. "
                "Remedies, most likely first: a lower optimizer.lr; model.batch_norm=true; "
                "a larger train.grad_clip if the loss still falls",
            )
        for key, values in health.items():
            layer = int(key)
            name = _layer_name(layer, layers)
            dead = values.get("dead_fraction")
            if dead is not None and dead > DEAD_MAJORITY:
                add(
                    "dying_relu",
                    layer,
                    f"{name}: {dead:.0%} of its units are never active on the health sample "
                    "(dead ReLUs get no gradient). Remedies, most likely first: a lower "
                    "optimizer.lr; model.activation=leaky_relu (or elu); model.init=he_normal; "
                    "model.batch_norm=true",
                )
            saturated = values.get("saturated_fraction")
            if saturated is not None and saturated > SATURATED_MAJORITY:
                add(
                    "saturation",
                    layer,
                    f"{name}: {saturated:.0%} of its units are stuck within 0.01 of the "
                    "activation's bounds, where its derivative is almost 0. Remedies, most likely "
                    "first: model.init=xavier_normal; data.scale=standard; model.batch_norm=true; "
                    "model.activation=relu with model.init=he_normal",
                )
        if low and ("update_ratio", "high") not in self.seen:  # small after a blow-up: not low
            worst = min(low, key=low.__getitem__)
            add(
                "update_ratio",
                worst,
                f"{_layers_text(low)}: an update changes the weights by as little as "
                f"{low[worst]:.2g} of their norm (layer {worst}; a healthy step is about 1e-3): "
                f"{lr_text} is likely too low (or the gradients vanish before these layers). "
                "Remedies, most likely first: 'bpnn lr-find CONFIG' and its suggestion; ten "
                "times the rate; an adaptive optimizer (adam)",
                key=("update_ratio", "low"),
            )
        self.found.extend(new)
        return new


def _above(values: dict[str, Any], threshold: float) -> bool:
    value = values.get("update_ratio")
    return value is not None and value > threshold


def _layers_text(layers: dict[int, float]) -> str:
    keys = sorted(layers)
    return f"layer {keys[0]}" if len(keys) == 1 else "layers " + ", ".join(map(str, keys))


def diagnose(history: Iterable[dict[str, Any]]) -> list[Diagnosis]:
    """Every diagnosis of a run's epochs (the rows of its ``metrics.jsonl``), in order."""
    diagnoser = Diagnoser()
    for row in history:
        diagnoser.update(row)
    return diagnoser.found

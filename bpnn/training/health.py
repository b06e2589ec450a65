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

``HealthMonitor`` hands each epoch's numbers to a ``Diagnoser`` (``bpnn.training.diagnoses``),
which turns them and the training loss into ``Diagnosis`` records.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from bpnn.callbacks import Callback
from bpnn.nn.layers import EVAL, ActivationLayer
from bpnn.training.diagnoses import Diagnoser

#: rows of the validation split (or, without one, of the training split) in the health sample
SAMPLE_ROWS = 2048
#: batches per epoch whose gradient norms are measured (evenly spaced)
NORM_BATCHES = 16
#: rows per forward pass of the health sample (bounds the memory of the extra pass)
CHUNK_ROWS = 8192
#: an output within this distance of a bound counts as saturated, and a unit whose output is
#: saturated on at least this fraction of the sample's rows is a saturated unit
SATURATION_MARGIN = 0.01
SATURATED_ROWS = 0.99


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
            activation = layer.activation
            if activation.can_die:
                positive = (layer.z > 0).any(axis=0)
                before = ever_positive[i]
                ever_positive[i] = positive if before is None else before | positive
            elif activation.saturates_at is not None:
                low, high = activation.saturates_at
                a = layer.a
                near = (a - low < SATURATION_MARGIN) | (high - a < SATURATION_MARGIN)
                counts = near.sum(axis=0)
                before = saturated[i]
                saturated[i] = counts if before is None else before + counts
        seen += min(CHUNK_ROWS, len(sample) - start)
    results: list[tuple[float | None, float | None]] = []
    for i in range(len(layers)):
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
    already run (a resumed run), replayed so that their diagnoses are not said again. The
    diagnoser judges the learning rate at the schedule's base rate (``optimizer.lr``), so it is
    made when training begins, with the trainer's schedule at hand.
    """

    def __init__(
        self,
        log: Callable[[str], None] | None = None,
        history: Iterable[dict[str, Any]] = (),
    ) -> None:
        self.log = log
        self.history: list[dict[str, Any]] | None = list(history)
        self.diagnoser = Diagnoser()  # remade when training begins, knowing the base rate

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        if self.history is not None:  # the first time (a benchmark may call fit again)
            self.diagnoser = Diagnoser(base_lr=self.trainer.schedule.base_lr)
            for row in self.history:
                self.diagnoser.update(row)
            self.history = None
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

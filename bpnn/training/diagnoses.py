"""The diagnoses of a run's health: vanishing or exploding gradients, dying ReLUs, saturation, a
learning rate too high or too low, from the per-layer numbers ``HealthMonitor``
(``bpnn.training.health``) logs each epoch and the training loss.

Each diagnosis needs evidence that training is hurt, not only an unusual number (see
``Diagnoser``): a healthy run gets none. ``diagnose`` replays a ``metrics.jsonl`` history
through a ``Diagnoser``, which is how ``summary.json`` and ``bpnn diagnose`` get them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

#: the thresholds of the diagnoses (see ``Diagnoser``)
VANISHING_RATIO = 1e-3  # first layer's gradient norm / last layer's
EXPLODING_GROWTH = 10.0  # a layer's gradient norm from one epoch to the next
CLIPPED_MAJORITY = 0.5  # fraction of batches clipped
DEAD_MAJORITY = 0.5
SATURATED_MAJORITY = 0.5
#: the learning-rate diagnoses read the training loss per epoch (``train_loss``) for evidence of
#: harm, and the update ratios judged at the base rate (see ``Diagnoser``)
WINDOW = 10  # epochs: the recent stretch of the curve in which rises and large steps count
RISE_OF_START = 0.05  # a rise counts when the loss grows by more than 5 % of epoch 1's loss
RISE_OF_PREVIOUS = 0.2  # and by more than 20 % of the epoch before's
OSCILLATION_RISES = 2  # rises within the window that make the loss oscillate
SMOOTHING = 3  # epochs averaged for "the loss now", against epoch 1's
STALL_EPOCHS = 5  # the stretch over which a stalled loss improved...
STALL_IMPROVEMENT = 0.05  # ... by less than 5 % in all (1 % an epoch)
STALL_LEVEL = 0.7  # ... while still above 70 % of epoch 1's loss: far from a good value
UPDATE_RATIO_HIGH = 1e-2  # ten times the healthy step of about 1e-3
UPDATE_RATIO_LOW = 1e-4  # a tenth of it, in every layer

KINDS = (
    "vanishing_gradients",
    "exploding_gradients",
    "dying_relu",
    "saturation",
    "lr_too_high",
    "lr_too_low",
)


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


def _layer_name(layer: int, layers: int) -> str:
    return f"layer {layer} (the output layer)" if layer == layers - 1 else f"layer {layer}"


def _finite(value: Any) -> bool:
    return isinstance(value, float | int) and math.isfinite(value)


def rising_loss(losses: Sequence[float]) -> str | None:
    """What in the training loss per epoch (``losses[0]`` is epoch 1's) says that training is
    pushed too hard, in words, or None. Any one of:

    - a loss that is not finite;
    - the loss now (the mean of the last ``SMOOTHING`` epochs after the first) above epoch 1's
      by more than ``RISE_OF_START`` (5 %) of it;
    - ``OSCILLATION_RISES`` rises or more within the last ``WINDOW`` epochs, a rise being an
      epoch whose loss grew by more than ``RISE_OF_START`` (5 %) of epoch 1's loss and by more
      than ``RISE_OF_PREVIOUS`` (20 %) of the epoch before's: the noise of a loss that has come
      down to a small fraction of where it started is neither.

    A loss that never grows from one epoch to the next has none of them.
    """
    for epoch, loss in enumerate(losses, 1):
        if not math.isfinite(loss):
            return f"is not finite in epoch {epoch}"
    if len(losses) < 2:
        return None
    start = losses[0]
    recent = losses[1:][-SMOOTHING:]
    now = sum(recent) / len(recent)
    if now - start > RISE_OF_START * start:
        since = len(losses) - len(recent) + 1
        epochs = f"epoch {since}" if since == len(losses) else f"epochs {since}-{len(losses)}"
        return (
            f"has risen above where it started ({now:.4g} on average in {epochs}, against "
            f"{start:.4g} in epoch 1)"
        )
    first = max(1, len(losses) - WINDOW)
    rises = [
        (epoch + 1, losses[epoch - 1], losses[epoch])
        for epoch in range(first, len(losses))
        if losses[epoch] - losses[epoch - 1] > RISE_OF_START * start
        and losses[epoch] > (1 + RISE_OF_PREVIOUS) * losses[epoch - 1]
    ]
    if len(rises) >= OSCILLATION_RISES:
        epoch, before, after = max(rises, key=lambda rise: rise[2] - rise[1])
        return (
            f"oscillates (it rose in {len(rises)} of the last {len(losses) - first} epochs, "
            f"by up to {after - before:.3g}: from {before:.4g} to {after:.4g} in epoch {epoch})"
        )
    return None


def stalled_loss(losses: Sequence[float]) -> str | None:
    """What in the training loss per epoch says that it stalls far from a good value, in
    words, or None: over the last ``STALL_EPOCHS`` epochs it fell by less than
    ``STALL_IMPROVEMENT`` (5 %) of where that stretch began, and the lowest loss so far is
    still above ``STALL_LEVEL`` (70 %) of epoch 1's. A loss that has come down to a small
    fraction of where it started and levels off there has converged; it has not stalled."""
    if len(losses) <= STALL_EPOCHS or not all(map(math.isfinite, losses)):
        return None
    start, before = losses[0], losses[-STALL_EPOCHS - 1]
    lowest = min(losses)
    if start <= 0 or before <= 0 or lowest <= STALL_LEVEL * start:
        return None
    fell = (before - min(losses[-STALL_EPOCHS:])) / before
    if fell >= STALL_IMPROVEMENT:
        return None
    return (
        f"fell by {max(fell, 0.0):.1%} in the last {STALL_EPOCHS} epochs and is still "
        f"{lowest / start:.0%} of where it started ({lowest:.4g} at best, {start:.4g} in epoch 1)"
    )


class Diagnoser:
    """Reads each epoch's logs (with ``health`` and ``train_loss``) and returns the diagnoses
    that are new: each ``(kind, layer)`` is reported once, at the first epoch it appears in.
    Each needs evidence that training is hurt, measured, not a number merely far from a rule of
    thumb:

    - ``vanishing_gradients``: the first layer's gradient norm is below ``1e-3`` of the last's
      (the first layer learns a thousand times slower than the output layer);
    - ``exploding_gradients``: a layer's gradient norm grew more than tenfold since the previous
      epoch (and above its first epoch's), or clipping was active on most batches;
    - ``dying_relu``: more than half of a layer's units are dead (measured on the health sample);
    - ``saturation``: more than half of a layer's units are saturated (measured likewise);
    - ``lr_too_high``: the training loss rises or oscillates (``rising_loss``) and, within the
      last ``WINDOW`` epochs, an update changed some layer's weights by more than ``1e-2`` of
      their norm at the base rate;
    - ``lr_too_low``: the training loss stalls far from a good value (``stalled_loss``), no
      other diagnosis explains it (vanishing or exploding gradients, dead or saturated units, a
      rate too high), and in each of the last ``STALL_EPOCHS`` epochs every layer's update
      ratio at the base rate is below ``1e-4`` (a tenth of the healthy ``1e-3``).

    The update ratios are judged at the base rate, not at the schedule's rate of the epoch: an
    epoch's ratios are multiplied by ``base_lr / lr`` (an update is proportional to the rate),
    so the small steps at the end of a cosine schedule are not a rate too low. ``base_lr`` is
    ``optimizer.lr``; None takes the largest rate seen so far.
    """

    def __init__(self, base_lr: float | None = None) -> None:
        self.base_lr = base_lr
        self.seen: set[Any] = set()
        self.first_norms: dict[str, float] = {}
        self.previous_norms: dict[str, float] = {}
        self.losses: list[float] = []
        #: each epoch's largest update ratio at the base rate, and its layer (None: unknown)
        self.steps: list[tuple[float, int] | None] = []
        self.largest_lr: float | None = None
        self.found: list[Diagnosis] = []

    def _largest_step(self, health: dict[str, Any], lr: Any) -> tuple[float, int] | None:
        """The epoch's largest update ratio at the base rate, with its layer; None when the
        epoch's rate is 0 (there is then no telling what the base rate would do) or no ratio is
        known. A ratio that is not finite is not known: ``metrics.jsonl`` holds it as null, and
        a replay must find what the run found."""
        ratios = {
            int(k): v["update_ratio"] for k, v in health.items() if _finite(v.get("update_ratio"))
        }
        if not ratios:
            return None
        base = self.base_lr if self.base_lr is not None else self.largest_lr
        scale = 1.0
        if _finite(lr) and base is not None:
            if lr <= 0:
                return None
            scale = base / lr
        scaled = {k: r * scale for k, r in ratios.items()}
        worst = max(scaled, key=scaled.__getitem__)
        return scaled[worst], worst

    def update(self, logs: dict[str, Any]) -> list[Diagnosis]:
        health = logs.get("health")
        if not isinstance(health, dict) or not health:
            return []
        epoch = int(logs.get("epoch", 0))
        lr = logs.get("lr")
        if _finite(lr) and lr > (self.largest_lr or 0.0):
            self.largest_lr = float(lr)
        base = self.base_lr if self.base_lr is not None else self.largest_lr
        if "train_loss" in logs:  # null in metrics.jsonl: not finite
            loss = logs["train_loss"]
            self.losses.append(float(loss) if _finite(loss) else math.inf)
        self.steps.append(self._largest_step(health, lr))
        layers = len(health)
        new: list[Diagnosis] = []

        def add(kind: str, layer: int | None, message: str) -> None:
            if (kind, layer) not in self.seen:
                self.seen.add((kind, layer))
                new.append(Diagnosis(kind, layer, epoch, message))

        lr_text = f"optimizer.lr={base:.3g}" if base is not None else "optimizer.lr"
        rising = rising_loss(self.losses)
        what = "the training loss"
        if rising is None and "val_loss" in logs and not _finite(logs["val_loss"]):
            rising, what = f"is not finite in epoch {epoch}", "the validation loss"
        recent = [step for step in self.steps[-WINDOW:] if step is not None]
        largest = max(recent, default=None)
        if rising is not None and largest is not None and largest[0] > UPDATE_RATIO_HIGH:
            ratio, layer = largest
            add(
                "lr_too_high",
                None,
                f"{what} {rising}, and an update changed the weights of "
                f"{_layer_name(layer, layers)} by {ratio:.2g} of their norm at the base rate (a "
                f"healthy step is about 1e-3): {lr_text} is likely too high. Remedies, most "
                "likely first: "
                "'bpnn lr-find CONFIG' and its suggestion; a tenth of the rate; "
                "train.grad_clip=1.0",
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
        explained = any(kind != "lr_too_low" for kind, _ in self.seen)
        stalled = None if explained else stalled_loss(self.losses)
        window = self.steps[-STALL_EPOCHS:]
        if stalled is not None and all(step is not None for step in window):
            ratio, layer = max(step for step in window if step is not None)
            if 0 < ratio < UPDATE_RATIO_LOW:
                add(
                    "lr_too_low",
                    None,
                    f"the training loss {stalled}, and in these epochs no update changed a "
                    f"layer's weights by more than {ratio:.2g} of their norm at the base rate, "
                    f"{_layer_name(layer, layers)} the most (a healthy step is about 1e-3): "
                    f"{lr_text} is likely too low. Remedies, most likely first: "
                    "'bpnn lr-find CONFIG' and its suggestion; ten times the rate; an adaptive "
                    "optimizer (adam)",
                )
        self.found.extend(new)
        return new


def diagnose(history: Iterable[dict[str, Any]], base_lr: float | None = None) -> list[Diagnosis]:
    """Every diagnosis of a run's epochs (the rows of its ``metrics.jsonl``), in order.

    ``base_lr`` is the rate the update ratios are judged at; None takes the largest ``lr`` of
    the history, which is ``optimizer.lr`` for every schedule once any warmup is over (the
    schedules only lower the rate from there)."""
    rows = list(history)
    if base_lr is None:
        rates = [row["lr"] for row in rows if _finite(row.get("lr")) and row["lr"] > 0]
        base_lr = max(rates, default=None)
    diagnoser = Diagnoser(base_lr)
    for row in rows:
        diagnoser.update(row)
    return diagnoser.found

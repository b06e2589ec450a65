"""The training loop: ``Trainer``, which talks to the world only through its callbacks.

``Trainer.fit`` runs mini-batch gradient descent: each epoch takes its learning rate from the
schedule, shuffles the training set with its own seeded generator, and for every batch does::

    loss  = network.train_step(X_batch, y_batch)          # forward + backward, grads filled
    optimizer_step(network, optimizer, lr, grad_clip)     # clip (optional), then update,
                                                          # in place (bpnn/nn/step.py)

then evaluates the validation split and hands the epoch's ``logs`` to the callbacks. Between the
backward pass and the update, the callbacks that check a batch see its loss
(``on_backward_end``): the ``FiniteLossCheck`` every trainer has stops training at a NaN or
infinite loss before it reaches the weights.

Epochs are counted from 1 (the logs, the callbacks, ``start_epoch`` is the number already done);
the engine's schedules take the number of epochs completed, ``epoch - 1``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from bpnn.callbacks import Callback, FiniteLossCheck, StatefulCallback
from bpnn.evaluation import correct_count, correct_share, evaluate
from bpnn.metrics import accuracy_name, is_headline
from bpnn.model import Model, model_contents
from bpnn.nn.network import Network
from bpnn.nn.optimizers import Optimizer
from bpnn.nn.schedules import Schedule
from bpnn.nn.step import optimizer_step


class Trainer:
    """Trains ``model`` on a ``Dataset`` (scaled arrays) with an optimizer and a schedule."""

    def __init__(
        self,
        model: Model,
        data: Any,
        *,
        optimizer: Optimizer,
        schedule: Schedule,
        epochs: int,
        batch_size: int,
        shuffle_rng: np.random.Generator,
        l2: float = 0.0,
        grad_clip: float | None = None,
        shuffle: bool = True,
        callbacks: Sequence[Callback] = (),
        start_epoch: int = 0,
        scores: Sequence[str] = (),
    ) -> None:
        self.model, self.data = model, data
        self.network: Network = model.network
        self.optimizer, self.schedule = optimizer, schedule
        self.epochs, self.batch_size = epochs, batch_size
        self.shuffle_rng, self.shuffle = shuffle_rng, shuffle
        self.l2, self.grad_clip = l2, grad_clip
        self.callbacks = list(callbacks)
        if not any(isinstance(c, FiniteLossCheck) for c in self.callbacks):
            self.callbacks.insert(0, FiniteLossCheck())  # no trainer trains on after a NaN
        #: the callbacks that look at a batch's loss before its update (most do not)
        self._batch_checks = [
            c for c in self.callbacks if type(c).on_backward_end is not Callback.on_backward_end
        ]
        self.start_epoch = start_epoch
        #: the validation scores beyond the headline metrics each epoch logs (``val_f1_macro``)
        self.scores = list(scores)
        self.stop_reason: str | None = None
        self.batches_per_epoch = math.ceil(len(data.X_train) / batch_size)

    def stop(self, reason: str) -> None:
        """Ask the loop to end after the current epoch (used by early stopping)."""
        self.stop_reason = reason

    def _call(self, hook: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(*args)

    def train_epoch(self, epoch: int, lr: float) -> dict[str, float]:
        """One pass over the training set; returns the mean training loss (and accuracy)."""
        X, y, w = self.data.X_train, self.data.y_train, self.data.w_train
        n = len(X)
        order = self.shuffle_rng.permutation(n) if self.shuffle else np.arange(n)
        network, optimizer = self.network, self.optimizer
        classify = self.model.task != "regression"
        total_loss, total_weight, correct = 0.0, 0.0, 0.0
        for batch, start in enumerate(range(0, n, self.batch_size), start=1):
            index = order[start : start + self.batch_size]
            X_batch, y_batch = X[index], y[index]
            w_batch = None if w is None else w[index]
            with np.errstate(over="ignore", invalid="ignore"):  # a NaN loss is our error
                loss = network.train_step(X_batch, y_batch, l2=self.l2, weights=w_batch)
            for check in self._batch_checks:
                check.on_backward_end(batch, {"loss": loss})
            clipped = optimizer_step(network, optimizer, lr, self.grad_clip)
            # the batch's loss summed over its samples, and its size (or sum of class weights)
            total_loss += network.loss.batch_total(loss, y_batch, w_batch)
            total_weight += network.loss.batch_weight(y_batch, w_batch)
            if classify and w_batch is None:
                correct += correct_count(self.model.task, network.last_output, y_batch)
            elif classify:  # the weights of the right predictions
                share = correct_share(self.model.task, network.last_output, y_batch, w_batch)
                correct += share * float(w_batch.sum())
            self._call(
                "on_batch_end",
                batch,
                {"loss": loss, "running_loss": total_loss / total_weight, "clipped": clipped},
            )
        logs = {"train_loss": total_loss / total_weight}
        if classify:
            logs[f"train_{accuracy_name(self.model.task)}"] = correct / (
                n if w is None else w.sum()
            )
        return logs

    def fit(self) -> dict[str, Any]:
        """Train from ``start_epoch`` to ``epochs`` (or until stopped); returns the final logs.

        The callbacks reach the trainer as ``callback.trainer`` while ``fit`` runs; when it
        ends they let go of it, so that the training data can be freed with the trainer.
        """
        for callback in self.callbacks:
            callback.trainer = self
        try:
            return self._fit()
        finally:
            for callback in self.callbacks:
                del callback.trainer

    def _fit(self) -> dict[str, Any]:
        logs: dict[str, Any] = {}
        self._call("on_train_begin", logs)
        try:
            for epoch in range(self.start_epoch + 1, self.epochs + 1):
                lr = float(self.schedule.learning_rate(epoch - 1))
                self._call("on_epoch_begin", epoch, {"lr": lr})
                started = time.perf_counter()
                train_logs = self.train_epoch(epoch, lr)
                seconds = time.perf_counter() - started
                logs = {"epoch": epoch, **train_logs}
                if len(self.data.X_val):
                    logs.update(self.validation_metrics())
                logs.update({"lr": lr, "epoch_seconds": seconds})
                self.schedule.on_epoch_end(epoch - 1, logs)
                self.model.epoch = epoch
                self._call("on_epoch_end", epoch, logs)
                if self.stop_reason is not None:
                    break
            else:
                self.stop_reason = "completed"
        except BaseException:
            self.stop_reason = "error"
            self._call("on_train_end", {"stop_reason": "error"})
            raise
        end_logs = {"stop_reason": self.stop_reason, **logs}
        self._call("on_train_end", end_logs)
        return end_logs

    def validation_metrics(self) -> dict[str, float]:
        """The headline metrics of the validation split, and the ``scores`` asked for."""
        data = self.data
        measured = evaluate(
            self.model, data.X_val, data.y_val, "val_", bool(self.scores), data.w_val
        )
        return {k: v for k, v in measured.items() if is_headline(k) or k in self.scores}

    def checkpoint_contents(self, epoch: int, logs: dict[str, Any]) -> Any:
        """Everything needed to use the model, and to resume training after ``epoch``."""
        trainer_state: dict[str, Any] = {
            "shuffle_rng": self.shuffle_rng.bit_generator.state,
            "stopped": self.stop_reason,
            "callbacks": {
                c.state_key: c.state() for c in self.callbacks if isinstance(c, StatefulCallback)
            },
        }
        if self.network.dropout_rng is not None:
            trainer_state["dropout_rng"] = self.network.dropout_rng.bit_generator.state
        return model_contents(
            self.model,
            metrics=logs,
            optimizer=self.optimizer.state_dict(),
            schedule=self.schedule.state_dict(),
            trainer=trainer_state,
        )

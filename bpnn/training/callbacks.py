"""The callback interface of the trainer (Keras-style hooks that receive a ``logs`` dict), and
every callback: the metrics writer, the checkpointer and early stopping (the progress display
lives in ``bpnn.training.progress``).

Everything that talks to the world during training is a callback; each hook does nothing by
default. Epochs are counted from 1 in every hook and every ``logs`` dict. A callback with state
to resume declares the key it is saved under in the checkpoint (``state_key``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from bpnn.errors import TrainingError
from bpnn.metrics import is_improvement, mode_of

if TYPE_CHECKING:
    from bpnn.training.trainer import Trainer


class RunWriter(Protocol):
    """Where the writing callbacks put a run: what they need of ``bpnn.run.RunDirectory``, which
    implements it (the trainer knows nothing of run directories; ``bpnn.run`` builds the
    callbacks and hands them its directory)."""

    def append_metrics(self, logs: dict[str, Any]) -> None:
        """Append one epoch's logs to the run's metrics."""

    def save_checkpoint(self, which: str, contents: Any) -> None:
        """Write the checkpoint ``which`` (``last`` or ``best``)."""


class Callback:
    """Hooks called by ``Trainer.fit``; ``self.trainer`` is the trainer while ``fit`` runs (set
    before ``on_train_begin``, gone after ``on_train_end``)."""

    trainer: Trainer

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        """Before the first epoch (also when resuming)."""

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any]) -> None:
        """Before epoch ``epoch`` (1-based); ``logs`` holds its ``lr``."""

    def on_batch_end(self, batch: int, logs: dict[str, Any]) -> None:
        """After batch ``batch`` (1-based); ``logs`` holds ``loss``, ``running_loss`` and
        ``clipped`` (whether gradient clipping scaled this batch's gradients)."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        """After epoch ``epoch`` with its metrics (``train_loss``, ``val_loss``, ``lr``, ...)."""

    def on_train_end(self, logs: dict[str, Any]) -> None:
        """After the last epoch, early stopping, or an error (see ``logs['stop_reason']``)."""


class StatefulCallback(Callback):
    """A callback whose state goes into every checkpoint under ``state_key`` and comes back on
    resume, so that a resumed run continues exactly as the uninterrupted one would have."""

    state_key: ClassVar[str]

    def state(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_state(self, state: dict[str, Any]) -> None:
        raise NotImplementedError


class MetricsWriter(Callback):
    """Appends each epoch's logs to the run directory's ``metrics.jsonl`` (never rewritten)."""

    def __init__(self, run: RunWriter) -> None:
        self.run = run

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        self.run.append_metrics(logs)


class Checkpointer(StatefulCallback):
    """Saves ``last.npz`` every ``every`` epochs and ``best.npz`` when ``monitor`` has improved
    since it was last written, and both once more when training ends (completed, stopped early,
    interrupted or failed), so the newest finished epoch is never lost to a clean exit.

    Between two checkpoints the newest epoch's contents and the best epoch's contents wait in
    memory (copies: the training loop goes on changing the arrays). At a checkpoint ``best.npz``
    is written before ``last.npz``: a kill between the two leaves a ``best.npz`` from after
    ``last.npz``'s epoch, which ``resume`` accepts (replaying those epochs writes it again, bit
    for bit). A kill between checkpoints loses at most ``every - 1`` epochs; ``resume`` drops
    their metrics rows and trains them again. ``every = 1`` writes every epoch, as before."""

    state_key = "checkpointer"

    def __init__(
        self,
        run: RunWriter,
        monitor: str,
        mode: str = "auto",
        min_delta: float = 0.0,
        every: int = 1,
    ) -> None:
        self.run, self.monitor, self.min_delta, self.every = run, monitor, min_delta, every
        self.mode = mode_of(monitor, mode)
        self.best: float | None = None
        self.best_epoch: int | None = None
        self._pending_last: Any = None  # contents of the newest epoch not yet in last.npz
        self._pending_best: Any = None  # contents of the best epoch not yet in best.npz

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        self._pending_last = self._pending_best = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        value = logs[self.monitor]
        improved = is_improvement(value, self.best, self.mode, self.min_delta)
        if improved:
            self.best, self.best_epoch = value, epoch
        contents = self.trainer.checkpoint_contents(epoch, logs)
        self._pending_last = contents
        if improved:
            self._pending_best = contents
        if epoch % self.every == 0:
            self.write()

    def write(self) -> None:
        """Write what waits: ``best.npz`` first, then ``last.npz``."""
        if self._pending_best is not None:
            self.run.save_checkpoint("best", self._pending_best)
            self._pending_best = None
        if self._pending_last is not None:
            self.run.save_checkpoint("last", self._pending_last)
            self._pending_last = None

    def on_train_end(self, logs: dict[str, Any]) -> None:
        self.write()  # the contents are those of the last finished epoch, even after an error

    def state(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]


class EarlyStopping(StatefulCallback):
    """Stops training when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs, and (``restore_best``) puts the best weights back into the model at the end."""

    state_key = "early_stopping"

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 10,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best: bool = True,
    ) -> None:
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.mode = mode_of(monitor, mode)
        self.restore_best = restore_best
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0
        self.best_weights: tuple[np.ndarray, dict[str, np.ndarray]] | None = None

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        if self.trainer.start_epoch == 0:  # a resumed run keeps the state it was saved with
            self.best, self.best_epoch, self.wait, self.best_weights = None, None, 0, None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if self.monitor not in logs:
            raise TrainingError(
                f"train.early_stopping.monitor: '{self.monitor}' is not a metric of this run "
                f"(metrics: {', '.join(k for k in logs if k != 'epoch' and k != 'health')})"
            )
        value = logs[self.monitor]
        if is_improvement(value, self.best, self.mode, self.min_delta):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            network = self.trainer.model.network
            self.best_weights = (
                network.params.copy(),
                {k: v.copy() for k, v in network.buffers().items()},
            )
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.trainer.stop(
                    f"early_stopping: {self.monitor} did not improve for {self.patience} epochs "
                    f"(best {self.best:.6g} at epoch {self.best_epoch})"
                )

    def on_train_end(self, logs: dict[str, Any]) -> None:
        if (
            self.restore_best
            and self.best_weights is not None
            and self.trainer.stop_reason != "error"
        ):
            params, buffers = self.best_weights
            self.trainer.model.network.params[...] = params
            self.trainer.model.network.load_buffers(buffers)
            logs["restored_epoch"] = self.best_epoch

    def state(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]

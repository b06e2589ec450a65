"""The callback interface of the trainer (Keras-style hooks that receive a ``logs`` dict).

Everything that talks to the world during training is a callback: the metrics writer, the
checkpointer, early stopping and the progress display. Each hook does nothing by default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bpnn.train import Trainer


class Callback:
    """Hooks called by ``Trainer.fit``; ``self.trainer`` is the trainer while ``fit`` runs (set
    before ``on_train_begin``, gone after ``on_train_end``)."""

    trainer: Trainer

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        """Before the first epoch (also when resuming)."""

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any]) -> None:
        """Before epoch ``epoch`` (1-based); ``logs`` holds its ``lr``."""

    def on_batch_end(self, batch: int, logs: dict[str, Any]) -> None:
        """After batch ``batch`` (1-based); ``logs`` holds ``loss`` and ``running_loss``."""

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        """After epoch ``epoch`` with its metrics (``train_loss``, ``val_loss``, ``lr``, ...)."""

    def on_train_end(self, logs: dict[str, Any]) -> None:
        """After the last epoch, early stopping, or an error (see ``logs['stop_reason']``)."""

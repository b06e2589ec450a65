"""``EarlyStopping``: stop when a metric has not improved for ``patience`` epochs."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from bpnn.callbacks.base import Monitor, is_epoch_count
from bpnn.errors import TrainingError


class EarlyStopping(Monitor):
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
        super().__init__(monitor, mode, min_delta)
        self.patience, self.restore_best = patience, restore_best
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
        if self.improved(epoch, logs[self.monitor]):
            self.wait = 0
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
        return {**super().state(), "wait": self.wait}

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.wait = state["wait"]

    STATE_FIELDS: ClassVar[dict[str, tuple[str, Any]]] = {
        **Monitor.STATE_FIELDS,
        "wait": ("a whole number of epochs", lambda v: is_epoch_count(v) and v is not None),
    }

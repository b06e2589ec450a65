"""``FiniteLossCheck``: training stops at the first batch whose loss is NaN or infinite, before
that batch's update touches the weights (every run has it; it is not a config's choice)."""

from __future__ import annotations

import math
from typing import Any

from bpnn.callbacks.base import Callback
from bpnn.errors import TrainingError


class FiniteLossCheck(Callback):
    """Raises a ``TrainingError`` naming the epoch and the batch where the training loss became
    NaN or infinite, with what to try; the run keeps its last checkpoint, resumable."""

    epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any]) -> None:
        self.epoch = epoch

    def on_backward_end(self, batch: int, logs: dict[str, Any]) -> None:
        loss = logs["loss"]
        if not math.isfinite(loss):
            raise TrainingError(
                f"the training loss became {loss} at epoch {self.epoch}, batch {batch}; stopped "
                f"(try a lower optimizer.lr or set train.grad_clip)"
            )

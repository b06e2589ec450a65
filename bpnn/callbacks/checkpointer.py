"""``Checkpointer``: ``last.npz`` every ``every`` epochs, ``best.npz`` when its metric improved."""

from __future__ import annotations

from typing import Any

from bpnn.callbacks.base import Monitor, RunWriter


class Checkpointer(Monitor):
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
        super().__init__(monitor, mode, min_delta)
        self.run, self.every = run, every
        self._pending_last: Any = None  # contents of the newest epoch not yet in last.npz
        self._pending_best: Any = None  # contents of the best epoch not yet in best.npz

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        self._pending_last = self._pending_best = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        improved = self.improved(epoch, logs[self.monitor])
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

"""``MetricsWriter``: each epoch's logs appended to the run's ``metrics.jsonl``."""

from __future__ import annotations

from typing import Any

from bpnn.callbacks.base import Callback, RunWriter


class MetricsWriter(Callback):
    """Appends each epoch's logs to the run directory's ``metrics.jsonl`` (never rewritten)."""

    def __init__(self, run: RunWriter) -> None:
        self.run = run

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        self.run.append_metrics(logs)

"""Progress reporting behind one small interface: a live rich bar on a terminal, one plain line
per epoch elsewhere (CI logs, pipes), nothing when quiet.

A reporter is a training callback; it never changes what is trained.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from bpnn.callbacks import Callback
from bpnn.metrics import format_value, metric_names


def format_logs(logs: dict[str, Any]) -> str:
    """``train_loss 0.1234  val_accuracy 0.9700 ...`` for the metrics of one epoch."""
    parts = [
        f"{key} {format_value(key, logs[key])}"
        for key in metric_names(splits=("train", "val"))
        if logs.get(key) is not None
    ]
    if logs.get("lr") is not None:
        parts.append(f"lr {logs['lr']:.3g}")
    if "epoch_seconds" in logs:
        seconds = logs["epoch_seconds"]
        parts.append(f"{seconds:.2f}s" if seconds >= 0.1 else f"{seconds * 1000:.1f}ms")
    return "  ".join(parts)


class PlainProgress(Callback):
    """One line per epoch, for logs that are not a terminal."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        self.console.print(
            f"epoch {epoch}/{self.trainer.epochs}  {format_logs(logs)}",
            highlight=False,
            soft_wrap=True,
        )


class LiveProgress(Callback):
    """A rich progress bar over the epochs and the batches of the current epoch, with live loss."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[status]}"),
            console=self.console,
            transient=False,
        )
        self.progress.start()
        self.epochs_task = self.progress.add_task(
            "epochs", total=self.trainer.epochs, completed=self.trainer.start_epoch, status=""
        )
        self.batches_task = self.progress.add_task(
            "batches", total=self.trainer.batches_per_epoch, status=""
        )

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any]) -> None:
        self.progress.reset(self.batches_task, total=self.trainer.batches_per_epoch, status="")

    def on_batch_end(self, batch: int, logs: dict[str, Any]) -> None:
        if batch % 8 == 0 or batch == self.trainer.batches_per_epoch:
            self.progress.update(
                self.batches_task, completed=batch, status=f"loss {logs['running_loss']:.4f}"
            )

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        # each epoch's metrics stay on screen above the bars, as the plain reporter prints them
        self.progress.console.print(
            f"epoch {epoch}/{self.trainer.epochs}  {format_logs(logs)}", highlight=False
        )
        key = "val_loss" if "val_loss" in logs else "train_loss"
        self.progress.update(self.epochs_task, completed=epoch, status=f"{key} {logs[key]:.4f}")

    def on_train_end(self, logs: dict[str, Any]) -> None:
        self.progress.stop()


def make_progress(console: Console, quiet: bool = False) -> Callback | None:
    """The reporter that fits the console: live bar on a terminal, plain lines otherwise."""
    if quiet:
        return None
    return LiveProgress(console) if console.is_terminal else PlainProgress(console)

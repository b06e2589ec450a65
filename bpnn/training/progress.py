"""Progress reporting behind one small interface: a live rich bar on a terminal, one plain line
per epoch elsewhere (CI logs, pipes, ``TERM=dumb``), nothing when quiet.

A reporter is a training callback; it never changes what is trained. On a terminal each epoch's
line fits the width of the terminal (``epoch_line``): it first takes the short metric names of
``bpnn.metrics`` (``loss``, ``acc``, ``val_loss``, ``val_acc``), then fewer decimals, then drops
whole columns (time, learning rate, training metrics), and never breaks inside a word. Lines for
pipes and files are never shortened.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from numbers import Real
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.status import Status
from rich.text import Text

from bpnn.callbacks import Callback
from bpnn.metrics import format_value, metric_names, short_name

SEPARATOR = "  "


def _number(value: Any) -> bool:
    """A value a progress line can show (not a nested dict such as a health report)."""
    return isinstance(value, Real) and not isinstance(value, bool)


def _seconds(seconds: float) -> str:
    return f"{seconds:.2f}s" if seconds >= 0.1 else f"{seconds * 1000:.1f}ms"


def _columns(logs: dict[str, Any], short: bool, fewer_decimals: int) -> list[tuple[str, str]]:
    """``(key, "name value")`` for each value of one epoch shown in a progress line."""
    columns = [
        (key, f"{short_name(key) if short else key} {format_value(key, logs[key], fewer_decimals)}")
        for key in metric_names(splits=("train", "val"))
        if _number(logs.get(key))
    ]
    if _number(logs.get("lr")):
        columns.append(("lr", f"lr {logs['lr']:.3g}"))
    if _number(logs.get("epoch_seconds")):
        columns.append(("epoch_seconds", _seconds(logs["epoch_seconds"])))
    return columns


def _drop_order(keys: list[str]) -> list[str]:
    """The metric columns a narrow line gives up, first to last: the training metrics but the
    loss; the validation metrics after the second, the last first (a regression's ``val_rmse``,
    then ``val_r2``); the training loss; the second validation metric (``val_accuracy``,
    ``val_mae``). The validation loss stays (without a validation split, the training loss)."""
    train = [k for k in keys if k.startswith("train_")]
    val = [k for k in keys if k.startswith("val_")]
    order = [k for k in train if k != "train_loss"]
    if val:
        order += list(reversed(val[2:]))
        order += [k for k in train if k == "train_loss"]
        order += val[1:2]
    return order


def format_logs(logs: dict[str, Any]) -> str:
    """``train_loss 0.1234  val_accuracy 0.9700 ...`` for the metrics of one epoch, in full."""
    return SEPARATOR.join(text for _, text in _columns(logs, short=False, fewer_decimals=0))


def epoch_line(epoch: int, epochs: int, logs: dict[str, Any], width: int | None = None) -> str:
    """The line of one epoch, at most ``width`` characters when a width is given. Until it fits:
    short names (``loss``, ``acc``, ``val_loss``, ``val_acc``), no epoch time, one decimal fewer,
    no learning rate, then whole metric columns (see ``_drop_order``); as a last resort only the
    words that fit. A column is never cut inside a word."""
    prefix = f"epoch {epoch}/{epochs}"

    def line(short: bool, fewer: int, dropped: set[str]) -> str:
        columns = _columns(logs, short=short, fewer_decimals=fewer)
        return SEPARATOR.join([prefix] + [text for key, text in columns if key not in dropped])

    candidate = line(False, 0, set())
    if width is None or len(candidate) <= width:
        return candidate
    keys = [key for key, _ in _columns(logs, short=True, fewer_decimals=0)]
    steps = [(0, set()), (0, {"epoch_seconds"}), (1, {"epoch_seconds"})]
    dropped = {"epoch_seconds", "lr"}
    steps.append((1, set(dropped)))
    for key in _drop_order(keys):
        dropped.add(key)
        steps.append((1, set(dropped)))
    for fewer, without in steps:
        candidate = line(True, fewer, without)
        if len(candidate) <= width:
            return candidate
    words = candidate.split(" ")
    while len(words) > 1 and len(" ".join(words)) > width:
        words.pop()
    return " ".join(words).rstrip()


class PlainProgress(Callback):
    """One line per epoch, for logs that are not a terminal (never shortened)."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        self.console.print(
            epoch_line(epoch, self.trainer.epochs, logs),
            highlight=False,
            soft_wrap=True,
            markup=False,
        )


class SamplesPerSecond(ProgressColumn):
    """Training samples per second of a batch bar (its speed in batches times the batch size)."""

    def render(self, task: Task) -> Text:
        batch_size = task.fields.get("batch_size")
        speed = task.finished_speed or task.speed
        if not batch_size or speed is None:
            return Text("")
        return Text(f"{speed * batch_size:,.0f} samples/s", style="progress.data.speed")


class LiveProgress(Callback):
    """Rich bars over the epochs and the batches of the current epoch, with the elapsed time,
    the time remaining, samples per second and the running loss; before training a spinner
    says what is happening (``start``). Colours stay within the 16 standard ones."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress: Progress | None = None
        self.status: Status | None = None

    def _columns(self) -> list[ProgressColumn]:
        wide = self.console.width >= 100
        columns: list[ProgressColumn] = [
            SpinnerColumn(style="cyan", finished_text=" "),
            TextColumn("[bold]{task.description}"),
            BarColumn(
                bar_width=None if wide else 16,
                style="bright_black",
                complete_style="cyan",
                finished_style="green",
                pulse_style="cyan",
            ),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("eta"),
            TimeRemainingColumn(),
        ]
        if wide:
            columns.append(SamplesPerSecond())
        columns.append(TextColumn("{task.fields[status]}"))
        return columns

    def start(self, message: str) -> None:
        """Show a spinner with ``message`` (``loading data``) until training begins."""
        if self.status is None:
            self.status = self.console.status(message, spinner="dots", spinner_style="cyan")
            self.status.start()
        else:
            self.status.update(message)

    def stop(self) -> None:
        """Stop the live display (also after an error before training began)."""
        if self.status is not None:
            self.status.stop()
            self.status = None
        if self.progress is not None:
            self.progress.stop()
            self.progress = None

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        self.stop()
        self.progress = Progress(
            *self._columns(), console=self.console, transient=False, expand=False
        )
        self.progress.start()
        self.epochs_task = self.progress.add_task(
            "epochs", total=self.trainer.epochs, completed=self.trainer.start_epoch, status=""
        )
        self.batches_task = self.progress.add_task(
            "batches",
            total=self.trainer.batches_per_epoch,
            status="first batch (compiling)",
            batch_size=self.trainer.batch_size,
        )
        self.first_batch = True

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any]) -> None:
        assert self.progress is not None
        status = "first batch (compiling)" if self.first_batch else ""
        self.progress.reset(  # reset replaces the fields: the batch size goes back in
            self.batches_task,
            total=self.trainer.batches_per_epoch,
            status=status,
            batch_size=self.trainer.batch_size,
        )

    def on_batch_end(self, batch: int, logs: dict[str, Any]) -> None:
        assert self.progress is not None
        if self.first_batch or batch % 8 == 0 or batch == self.trainer.batches_per_epoch:
            self.first_batch = False
            self.progress.update(
                self.batches_task, completed=batch, status=f"loss {logs['running_loss']:.4f}"
            )

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        assert self.progress is not None
        # each epoch's metrics stay on screen above the bars, shortened to fit the terminal
        self.progress.console.print(
            epoch_line(epoch, self.trainer.epochs, logs, width=self.console.width),
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        key = "val_loss" if "val_loss" in logs else "train_loss"
        self.progress.update(
            self.epochs_task, completed=epoch, status=f"{short_name(key)} {logs[key]:.4f}"
        )

    def on_train_end(self, logs: dict[str, Any]) -> None:
        self.stop()


def make_progress(console: Console, quiet: bool = False) -> Callback | None:
    """The reporter that fits the console: live bars on a terminal, plain lines otherwise
    (pipes, files, ``TERM=dumb``); ``NO_COLOR`` is honoured by rich itself."""
    if quiet:
        return None
    if console.is_terminal and not console.is_dumb_terminal:
        return LiveProgress(console)
    return PlainProgress(console)


@contextmanager
def showing(progress: Callback | None, message: str) -> Iterator[None]:
    """Around a whole command: a spinner saying ``message`` until training begins (on a
    terminal), and the live display stopped however the command ends."""
    live = isinstance(progress, LiveProgress)
    if live:
        progress.start(message)
    try:
        yield
    finally:
        if live:
            progress.stop()

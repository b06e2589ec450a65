"""Progress output: epoch lines that fit the terminal at 60, 80, 100 and 160 columns (never
broken inside a word), no escape codes in pipes, 16-colour bars, NO_COLOR and TERM=dumb, and
`train --json` printing only the summary."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from bpnn.cli import app
from bpnn.metrics import format_value, is_headline, short_name
from bpnn.training.progress import (
    LiveProgress,
    PlainProgress,
    epoch_line,
    format_logs,
    make_progress,
)

runner = CliRunner()
ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
WIDTHS = (60, 80, 100, 160)

#: an MNIST epoch and a digits epoch as the trainer logs them (with a nested health report, which
#: progress lines leave out)
MNIST = {
    "epoch": 12,
    "train_loss": 0.0123456,
    "train_accuracy": 0.99612,
    "val_loss": 0.0712345,
    "val_accuracy": 0.98133,
    "lr": 0.000316227766,
    "epoch_seconds": 1.3456,
    "health": {"grad_norm": 0.5, "dead_relu": 0.1},
}
REGRESSION = {
    "epoch": 7,
    "train_loss": 0.3123,
    "val_loss": 0.4012,
    "val_mae": 43.123456,
    "val_r2": 0.53612,
    "lr": 0.001,
    "epoch_seconds": 0.0036,
}


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("logs", [MNIST, REGRESSION], ids=["mnist", "regression"])
def test_epoch_line_fits_the_width(width: int, logs: dict[str, Any]) -> None:
    line = epoch_line(logs["epoch"], 1000, logs, width=width)
    assert len(line) <= width
    assert line.startswith(f"epoch {logs['epoch']}/1000")
    assert "val_loss" in line  # the monitored metric is the last to go


def test_epoch_line_shortens_names_then_decimals_then_drops_columns() -> None:
    full = (
        "epoch 12/1000  train_loss 0.0123  train_accuracy 0.9961  val_loss 0.0712  "
        "val_accuracy 0.9813  lr 0.000316  1.35s"
    )
    assert epoch_line(12, 1000, MNIST) == full  # no width: a pipe or a file
    assert epoch_line(12, 1000, MNIST, width=160) == full
    assert epoch_line(12, 1000, MNIST, width=100) == (
        "epoch 12/1000  loss 0.0123  acc 0.9961  val_loss 0.0712  val_acc 0.9813  lr 0.000316  "
        "1.35s"
    )
    assert epoch_line(12, 1000, MNIST, width=80) == (
        "epoch 12/1000  loss 0.012  acc 0.996  val_loss 0.071  val_acc 0.981  lr 0.000316"
    )
    assert epoch_line(12, 1000, MNIST, width=60) == (
        "epoch 12/1000  loss 0.012  val_loss 0.071  val_acc 0.981"
    )
    assert epoch_line(12, 1000, MNIST, width=30) == "epoch 12/1000  val_loss 0.071"
    assert epoch_line(12, 1000, MNIST, width=20) == "epoch 12/1000"


def test_epoch_line_at_80_columns_uses_the_short_names() -> None:
    line = epoch_line(12, 1000, MNIST, width=80)
    assert " loss 0.012 " in line and " val_acc " in line and "train_" not in line
    assert len(line) <= 80


def test_progress_lines_leave_out_values_that_are_not_numbers() -> None:
    assert "health" not in format_logs(MNIST)
    assert "grad_norm" not in epoch_line(1, 2, MNIST, width=60)


class FakeTrainer(SimpleNamespace):
    pass


def run_reporter(reporter: Any, epochs: list[dict[str, Any]]) -> None:
    reporter.trainer = FakeTrainer(epochs=1000, start_epoch=0, batches_per_epoch=4, batch_size=8)
    reporter.on_train_begin({})
    for logs in epochs:
        reporter.on_epoch_begin(logs["epoch"], {"lr": logs["lr"]})
        for batch in range(1, 5):
            reporter.on_batch_end(batch, {"loss": 0.5, "running_loss": 0.5})
        reporter.on_epoch_end(logs["epoch"], logs)
    reporter.on_train_end({"stop_reason": "completed"})


@pytest.mark.parametrize("width", WIDTHS)
def test_live_progress_never_writes_a_line_longer_than_the_terminal(width: int) -> None:
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=True, color_system="standard")
    reporter = make_progress(console)
    assert isinstance(reporter, LiveProgress)
    run_reporter(reporter, [MNIST, {**MNIST, "epoch": 13}])
    text = ESCAPE.sub("", out.getvalue())
    lines = [line for chunk in text.split("\r") for line in chunk.split("\n")]
    assert max(len(line.rstrip()) for line in lines) <= width
    assert "epoch 13/1000" in text


def test_piped_output_has_no_escape_codes() -> None:
    out = io.StringIO()
    console = Console(file=out, width=80)
    reporter = make_progress(console)
    assert isinstance(reporter, PlainProgress)
    run_reporter(reporter, [MNIST])
    assert "\x1b" not in out.getvalue()
    assert out.getvalue().startswith("epoch 12/1000  train_loss 0.0123")  # full, for logs


def test_bars_use_no_red_in_a_16_colour_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, width=120, force_terminal=True, color_system="standard")
    reporter = LiveProgress(console)
    reporter.trainer = FakeTrainer(epochs=10, start_epoch=0, batches_per_epoch=4, batch_size=8)
    reporter.on_train_begin({})
    reporter.on_epoch_begin(1, {"lr": 0.1})
    reporter.on_batch_end(1, {"loss": 0.5, "running_loss": 0.5})
    assert reporter.progress is not None
    reporter.progress.refresh()
    reporter.on_train_end({})
    codes = re.findall(r"\x1b\[([0-9;]*)m", out.getvalue())
    assert codes, "the bars are coloured"
    for code in codes:
        assert not {"31", "91"} & set(code.split(";")), f"red in {code!r}"


def test_no_color_and_a_dumb_terminal_are_respected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    out = io.StringIO()
    reporter = LiveProgress(Console(file=out, width=120, force_terminal=True))
    run_reporter(reporter, [MNIST])
    for code in re.findall(r"\x1b\[([0-9;]*)m", out.getvalue()):  # bold, but no colour
        assert not [p for p in code.split(";") if p and 30 <= int(p) <= 107 and int(p) != 39]
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("TERM", "dumb")
    assert isinstance(
        make_progress(Console(file=io.StringIO(), force_terminal=True)), PlainProgress
    )


def test_the_spinner_says_what_happens_before_training() -> None:
    out = io.StringIO()
    reporter = LiveProgress(Console(file=out, width=100, force_terminal=True))
    reporter.start("loading data")
    assert reporter.status is not None
    reporter.stop()  # draws the spinner's last frame
    assert "loading data" in ESCAPE.sub("", out.getvalue())


TINY = "data: {source: xor, options: {n_samples: 64}}\nmodel: {hidden: [4]}\ntrain: {epochs: 3}\n"


def test_train_json_prints_only_the_summary(tmp_path: Path) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    result = runner.invoke(app, ["train", str(config), "--out", str(tmp_path / "run"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # the whole of stdout is one JSON object
    on_disk = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert set(summary) == set(on_disk) | {"run_dir"}
    assert summary["run_dir"] == str(tmp_path / "run")
    assert summary["epochs_run"] == 3 and summary["test_accuracy"] == on_disk["test_accuracy"]
    assert "epoch 3/3" in result.stderr  # progress still on stderr


def test_train_json_quiet_prints_nothing_on_stderr_but_the_run_directory(tmp_path: Path) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    args = ["train", str(config), "--out", str(tmp_path / "run"), "--json", "-q"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "epoch" not in result.stderr
    json.loads(result.stdout)


# --- widths: a regression's epoch line, samples per second, the summary -----------------------

REGRESSION_EPOCH = {
    "epoch": 7,
    "train_loss": 1.3466289,
    "val_loss": 0.7803606,
    "val_mae": 51.5088912,
    "val_r2": 0.1993844,
    "val_rmse": 67.1286985,
    "lr": 0.001,
    "epoch_seconds": 0.0017730,
}


@pytest.mark.parametrize("width", [60, 80])
def test_a_regression_epoch_line_keeps_the_training_loss_and_drops_r2_and_rmse_first(
    width: int,
) -> None:
    line = epoch_line(7, 100, REGRESSION_EPOCH, width=width)
    assert len(line) <= width
    assert " loss 1.347 " in line and " val_loss 0.780 " in line and " val_mae 51.509" in line
    assert "val_rmse" not in line
    assert epoch_line(7, 100, REGRESSION_EPOCH, width=80) == (
        "epoch 7/100  loss 1.347  val_loss 0.780  val_mae 51.509  val_r2 0.199"
    )


class Clock:
    """A clock that moves 10 ms each time it is read (for rich's speed estimate; no sleeping)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 0.01
        return self.now


@pytest.mark.parametrize("width", [99, 100, 120])
def test_samples_per_second_show_from_100_columns_in_every_epoch(width: int) -> None:
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=True, get_time=Clock())
    reporter = LiveProgress(console)
    reporter.trainer = FakeTrainer(epochs=3, start_epoch=0, batches_per_epoch=16, batch_size=8)
    reporter.on_train_begin({})
    shown = []
    for epoch in (1, 2, 3):
        reporter.on_epoch_begin(epoch, {})
        for batch in range(1, 17):
            reporter.on_batch_end(batch, {"loss": 0.5, "running_loss": 0.5})
        assert reporter.progress is not None
        shown.append(str(reporter.progress.columns[-2].render(reporter.progress.tasks[1])))
        reporter.on_epoch_end(epoch, {**MNIST, "epoch": epoch})
    reporter.on_train_end({})
    if width >= 100:
        assert all(re.fullmatch(r"[\d,]+ samples/s", text) for text in shown), shown
        assert "samples/s" in ESCAPE.sub("", out.getvalue())
    else:
        assert "samples/s" not in ESCAPE.sub("", out.getvalue())


REGRESSION_TINY = (
    "data: {source: diabetes, scale: standard}\nmodel: {hidden: [4]}\nloss: mse\n"
    "train: {epochs: 2}\n"
)


@pytest.mark.parametrize("config", [TINY, REGRESSION_TINY], ids=["classifier", "regression"])
@pytest.mark.parametrize("width", [60, 80, None], ids=["60", "80", "pipe"])
def test_the_summary_fits_the_width_and_shows_every_value_whole(
    tmp_path: Path, config: str, width: int | None
) -> None:
    path = tmp_path / "tiny.yaml"
    path.write_text(config)
    env = {"COLUMNS": str(width) if width else None}
    args = ["train", str(path), "--out", str(tmp_path / "run"), "-q"]
    result = CliRunner(env=env).invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    metrics = [  # the headline metrics; summary.json has the scores too
        key
        for key in summary
        if key.startswith("test_") and key != "test_samples" and is_headline(key)
    ]
    lines = result.stdout.splitlines()
    assert lines[-1] == f"run directory: {tmp_path / 'run'}"
    text = "\n".join(lines[:-1])
    for key in metrics:
        assert re.search(rf"\b{short_name(key)}\S* {format_value(key, summary[key])}\b", text)
    assert f"(best epoch {summary['best_epoch']} of {summary['epochs_run']}, " in text
    if width is None:  # a pipe: the full names on one line, as before
        assert all(f"{key} {format_value(key, summary[key])}" in lines[0] for key in metrics)
        assert "(best epoch" in lines[0]
    else:
        assert all(len(line) <= width for line in lines[:-1]), lines

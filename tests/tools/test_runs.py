"""Specification of ``bpnn runs`` (bpnn.tools.runs) and of ``bpnn plot`` over several runs: every
run directory is listed with how it ended, none is hidden, and curves overlay in one figure."""

from __future__ import annotations

import copy
import fcntl
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bpnn.callbacks import Callback
from bpnn.cli import app
from bpnn.config import validate
from bpnn.errors import ConfigError, TrainingError
from bpnn.metrics import metric_names
from bpnn.run import RunDirectory, run_training
from bpnn.tools.runs import COLUMNS, find_runs, is_locked, read_run, select

TINY: dict[str, Any] = {
    "name": "tiny",
    "seed": 0,
    "data": {"source": "iris"},
    "model": {"hidden": [8]},
    "optimizer": {"name": "adam", "lr": 0.01},
    "train": {"epochs": 3, "batch_size": 16},
}


class FailAtEpoch(Callback):
    """Raises as a diverging run does, after the first checkpoint."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if epoch == self.epoch:
            raise TrainingError("the training loss became nan at epoch 2, batch 1")


def config(**train: Any) -> Any:
    raw = copy.deepcopy(TINY)
    raw["train"].update(train)
    return validate(raw)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a completed, an early-stopped and a failed run."""
    root = tmp_path_factory.mktemp("runs")
    run_training(config(), root / "a-completed")
    run_training(
        config(epochs=20, early_stopping={"patience": 1, "min_delta": 10.0}),
        root / "b-early",
    )
    with pytest.raises(TrainingError):
        run_training(config(), root / "c-failed", progress=FailAtEpoch(2))
    return root


def test_runs_json_lists_every_kind_of_run(runs: Path):
    result = CliRunner().invoke(app, ["runs", str(runs), "--json"])
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert [r["name"] for r in records] == ["a-completed", "b-early", "c-failed"]
    assert all(list(r) == list(COLUMNS) for r in records)
    completed, early, failed = records
    assert completed["status"] == "completed" and completed["epochs"] == "3/3"
    assert completed["stop_reason"] == "completed"
    assert completed["best_metric"] == "val_loss" and completed["best_value"] > 0
    assert set(completed["test_metrics"]) == set(metric_names("multiclass", ("test",)))
    assert completed["data"] == "iris" and completed["architecture"] == "8 relu"
    assert completed["optimizer"] == "adam" and completed["lr"] == 0.01
    assert completed["seconds"] > 0
    assert early["status"] == "early-stopped" and early["epochs"] == "2/20"
    assert early["stop_reason"].startswith("early_stopping")
    assert failed["status"] == "failed" and failed["stop_reason"] == "error"
    assert failed["epochs"] == "2/3" and failed["test_metrics"] == {}


def test_a_run_without_summary_is_interrupted_and_a_locked_one_running(runs: Path, tmp_path: Path):
    run_training(config(), tmp_path / "run")
    (tmp_path / "run" / "summary.json").unlink()
    run = RunDirectory(tmp_path / "run")
    assert read_run(run)["status"] == "interrupted"
    fd = os.open(run.lock_path, os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert is_locked(run)
        assert read_run(run)["status"] == "running"
    finally:
        os.close(fd)
    assert not is_locked(run)  # a .lock nobody holds (a killed process) is not a live run
    assert read_run(run)["status"] == "interrupted"


def test_sort_and_filter_by_a_column(runs: Path):
    records = [read_run(run) for run in find_runs([runs])]
    by_epochs = select(records, sort="-name")
    assert [r["name"] for r in by_epochs] == ["c-failed", "b-early", "a-completed"]
    assert [r["name"] for r in select(records, ["status=failed"])] == ["c-failed"]
    assert [r["name"] for r in select(records, ["optimizer=adam", "status=completed"])] == [
        "a-completed"
    ]
    ranked = select(records, sort="-test_accuracy")
    assert ranked[-1]["name"] == "c-failed"  # no test metrics: last
    with pytest.raises(ConfigError, match="not a column"):
        select(records, sort="colour")
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        select(records, ["status"])


def test_runs_table_shows_every_run(runs: Path):
    result = CliRunner().invoke(app, ["runs", str(runs)])
    assert result.exit_code == 0, result.output
    for name in ("a-completed", "b-early", "c-failed", "early-stopped", "failed"):
        assert name in result.output


def test_runs_of_an_empty_folder_is_an_empty_list(tmp_path: Path):
    result = CliRunner().invoke(app, ["runs", str(tmp_path), "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout) == []


def test_plot_overlays_several_runs_in_one_figure_per_metric(runs: Path, tmp_path: Path):
    out = tmp_path / "compare.png"
    result = CliRunner().invoke(
        app, ["plot", str(runs / "a-completed"), str(runs / "b-early"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    written = [Path(line) for line in result.stdout.split()]
    assert written == [out, tmp_path / "compare-accuracy.png"]
    assert all(path.read_bytes().startswith(b"\x89PNG") for path in written)
    again = CliRunner().invoke(
        app, ["plot", str(runs / "a-completed"), str(runs / "b-early"), "--out", str(out)]
    )
    assert again.exit_code == 2  # never overwritten


def test_overlay_labels_each_curve_with_its_run_name(runs: Path, tmp_path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bpnn import plots

    histories = {
        name: RunDirectory(runs / name).read_metrics() for name in ("a-completed", "b-early")
    }
    captured: list[list[str]] = []
    original = plt.Figure.savefig

    def spy(figure: Any, *args: Any, **kwargs: Any) -> None:
        captured.append([t.get_text() for t in figure.axes[0].get_legend().get_texts()])
        original(figure, *args, **kwargs)

    plt.Figure.savefig = spy
    try:
        plots.plot_overlay(histories, tmp_path / "o.png")
    finally:
        plt.Figure.savefig = original
    assert captured[0] == [
        "a-completed (train)",
        "a-completed (val)",
        "b-early (train)",
        "b-early (val)",
    ]


def test_plot_of_one_run_still_redraws_its_plots_folder(runs: Path):
    result = CliRunner().invoke(app, ["plot", str(runs / "a-completed")])
    assert result.exit_code == 0, result.output
    assert (runs / "a-completed" / "plots" / "loss.png").is_file()
    assert (runs / "a-completed" / "plots" / "health.png").is_file()


def test_runs_reads_a_run_config_with_the_config_readers_limits(
    tmp_path, tiny_config_file, run_cli
) -> None:
    """A run's config.yaml is input like any other: an alias bomb or a garbage value in it
    leaves that run's columns empty (fast, no traceback) instead of expanding it."""
    config = tiny_config_file(train={"epochs": 1})
    runs = tmp_path / "runs"
    assert run_cli("train", config, "--out", runs / "bomb", "-q").returncode == 0
    shutil.copytree(runs / "bomb", runs / "garbage")
    laughs = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    laughs += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    (runs / "bomb" / "config.yaml").write_text("\n".join(laughs) + "\n", encoding="utf-8")
    (runs / "garbage" / "config.yaml").write_text("optimizer: 3\ntrain: [1]\n", encoding="utf-8")
    result = run_cli("runs", runs, "--json", timeout=30)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    listed = {row["name"]: row for row in json.loads(result.stdout)}
    assert set(listed) == {"bomb", "garbage"}
    assert listed["bomb"]["optimizer"] is None and listed["garbage"]["lr"] is None

"""`train.checkpoint_every`: last.npz every N epochs and at the end however training ends,
best.npz before it when the best moved, and a resume after a kill between two checkpoints that
is the uninterrupted run, bit for bit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from bpnn.callbacks import Callback
from bpnn.checkpoint import load
from bpnn.cli import app
from bpnn.config import validate
from bpnn.run import RunDirectory, run_training
from tests.support import REPO

runner = CliRunner()
CONFIG = """
data: {source: digits}
model: {hidden: [16], dropout: 0.3}
optimizer: {name: adam, lr: 0.01}
schedule: {name: reduce_on_plateau, patience: 1, factor: 0.5}
train: {epochs: 8, batch_size: 64, checkpoint_every: 3, early_stopping: {patience: 20}}
"""


def metrics(run: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("epoch_seconds")
    return rows


def assert_same_run(a: Path, b: Path) -> None:
    assert metrics(a) == metrics(b)
    for which in ("last", "best"):
        with (
            np.load(a / "checkpoints" / f"{which}.npz") as x,
            np.load(b / "checkpoints" / f"{which}.npz") as y,
        ):
            assert sorted(x.files) == sorted(y.files)
            for key in x.files:
                if key.startswith(("param/", "optimizer/", "schedule/")):
                    np.testing.assert_array_equal(x[key], y[key], err_msg=f"{which} {key}")
    summary_a = json.loads((a / "summary.json").read_text())
    summary_b = json.loads((b / "summary.json").read_text())
    assert summary_a["test_loss"] == summary_b["test_loss"]
    assert summary_a["best_epoch"] == summary_b["best_epoch"]


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "every.yaml"
    path.write_text(CONFIG)
    return path


def train_killed_at(config_file: Path, out: Path, point: str) -> None:
    env = {**os.environ, "BPNN_CRASH_AT": point, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "bpnn", "train", str(config_file), "--out", str(out), "-q"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == -9, done.stderr


def test_last_npz_is_written_every_n_epochs_and_at_the_end(tmp_path: Path, monkeypatch):
    writes: list[tuple[str, int]] = []
    save = RunDirectory.save_checkpoint

    def spy(self: RunDirectory, which: str, contents: Any) -> None:
        writes.append((which, contents.epoch))
        save(self, which, contents)

    monkeypatch.setattr(RunDirectory, "save_checkpoint", spy)
    config = validate(
        {
            "data": {"source": "xor", "options": {"n_samples": 64}},
            "model": {"hidden": [4]},
            "train": {"epochs": 8, "checkpoint_every": 3},
        }
    )
    run_training(config, tmp_path / "run")
    assert [epoch for which, epoch in writes if which == "last"] == [3, 6, 8]
    best = [epoch for which, epoch in writes if which == "best"]
    assert best and all(epoch in (3, 6, 8) for epoch in best)  # only at checkpoints
    assert load(tmp_path / "run" / "checkpoints" / "last.npz").epoch == 8


class InterruptAt(Callback):
    """Ctrl-C right after epoch ``epoch`` is logged."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_an_interrupted_run_saves_its_last_finished_epoch(config_file: Path, tmp_path: Path):
    from bpnn.config import load_config

    with pytest.raises(KeyboardInterrupt):
        run_training(load_config(config_file), tmp_path / "run", progress=InterruptAt(5))
    assert load(tmp_path / "run" / "checkpoints" / "last.npz").epoch == 5


def test_resume_after_a_kill_between_checkpoints_is_the_uninterrupted_run(
    config_file: Path, tmp_path: Path
):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert runner.invoke(app, ["train", str(config_file), "--out", str(whole), "-q"]).exit_code == 0
    train_killed_at(config_file, killed, "metrics:written@5")
    assert load(killed / "checkpoints" / "last.npz").epoch == 3
    assert [row["epoch"] for row in metrics(killed)] == [1, 2, 3, 4, 5]

    result = runner.invoke(app, ["resume", str(killed), "-q"])
    assert result.exit_code == 0, result.output
    assert_same_run(whole, killed)


def test_resume_after_a_kill_between_best_and_last_is_the_uninterrupted_run(
    config_file: Path, tmp_path: Path
):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert runner.invoke(app, ["train", str(config_file), "--out", str(whole), "-q"]).exit_code == 0
    train_killed_at(config_file, killed, "last:written@2")  # epoch 6: best.npz renamed, last not
    assert load(killed / "checkpoints" / "last.npz").epoch == 3
    assert load(killed / "checkpoints" / "best.npz").epoch > 3  # best.npz is ahead of last.npz

    result = runner.invoke(app, ["resume", str(killed), "-q"])
    assert result.exit_code == 0, result.output
    assert_same_run(whole, killed)


def test_sigterm_checkpoints_the_last_finished_epoch_and_exits_143(tmp_path: Path):
    config = tmp_path / "long.yaml"
    config.write_text(
        "data: {source: xor, options: {n_samples: 64}}\nmodel: {hidden: [4]}\n"
        "train: {epochs: 100000, checkpoint_every: 100000}\n"
    )
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "bpnn", "train", str(config), "--out", str(run)]
    with subprocess.Popen(
        command, cwd=REPO, env=env, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as process:
        assert process.stderr is not None
        for line in process.stderr:
            if line.startswith("epoch 3/"):
                break
        process.terminate()
        process.communicate(timeout=120)
    assert process.returncode == 143  # SIGTERM: EXIT_CODES
    done = load(run / "checkpoints" / "last.npz").epoch
    assert done >= 3
    assert [row["epoch"] for row in metrics(run)][-1] == done  # nothing after the checkpoint
    result = runner.invoke(app, ["resume", str(run), "--epochs", str(done + 2), "-q"])
    assert result.exit_code == 0, result.output

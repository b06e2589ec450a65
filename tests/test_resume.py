"""`bpnn resume`: a run continued from last.npz is the run that was never interrupted."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from bpnn.cli import app

runner = CliRunner()
CONFIG = """
data: {source: digits}
model: {hidden: [16], dropout: 0.3}
optimizer: {name: adam, lr: 0.01}
schedule: {name: reduce_on_plateau, patience: 1, factor: 0.5}
train: {epochs: 6, batch_size: 64, early_stopping: {patience: 20}}
"""


def metrics(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("epoch_seconds")
    return rows


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "resume.yaml"
    path.write_text(CONFIG)
    return path


def train(config_file: Path, out: Path, *overrides: str) -> None:
    args = ["train", str(config_file), "--out", str(out), "--quiet"]
    for override in overrides:
        args += ["--set", override]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output


def test_resumed_run_equals_the_uninterrupted_run_bit_for_bit(config_file: Path, tmp_path: Path):
    whole, split = tmp_path / "whole", tmp_path / "split"
    train(config_file, whole)
    train(config_file, split, "train.epochs=3")
    result = runner.invoke(app, ["resume", str(split), "--epochs", "6", "--quiet"])
    assert result.exit_code == 0, result.output

    assert metrics(split) == metrics(whole)  # dropout, shuffling, plateau lr and early stopping
    with (
        np.load(whole / "checkpoints" / "last.npz") as a,
        np.load(split / "checkpoints" / "last.npz") as b,
    ):
        for key in a.files:
            if key.startswith(("param/", "optimizer/", "schedule/")):
                np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    summary_whole = json.loads((whole / "summary.json").read_text())
    summary_split = json.loads((split / "summary.json").read_text())
    assert summary_split["test_accuracy"] == summary_whole["test_accuracy"]
    assert "epochs: 6" in (split / "config.yaml").read_text()


def test_resume_appends_to_metrics_and_never_rewrites_them(config_file: Path, tmp_path: Path):
    run = tmp_path / "run"
    train(config_file, run, "train.epochs=2")
    before = (run / "metrics.jsonl").read_text()
    assert runner.invoke(app, ["resume", str(run), "--epochs", "4", "-q"]).exit_code == 0
    after = (run / "metrics.jsonl").read_text()
    assert after.startswith(before)
    assert [row["epoch"] for row in metrics(run)] == [1, 2, 3, 4]


def test_resume_restores_a_metrics_line_lost_after_the_checkpoint(
    config_file: Path, tmp_path: Path
):
    run = tmp_path / "run"
    train(config_file, run, "train.epochs=3")
    lines = (run / "metrics.jsonl").read_text().splitlines(keepends=True)
    (run / "metrics.jsonl").write_text("".join(lines[:-1]))  # a crash between the two writes
    assert runner.invoke(app, ["resume", str(run), "--epochs", "4", "-q"]).exit_code == 0
    assert [row["epoch"] for row in metrics(run)] == [1, 2, 3, 4]


def test_resume_of_a_finished_run_asks_for_more_epochs(config_file: Path, tmp_path: Path):
    run = tmp_path / "run"
    train(config_file, run, "train.epochs=2")
    result = runner.invoke(app, ["resume", str(run)])
    assert result.exit_code == 1
    assert "already trained 2 of 2 epochs" in result.output
    assert "Traceback" not in result.output


def test_resume_refuses_to_stretch_a_cosine_schedule(config_file: Path, tmp_path: Path):
    run = tmp_path / "run"
    train(config_file, run, "train.epochs=2", "schedule=cosine")
    result = runner.invoke(app, ["resume", str(run), "--epochs", "4"])
    assert result.exit_code == 1
    assert "cosine" in result.output
    assert [row["epoch"] for row in metrics(run)] == [1, 2]


def test_resume_of_a_folder_that_is_not_a_run_is_a_one_line_error(tmp_path: Path):
    result = runner.invoke(app, ["resume", str(tmp_path)])
    assert result.exit_code == 1
    assert "not a bpnn run directory" in result.output

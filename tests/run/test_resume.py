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
    assert result.exit_code == 2  # a resume that refuses: bad input
    assert "already trained 2 of 2 epochs" in result.output
    assert "Traceback" not in result.output


def test_resume_refuses_to_stretch_a_cosine_schedule(config_file: Path, tmp_path: Path):
    run = tmp_path / "run"
    train(config_file, run, "train.epochs=2", "schedule=cosine")
    result = runner.invoke(app, ["resume", str(run), "--epochs", "4"])
    assert result.exit_code == 2  # a resume that refuses: bad input
    assert "cosine" in result.output
    assert [row["epoch"] for row in metrics(run)] == [1, 2]


def test_resume_of_a_folder_that_is_not_a_run_is_a_one_line_error(tmp_path: Path):
    result = runner.invoke(app, ["resume", str(tmp_path)])
    assert result.exit_code == 2  # a resume that refuses: bad input
    assert "not a bpnn run directory" in result.output


# --- a config.yaml that differs from the checkpoint's is refused, and nothing is written ----------


def snapshot(run: Path) -> dict[str, bytes]:
    """Every file of a run directory (hidden ones too) with its bytes."""
    return {str(p.relative_to(run)): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


@pytest.fixture
def short_run(config_file: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    train(config_file, run, "train.epochs=2")
    return run


@pytest.mark.parametrize(
    ("old", "new", "keys"),
    [
        ("hidden:\n  - 16\n", "hidden:\n  - 32\n", "model.hidden"),
        ("hidden:\n  - 16\n", "hidden:\n  - 16\n  - 8\n", "model.hidden"),
        ("activation: relu", "activation: tanh", "model.activation"),
        ("lr: 0.01", "lr: 0.02", "optimizer.lr"),
        ("  dropout: 0.3\n", "", "model.dropout"),  # a key removed is its default: 0.0
        ("seed: 0", "seed: 1", "seed"),
        ("batch_size: 64", "batch_size: 32", "train.batch_size"),
        ("epochs: 2", "epochs: 5", "train.epochs"),
    ],
)
def test_resume_refuses_an_edited_config_naming_the_key_and_changes_nothing(
    short_run: Path, old: str, new: str, keys: str
):
    text = (short_run / "config.yaml").read_text()
    assert old in text
    (short_run / "config.yaml").write_text(text.replace(old, new, 1))
    before = snapshot(short_run)
    result = runner.invoke(app, ["resume", str(short_run), "--epochs", "4", "--quiet"])
    if keys == "train.epochs":  # --epochs 4 is not what config.yaml says: refused as well
        result = runner.invoke(app, ["resume", str(short_run), "--quiet"])
    assert result.exit_code == 2  # a resume that refuses: bad input
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert "differs from the checkpoint's config in " + keys in lines[0]
    assert snapshot(short_run) == before


def test_resume_names_every_edited_key(short_run: Path):
    text = (short_run / "config.yaml").read_text()
    edited = text.replace("activation: relu", "activation: tanh").replace("lr: 0.01", "lr: 0.5")
    (short_run / "config.yaml").write_text(edited)
    before = snapshot(short_run)
    result = runner.invoke(app, ["resume", str(short_run), "--epochs", "4", "--quiet"])
    assert result.exit_code == 2  # a resume that refuses: bad input
    assert "model.activation, optimizer.lr;" in result.output
    assert snapshot(short_run) == before


def test_resume_says_to_pass_epochs_when_only_the_epochs_were_edited(short_run: Path):
    config = short_run / "config.yaml"
    config.write_text(config.read_text().replace("epochs: 2", "epochs: 4"))
    before = snapshot(short_run)
    result = runner.invoke(app, ["resume", str(short_run), "--quiet"])
    assert result.exit_code == 2  # a resume that refuses: bad input
    assert "train.epochs; to train longer pass --epochs 4" in result.output
    assert snapshot(short_run) == before
    assert runner.invoke(app, ["resume", str(short_run), "--epochs", "4", "-q"]).exit_code == 0
    assert [row["epoch"] for row in metrics(short_run)] == [1, 2, 3, 4]


def test_resume_refuses_a_config_yaml_that_is_no_config_and_changes_nothing(short_run: Path):
    (short_run / "config.yaml").write_text("model: {hidden: [16}\n")
    before = snapshot(short_run)
    result = runner.invoke(app, ["resume", str(short_run), "--epochs", "4", "--quiet"])
    assert result.exit_code == 2  # a resume that refuses: bad input
    assert len(result.output.strip().splitlines()) == 1
    assert result.output.count("config.yaml") == 1 and "not resuming" in result.output
    assert snapshot(short_run) == before


def test_resume_accepts_a_config_yaml_that_says_the_same_in_other_words(short_run: Path):
    config = short_run / "config.yaml"
    text = "# my notes\n" + config.read_text().replace(
        "activation: relu", "activation: {name: relu}"
    )
    config.write_text(text)
    assert runner.invoke(app, ["resume", str(short_run), "--epochs", "3", "-q"]).exit_code == 0
    assert [row["epoch"] for row in metrics(short_run)] == [1, 2, 3]


def test_refused_resumes_of_a_finished_run_change_nothing(short_run: Path):
    before = snapshot(short_run)
    for args in (["resume", str(short_run)], ["resume", str(short_run), "--epochs", "1"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2  # a resume that refuses: bad input
        assert len(result.output.strip().splitlines()) == 1
    assert snapshot(short_run) == before

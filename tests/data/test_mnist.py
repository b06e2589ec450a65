"""End to end on the real MNIST files in ../shared/data/mnist, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bpnn.cli import app
from tests.support import REPO

MNIST = REPO.parent / "shared" / "data" / "mnist"
CONFIG = REPO / "configs" / "mnist.yaml"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not MNIST.is_dir(), reason="../shared/data/mnist is not beside the repo"),
]


def train(out: Path, *overrides: str) -> dict:
    args = ["train", str(CONFIG), "--out", str(out), "--quiet"]
    for override in overrides:
        args += ["--set", override]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return json.loads((out / "summary.json").read_text())


def test_two_epochs_on_mnist_reach_95_percent(tmp_path: Path) -> None:
    summary = train(tmp_path / "run", "train.epochs=2", "model.dropout=0.0")
    assert summary["train_samples"] == 54_000
    assert summary["test_samples"] == 10_000
    assert summary["test_accuracy"] >= 0.95


def test_configs_mnist_reaches_98_2_percent(tmp_path: Path) -> None:
    summary = train(tmp_path / "run")
    assert summary["test_accuracy"] >= 0.982
    # the checkpoint evaluates to the same numbers from the CLI
    result = CliRunner().invoke(app, ["eval", str(tmp_path / "run/checkpoints/best.npz"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["test_accuracy"] == summary["test_accuracy"]

"""Every component name the config accepts trains from a config, end to end.

One short run per activation, loss, initializer, optimizer, schedule and regularizer, through
``load_config`` -> ``run_training``: the name is found, its options reach the engine, the run
directory is complete and the loss is finite.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bpnn.config import load_config
from bpnn.nn.activations import ACTIVATIONS
from bpnn.nn.initializers import INITIALIZERS
from bpnn.nn.losses import LOSSES
from bpnn.nn.optimizers import OPTIMIZERS
from bpnn.nn.schedules import SCHEDULES
from bpnn.run import run_training

CLASSIFICATION = (
    "data: {source: iris}\nmodel: {hidden: [8, 6]}\noptimizer: {lr: 0.01}\n"
    "train: {epochs: 3, batch_size: 16}\n"
)
REGRESSION = (
    "data: {source: diabetes}\nloss: mse\nmodel: {hidden: [8]}\n"
    "train: {epochs: 3, batch_size: 16}\n"
)


def train(tmp_path: Path, base: str, *overrides: str) -> tuple[dict, list[dict]]:
    config_file = tmp_path / "config.yaml"
    config_file.write_text(base)
    config = load_config(config_file, overrides)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    _, summary = run_training(config, run_dir)
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert (run_dir / "checkpoints" / "best.npz").is_file()
    assert all(np.isfinite(row["train_loss"]) for row in metrics)
    return summary, metrics


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_every_activation_trains_from_a_config(tmp_path: Path, activation: str) -> None:
    summary, _ = train(tmp_path, CLASSIFICATION, f"model.activation={activation}")
    assert summary["test_accuracy"] > 1 / 3  # better than chance on iris after 3 epochs


def test_per_layer_activations_reach_the_network(tmp_path: Path) -> None:
    from bpnn import load_checkpoint

    train(tmp_path, CLASSIFICATION, "model.activations=[tanh, {name: leaky_relu, slope: 0.2}]")
    model = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.npz")
    names = [type(a).__name__ for a in model.network.activations]
    assert names == ["Tanh", "LeakyReLU"]
    assert model.network.activations[1].slope == 0.2


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_every_loss_trains_from_a_config(tmp_path: Path, loss: str) -> None:
    if LOSSES[loss].task == "regression":
        summary, _ = train(tmp_path, REGRESSION, f"loss={loss}")
        assert "test_mae" in summary and "test_r2" in summary
    elif LOSSES[loss].task == "binary":
        summary, _ = train(tmp_path, CLASSIFICATION, f"loss={loss}", "data.source=breast_cancer")
        assert summary["test_accuracy"] > 0.5
    else:
        summary, _ = train(tmp_path, CLASSIFICATION, f"loss={loss}")
        assert summary["test_accuracy"] > 1 / 3


def test_cross_entropy_options_reach_the_loss(tmp_path: Path) -> None:
    from bpnn import load_checkpoint

    train(
        tmp_path,
        CLASSIFICATION,
        "loss={name: cross_entropy, label_smoothing: 0.1, class_weights: [1, 2, 3]}",
    )
    loss = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.npz").network.loss
    assert loss.label_smoothing == 0.1
    assert loss.class_weights == [1.0, 2.0, 3.0]


@pytest.mark.parametrize("init", sorted(INITIALIZERS))
def test_every_initializer_trains_from_a_config(tmp_path: Path, init: str) -> None:
    train(tmp_path, CLASSIFICATION, f"model.init={init}")


@pytest.mark.parametrize("optimizer", sorted(OPTIMIZERS))
def test_every_optimizer_trains_from_a_config(tmp_path: Path, optimizer: str) -> None:
    _, metrics = train(tmp_path, CLASSIFICATION, f"optimizer.name={optimizer}", "optimizer.lr=0.05")
    assert metrics[-1]["train_loss"] < metrics[0]["train_loss"] * 1.5


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
def test_every_schedule_trains_from_a_config(tmp_path: Path, schedule: str) -> None:
    _, metrics = train(
        tmp_path, CLASSIFICATION, f"schedule.name={schedule}", "schedule.warmup_epochs=1"
    )
    assert metrics[0]["lr"] == pytest.approx(0.01)  # one warmup epoch ends at the base lr


def test_step_schedule_lrs_go_to_metrics(tmp_path: Path) -> None:
    _, metrics = train(
        tmp_path,
        CLASSIFICATION,
        "schedule={name: step, step_size: 1, gamma: 0.5}",
        "train.epochs=3",
    )
    assert [row["lr"] for row in metrics] == pytest.approx([0.01, 0.005, 0.0025])


@pytest.mark.parametrize(
    "override",
    [
        "model.batch_norm=true",
        "model.dropout=0.3",
        "model.dropout=[0.1, 0.5]",
        "train.grad_clip=0.5",
        "optimizer.weight_decay=0.01",
        "train.early_stopping={patience: 1}",
        "train.dtype=float64",
    ],
)
def test_every_regularizer_trains_from_a_config(tmp_path: Path, override: str) -> None:
    train(tmp_path, CLASSIFICATION, override)


def test_batch_norm_running_statistics_are_saved_in_the_checkpoint(tmp_path: Path) -> None:
    from bpnn import load_checkpoint

    train(tmp_path, CLASSIFICATION, "model.batch_norm=true")
    model = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.npz")
    buffers = model.network.buffers()
    assert set(buffers) == {
        "0.bn_running_mean",
        "0.bn_running_var",
        "1.bn_running_mean",
        "1.bn_running_var",
    }
    assert not np.allclose(buffers["0.bn_running_mean"], 0)  # moved away from the initial zeros

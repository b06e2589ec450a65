"""Specification of training (bpnn.training.trainer): the epoch loop, its callbacks, and a whole run
from a config to a run directory. Tiny data (iris, 108 training samples) and a few epochs
throughout."""

from __future__ import annotations

import copy
import io
import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from bpnn import checkpoint
from bpnn.callbacks import Callback, Checkpointer, EarlyStopping, MetricsWriter
from bpnn.config import Config, validate
from bpnn.data import load_dataset
from bpnn.errors import OutputError, TrainingError
from bpnn.metrics import is_improvement
from bpnn.metrics import mode_of as monitor_mode
from bpnn.model import make_seeds
from bpnn.nn.network import Network
from bpnn.run import RunDirectory, build_model, make_trainer, run_training
from bpnn.training.progress import LiveProgress, PlainProgress, make_progress
from bpnn.training.trainer import Trainer

TINY: dict[str, Any] = {
    "name": "tiny",
    "seed": 0,
    "data": {"source": "iris"},
    "model": {"hidden": [8]},
    "optimizer": {"name": "adam", "lr": 0.01},
    "train": {"epochs": 3, "batch_size": 16},
}
BATCHES_PER_EPOCH = 7  # ceil(108 / 16)


def tiny(**sections: dict[str, Any] | Any) -> Config:
    """The tiny iris config with ``sections`` merged in (one level deep)."""
    raw = copy.deepcopy(TINY)
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key].update(value)
        else:
            raw[key] = value
    return validate(raw)


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    lines = (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def without_timings(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != "epoch_seconds"} for row in rows]


def trainer_for(config: Config, callbacks: list[Callback]) -> Trainer:
    """A Trainer as run_training builds it, with only the given callbacks."""
    data = load_dataset(config.data, task=config.task, seed=config.seed)
    init_rng, shuffle_rng = make_seeds(config.seed)
    model = build_model(config, data, init_rng)
    return make_trainer(config, model, data, shuffle_rng, callbacks)


def scripted_validation(monkeypatch: pytest.MonkeyPatch, **series: list[float]) -> None:
    """Make epoch k's validation metrics report ``series[key][k - 1]`` (the rest stays real)."""
    import bpnn.training.trainer as train_module

    real = train_module.evaluate
    epochs_seen = [0]

    def scripted(
        model: Any,
        X: np.ndarray,
        y: np.ndarray,
        prefix: str = "",
        scores: bool = True,
        weights: Any = None,
    ) -> dict[str, float]:
        metrics = real(model, X, y, prefix, scores, weights)
        if prefix == "val_":
            for key, values in series.items():
                metrics[key] = values[epochs_seen[0]]
            epochs_seen[0] += 1
        return metrics

    monkeypatch.setattr(train_module, "evaluate", scripted)


class Recorder(Callback):
    """Keeps a copy of the parameters and the logs at the end of every epoch."""

    def __init__(self) -> None:
        self.params: dict[int, np.ndarray] = {}
        self.logs: list[dict[str, Any]] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        self.params[epoch] = self.trainer.network.params.copy()
        self.logs.append(dict(logs))


# --- a whole run ------------------------------------------------------------------------------


def test_run_writes_config_metrics_checkpoints_summary_and_plots(tmp_path: Path) -> None:
    config = tiny()
    _, summary = run_training(config, tmp_path)

    assert validate(json.loads(json.dumps(config.resolved()))) == config
    import yaml

    assert validate(yaml.safe_load((tmp_path / "config.yaml").read_text())) == config
    rows = read_metrics(tmp_path)
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    for row in rows:
        assert set(row) == {
            "epoch",
            "train_loss",
            "train_accuracy",
            "val_loss",
            "val_accuracy",
            "lr",
            "epoch_seconds",
            "health",  # train.health, on by default
        }
    assert (tmp_path / "checkpoints" / "last.npz").is_file()
    assert (tmp_path / "checkpoints" / "best.npz").is_file()
    assert (tmp_path / "plots" / "loss.png").stat().st_size > 0
    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    assert summary["epochs_run"] == 3
    assert summary["stop_reason"] == "completed"
    assert summary["train_samples"] + summary["val_samples"] + summary["test_samples"] == 150
    assert 0 <= summary["test_accuracy"] <= 1 and summary["test_loss"] > 0


def test_callbacks_hold_the_trainer_only_while_fit_runs() -> None:
    seen: list[Trainer] = []

    class Watcher(Callback):
        def on_train_begin(self, logs: dict[str, Any]) -> None:
            seen.append(self.trainer)

    watcher = Watcher()
    trainer = trainer_for(tiny(train={"epochs": 1}), [watcher])
    assert not hasattr(watcher, "trainer")
    trainer.fit()
    assert seen == [trainer]
    assert not hasattr(watcher, "trainer")  # nothing keeps a finished trainer (and its data)


@pytest.mark.parametrize("resume", [False, True])
def test_the_training_arrays_are_freed_before_testing_and_plotting(
    resume: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's peak memory is its training: the test evaluation and matplotlib come after the
    training and validation arrays are gone."""
    import gc
    import weakref

    import bpnn.run.pipeline as pipeline
    import bpnn.run.resume as resume

    loaded: list[weakref.ref] = []
    real_load, real_finish = pipeline.load_data, pipeline.finish_run

    def load(*args: Any, **kwargs: Any) -> Any:
        data = real_load(*args, **kwargs)
        loaded.extend([weakref.ref(data.X_train), weakref.ref(data.X_val)])
        return data

    def finish(*args: Any, **kwargs: Any) -> Any:
        # freed at once, by reference counting, not by a later garbage collection
        assert loaded and all(ref() is None for ref in loaded)
        return real_finish(*args, **kwargs)

    for module in (pipeline, resume):  # each module's own reference is the one it calls
        monkeypatch.setattr(module, "load_data", load)
        monkeypatch.setattr(module, "finish_run", finish)
    progress = PlainProgress(Console(file=io.StringIO()))  # held by the caller, as the CLI does
    gc.disable()
    try:
        run_training(tiny(), tmp_path / "run", progress=progress)
        if resume:
            loaded.clear()
            resume.resume_training(tmp_path / "run", epochs=5, progress=progress)
    finally:
        gc.enable()
    assert (tmp_path / "run" / "plots" / "loss.png").is_file()


def test_callbacks_let_go_of_the_trainer_when_fit_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    watcher = Callback()
    trainer = trainer_for(tiny(train={"epochs": 2}), [watcher])

    def failing_epoch(epoch: int, lr: float) -> dict[str, float]:
        raise TrainingError("the loss became nan")

    monkeypatch.setattr(trainer, "train_epoch", failing_epoch)
    with pytest.raises(TrainingError):
        trainer.fit()
    assert not hasattr(watcher, "trainer")


def test_best_checkpoint_is_the_epoch_with_the_lowest_validation_loss(tmp_path: Path) -> None:
    _, summary = run_training(tiny(optimizer={"lr": 0.5}, train={"epochs": 5}), tmp_path)
    rows = read_metrics(tmp_path)
    best = min(rows, key=lambda row: row["val_loss"])
    assert summary["best_epoch"] == best["epoch"]
    assert summary["best_val_loss"] == best["val_loss"]
    assert checkpoint.load(tmp_path / "checkpoints" / "best.npz").epoch == best["epoch"]
    assert checkpoint.load(tmp_path / "checkpoints" / "last.npz").epoch == 5


def test_same_config_and_seed_give_bit_identical_metrics(tmp_path: Path) -> None:
    config = tiny(model={"dropout": 0.2})  # dropout draws from the seeded generator too
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    _, first = run_training(config, tmp_path / "a")
    _, second = run_training(config, tmp_path / "b")
    assert without_timings(read_metrics(tmp_path / "a")) == without_timings(
        read_metrics(tmp_path / "b")
    )
    assert {k: v for k, v in first.items() if k != "total_seconds"} == {
        k: v for k, v in second.items() if k != "total_seconds"
    }
    params_a = checkpoint.load(tmp_path / "a" / "checkpoints" / "last.npz").params
    params_b = checkpoint.load(tmp_path / "b" / "checkpoints" / "last.npz").params
    for name in params_a:
        np.testing.assert_array_equal(params_a[name], params_b[name])


def test_different_seed_gives_different_metrics(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    run_training(tiny(seed=0), tmp_path / "a")
    run_training(tiny(seed=1), tmp_path / "b")
    a, b = read_metrics(tmp_path / "a"), read_metrics(tmp_path / "b")
    assert all(x["train_loss"] != y["train_loss"] for x, y in zip(a, b, strict=True))


def test_run_without_validation_split_monitors_the_training_loss(tmp_path: Path) -> None:
    _, summary = run_training(tiny(data={"val_fraction": 0}), tmp_path)
    rows = read_metrics(tmp_path)
    assert "val_loss" not in rows[0]
    assert summary["val_samples"] == 0
    assert summary["best_train_loss"] == min(row["train_loss"] for row in rows)


def test_regression_run_reports_mae_and_r2(tmp_path: Path) -> None:
    config = tiny(data={"source": "diabetes"}, loss="mse")
    _, summary = run_training(config, tmp_path)
    assert {"test_loss", "test_mae", "test_r2"} <= set(summary)
    assert "test_accuracy" not in summary
    row = read_metrics(tmp_path)[0]
    assert {"val_mae", "val_r2"} <= set(row) and "train_accuracy" not in row
    assert summary["test_mae"] > 1  # in the data's units (targets 25..346), not standardized


# --- divergence -------------------------------------------------------------------------------


class PoisonAfter(Callback):
    """Turns the weights into NaN at the end of epoch ``epoch``."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if epoch == self.epoch:
            self.trainer.network.params[...] = np.nan


def test_nan_loss_stops_training_at_once_with_a_training_error(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    recorder = Recorder()
    trainer = trainer_for(
        tiny(train={"epochs": 5}), [MetricsWriter(RunDirectory(tmp_path)), PoisonAfter(2), recorder]
    )
    with pytest.raises(TrainingError, match="became nan at epoch 3, batch 1") as caught:
        trainer.fit()
    assert "\n" not in str(caught.value)
    assert len(path.read_text().splitlines()) == 2
    assert len(recorder.logs) == 2
    assert trainer.stop_reason == "error"


def test_nan_loss_in_a_run_keeps_the_metrics_and_checkpoints_of_the_good_epochs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_step = Network.train_step
    steps = [0]

    def failing_step(
        self: Network, X: np.ndarray, y: np.ndarray, *, l2: float = 0.0, weights: Any = None
    ) -> float:
        steps[0] += 1
        loss = real_step(self, X, y, l2=l2, weights=weights)
        return math.inf if steps[0] > 2 * BATCHES_PER_EPOCH + 3 else loss

    monkeypatch.setattr(Network, "train_step", failing_step)
    with pytest.raises(TrainingError, match="became inf at epoch 3, batch 4"):
        run_training(tiny(train={"epochs": 5}), tmp_path)
    assert [row["epoch"] for row in read_metrics(tmp_path)] == [1, 2]
    assert checkpoint.load(tmp_path / "checkpoints" / "last.npz").epoch == 2
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["stop_reason"] == "error" and "became inf" in summary["error"]
    assert summary["epochs_run"] == 2


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_huge_learning_rate_with_sgd_diverges_into_a_training_error(tmp_path: Path) -> None:
    config = tiny(optimizer={"name": "sgd", "lr": 1e6}, train={"epochs": 5})
    with pytest.raises(TrainingError, match=r"lower optimizer\.lr"):
        run_training(config, tmp_path)
    rows = read_metrics(tmp_path) if (tmp_path / "metrics.jsonl").exists() else []
    assert all(math.isfinite(row["train_loss"]) for row in rows)


# --- early stopping ---------------------------------------------------------------------------


def test_early_stopping_stops_after_patience_epochs_without_improvement(
    tmp_path: Path,
) -> None:
    # min_delta 100: no epoch after the first can improve on it
    stopping = {"patience": 2, "min_delta": 100.0}
    _, summary = run_training(tiny(train={"epochs": 20, "early_stopping": stopping}), tmp_path)
    assert summary["epochs_run"] == 3
    assert len(read_metrics(tmp_path)) == 3
    assert summary["stop_reason"].startswith("early_stopping")
    assert "val_loss" in summary["stop_reason"]


def test_early_stopping_restores_the_best_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted_validation(monkeypatch, val_loss=[1.0, 0.5, 0.7, 0.8, 0.9, 1.0])
    recorder = Recorder()
    stopping = EarlyStopping(monitor="val_loss", patience=2, restore_best=True)
    folder = tmp_path / "checkpoints"
    checkpointer = Checkpointer(RunDirectory(tmp_path), "val_loss")
    trainer = trainer_for(tiny(train={"epochs": 6}), [checkpointer, recorder, stopping])
    end = trainer.fit()

    assert [row["epoch"] for row in recorder.logs] == [1, 2, 3, 4]
    assert end["stop_reason"].startswith("early_stopping")
    assert end["restored_epoch"] == 2
    params = trainer.network.params
    np.testing.assert_array_equal(params, recorder.params[2])
    assert not np.array_equal(params, recorder.params[4])
    best = checkpoint.load(folder / "best.npz")
    assert best.epoch == 2
    for name, value in trainer.model.parameters().items():
        np.testing.assert_array_equal(value, best.params[name], err_msg=name)


def test_early_stopping_without_restore_keeps_the_last_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scripted_validation(monkeypatch, val_loss=[1.0, 0.5, 0.7, 0.8, 0.9, 1.0])
    recorder = Recorder()
    stopping = EarlyStopping(monitor="val_loss", patience=2, restore_best=False)
    trainer = trainer_for(tiny(train={"epochs": 6}), [recorder, stopping])
    end = trainer.fit()
    assert "restored_epoch" not in end
    np.testing.assert_array_equal(trainer.network.params, recorder.params[4])


def test_early_stopping_on_accuracy_waits_for_a_higher_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    scripted_validation(monkeypatch, val_accuracy=[0.5, 0.6, 0.6, 0.7, 0.7, 0.7, 0.7])
    recorder = Recorder()
    stopping = EarlyStopping(monitor="val_accuracy", patience=2)
    trainer = trainer_for(tiny(train={"epochs": 7}), [recorder, stopping])
    end = trainer.fit()
    assert len(recorder.logs) == 6
    assert end["restored_epoch"] == 4


def test_best_checkpoint_follows_the_early_stopping_monitor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``monitor: val_accuracy`` the weights early stopping restores (epoch 2) are the ones
    ``best.npz`` should hold and the summary's test metrics should describe."""
    scripted_validation(
        monkeypatch,
        val_loss=[1.0, 0.9, 0.8, 0.7],
        val_accuracy=[0.5, 0.9, 0.6, 0.6],
    )
    stopping = {"monitor": "val_accuracy", "patience": 2}
    _, summary = run_training(tiny(train={"epochs": 4, "early_stopping": stopping}), tmp_path)
    assert summary["stop_reason"].startswith("early_stopping")
    assert summary["best_epoch"] == 2
    assert checkpoint.load(tmp_path / "checkpoints" / "best.npz").epoch == 2


def test_best_checkpoint_agrees_with_early_stopping_when_min_delta_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Epochs 2 and 3 lower val_loss by less than min_delta: early stopping keeps epoch 1 as its
    best and restores it, so best.npz (and the summary's test metrics) must be epoch 1 too."""
    scripted_validation(monkeypatch, val_loss=[1.0, 0.99, 0.98, 0.97])
    stopping = {"patience": 2, "min_delta": 0.05}
    _, summary = run_training(tiny(train={"epochs": 4, "early_stopping": stopping}), tmp_path)
    assert "best 1 at epoch 1" in summary["stop_reason"]
    best = checkpoint.load(tmp_path / "checkpoints" / "best.npz")
    assert (summary["best_epoch"], best.epoch) == (1, 1)


def test_early_stopping_on_an_unknown_metric_is_a_training_error() -> None:
    trainer = trainer_for(tiny(), [EarlyStopping(monitor="val_f1")])
    with pytest.raises(TrainingError, match="'val_f1' is not a metric"):
        trainer.fit()


@pytest.mark.parametrize(
    ("monitor", "mode"),
    [("val_loss", "min"), ("val_mae", "min"), ("val_accuracy", "max"), ("val_r2", "max")],
)
def test_monitor_mode_auto_minimizes_losses_and_maximizes_scores(monitor: str, mode: str) -> None:
    assert monitor_mode(monitor) == mode
    assert monitor_mode(monitor, "max" if mode == "min" else "min") != mode


def test_improvement_must_beat_the_best_by_more_than_min_delta() -> None:
    assert is_improvement(1.0, None, "min")
    assert is_improvement(0.9, 1.0, "min", min_delta=0.05)
    assert not is_improvement(0.96, 1.0, "min", min_delta=0.05)
    assert not is_improvement(1.0, 1.0, "min")
    assert is_improvement(0.8, 0.7, "max")
    assert not is_improvement(0.7, 0.7, "max")


# --- the update -------------------------------------------------------------------------------


def test_grad_clip_limits_the_global_gradient_norm(monkeypatch: pytest.MonkeyPatch) -> None:
    clip = 1.0
    trainer = trainer_for(
        tiny(optimizer={"name": "sgd", "lr": 0.5}, train={"epochs": 2, "grad_clip": clip}), []
    )
    network, optimizer = trainer.network, trainer.optimizer
    before, after = [], []
    real_step, real_update = network.train_step, optimizer.update_step
    directions = []

    def train_step(X: np.ndarray, y: np.ndarray, *, l2: float = 0.0, weights: Any = None) -> float:
        loss = real_step(X, y, l2=l2, weights=weights)
        before.append(float(np.linalg.norm(network.grads.astype(np.float64))))
        directions.append(network.grads.copy())
        return loss

    def update_step(gradient: np.ndarray, variable: np.ndarray, learning_rate: float) -> None:
        after.append(float(np.linalg.norm(gradient.astype(np.float64))))
        cosine = np.dot(gradient, directions[-1]) / (
            np.linalg.norm(gradient) * np.linalg.norm(directions[-1])
        )
        assert cosine == pytest.approx(1.0, abs=1e-5)  # same direction, only shorter
        real_update(gradient, variable, learning_rate)

    monkeypatch.setattr(network, "train_step", train_step)
    monkeypatch.setattr(optimizer, "update_step", update_step)
    trainer.fit()

    assert len(after) == 2 * BATCHES_PER_EPOCH
    assert any(norm > clip for norm in before), "no batch was clipped: test cannot fail"
    assert any(norm < clip for norm in before), "every batch was clipped"
    for raw, clipped in zip(before, after, strict=True):
        assert clipped == pytest.approx(min(raw, clip), rel=1e-5)


def test_without_grad_clip_the_gradient_is_passed_unchanged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    trainer = trainer_for(tiny(optimizer={"name": "sgd", "lr": 0.5}, train={"epochs": 1}), [])
    network = trainer.network
    seen = []
    real_update = trainer.optimizer.update_step

    def update_step(gradient: np.ndarray, variable: np.ndarray, learning_rate: float) -> None:
        seen.append(float(np.linalg.norm(gradient)))
        real_update(gradient, variable, learning_rate)

    monkeypatch.setattr(trainer.optimizer, "update_step", update_step)
    real_step = network.train_step
    raw = []

    def train_step(X: np.ndarray, y: np.ndarray, *, l2: float = 0.0, weights: Any = None) -> float:
        loss = real_step(X, y, l2=l2, weights=weights)
        raw.append(float(np.linalg.norm(network.grads)))
        return loss

    monkeypatch.setattr(network, "train_step", train_step)
    trainer.fit()
    assert seen == raw
    assert max(raw) > 1.0


def one_full_batch_epoch(optimizer: dict[str, Any]) -> tuple[Trainer, dict[str, float]]:
    """One epoch of one batch (the whole training split): its loss is at the initial weights."""
    trainer = trainer_for(tiny(optimizer=optimizer, train={"epochs": 1, "batch_size": 512}), [])
    return trainer, trainer.fit()


def initial_weights() -> np.ndarray:
    trainer = trainer_for(tiny(), [])
    return trainer.network.params[trainer.network.weight_slice].astype(np.float64)


def test_adam_weight_decay_adds_the_l2_term_to_the_loss() -> None:
    _, plain = one_full_batch_epoch({"name": "adam", "lr": 0.01})
    trainer, decayed = one_full_batch_epoch({"name": "adam", "lr": 0.01, "weight_decay": 0.1})
    assert trainer.l2 == 0.1
    weights = initial_weights()
    expected = plain["train_loss"] + 0.5 * 0.1 * float(np.dot(weights, weights))
    assert decayed["train_loss"] > plain["train_loss"]
    assert decayed["train_loss"] == pytest.approx(expected, rel=1e-5)


def test_adam_weight_decay_adds_l2_times_weight_to_the_gradient(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gradients = []
    for decay in (0.0, 0.1):
        trainer = trainer_for(
            tiny(
                optimizer={"name": "adam", "lr": 0.01, "weight_decay": decay},
                train={"epochs": 1, "batch_size": 512},
            ),
            [],
        )
        real_update = trainer.optimizer.update_step

        def update_step(g: np.ndarray, w: np.ndarray, lr: float, real: Any = real_update) -> None:
            gradients.append(g.astype(np.float64).copy())
            real(g, w, lr)

        monkeypatch.setattr(trainer.optimizer, "update_step", update_step)
        trainer.fit()
    weights = trainer.network.weight_slice
    difference = gradients[1] - gradients[0]
    np.testing.assert_allclose(difference[weights], 0.1 * initial_weights(), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(difference[weights.stop :], 0.0, atol=1e-7)  # biases: no decay


def test_adamw_weight_decay_is_decoupled_from_the_loss_and_gradient() -> None:
    lr, decay = 0.01, 0.5
    adam, plain = one_full_batch_epoch({"name": "adam", "lr": lr})
    adamw, decoupled = one_full_batch_epoch({"name": "adamw", "lr": lr, "weight_decay": decay})
    # no L2 term in the loss, and the optimizer decays by the configured amount
    assert (adamw.l2, adamw.optimizer.weight_decay) == (0.0, decay)
    assert decoupled["train_loss"] == plain["train_loss"]
    # one step: w_adamw = w0 (1 - lr decay) - step, w_adam = w0 - step, on the weights only
    weights = adam.network.weight_slice
    difference = adamw.network.params.astype(np.float64) - adam.network.params.astype(np.float64)
    np.testing.assert_allclose(difference[weights], -lr * decay * initial_weights(), atol=1e-6)
    np.testing.assert_array_equal(
        adamw.network.params[weights.stop :], adam.network.params[weights.stop :]
    )


# --- learning rate, metrics file, progress ----------------------------------------------------


def test_learning_rate_of_each_epoch_follows_the_step_schedule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tiny(
        optimizer={"name": "sgd", "lr": 0.1},
        schedule={"name": "step", "step_size": 2, "gamma": 0.5},
        train={"epochs": 5},
    )
    trainer = trainer_for(config, [MetricsWriter(RunDirectory(tmp_path))])
    used = []
    real_update = trainer.optimizer.update_step

    def update_step(gradient: np.ndarray, variable: np.ndarray, learning_rate: float) -> None:
        used.append(learning_rate)
        real_update(gradient, variable, learning_rate)

    monkeypatch.setattr(trainer.optimizer, "update_step", update_step)
    trainer.fit()
    expected = [0.1, 0.1, 0.05, 0.05, 0.025]
    assert [row["lr"] for row in read_metrics(tmp_path)] == pytest.approx(expected, rel=1e-12)
    per_epoch = [used[i : i + BATCHES_PER_EPOCH] for i in range(0, len(used), BATCHES_PER_EPOCH)]
    assert all(len(set(lrs)) == 1 for lrs in per_epoch)  # every batch of an epoch uses its lr
    assert [lrs[0] for lrs in per_epoch] == pytest.approx(expected, rel=1e-12)


class FileWatcher(Callback):
    """Reads metrics.jsonl after the writer has run, at the end of every epoch."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.snapshots: list[str] = []

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        self.snapshots.append(self.path.read_text(encoding="utf-8"))


def test_metrics_file_gains_one_line_per_epoch_and_is_never_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"note": "earlier line"}\n', encoding="utf-8")
    watcher = FileWatcher(path)
    trainer_for(tiny(train={"epochs": 4}), [MetricsWriter(RunDirectory(tmp_path)), watcher]).fit()

    snapshots = watcher.snapshots
    assert [len(s.splitlines()) for s in snapshots] == [2, 3, 4, 5]
    for older, newer in itertools.pairwise(snapshots):
        assert newer.startswith(older)
    lines = snapshots[-1].splitlines()
    assert json.loads(lines[0]) == {"note": "earlier line"}
    assert [json.loads(line)["epoch"] for line in lines[1:]] == [1, 2, 3, 4]


def test_plain_progress_prints_one_line_per_epoch() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=False, width=200)
    progress = make_progress(console)
    assert isinstance(progress, PlainProgress)
    trainer_for(tiny(train={"epochs": 3}), [progress]).fit()
    lines = buffer.getvalue().splitlines()
    assert len(lines) == 3
    for epoch, line in enumerate(lines, start=1):
        assert line.startswith(f"epoch {epoch}/3  train_loss ")
        assert "val_accuracy" in line
        assert "\x1b[" not in line  # no terminal control codes in a log file


def test_progress_is_a_live_bar_on_a_terminal_and_nothing_when_quiet() -> None:
    console = Console(file=io.StringIO(), force_terminal=True)
    assert isinstance(make_progress(console), LiveProgress)
    assert make_progress(console, quiet=True) is None


def test_live_progress_runs_through_a_training(tmp_path: Path) -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120)
    trainer_for(tiny(train={"epochs": 2}), [LiveProgress(console)]).fit()
    assert "epochs" in buffer.getvalue()


def test_progress_does_not_change_what_is_trained(tmp_path: Path) -> None:
    quiet, shown = Recorder(), Recorder()
    trainer_for(tiny(), [quiet]).fit()
    console = Console(file=io.StringIO(), force_terminal=False)
    trainer_for(tiny(), [PlainProgress(console), shown]).fit()
    assert without_timings(quiet.logs) == without_timings(shown.logs)


def test_callback_hooks_are_called_in_order() -> None:
    calls: list[str] = []

    class Spy(Callback):
        def on_train_begin(self, logs: dict[str, Any]) -> None:
            calls.append("train_begin")

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any]) -> None:
            calls.append(f"epoch_begin {epoch} lr={logs['lr']}")

        def on_batch_end(self, batch: int, logs: dict[str, Any]) -> None:
            if batch == BATCHES_PER_EPOCH:
                calls.append(f"last batch {batch}")

        def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
            calls.append(f"epoch_end {epoch}")

        def on_train_end(self, logs: dict[str, Any]) -> None:
            calls.append(f"train_end {logs['stop_reason']}")

    trainer_for(tiny(train={"epochs": 2}), [Spy()]).fit()
    assert calls == [
        "train_begin",
        "epoch_begin 1 lr=0.01",
        f"last batch {BATCHES_PER_EPOCH}",
        "epoch_end 1",
        "epoch_begin 2 lr=0.01",
        f"last batch {BATCHES_PER_EPOCH}",
        "epoch_end 2",
        "train_end completed",
    ]


# --- the run directory ------------------------------------------------------------------------


def create(out: Path | None, root: Path | None = None) -> Path:
    run = RunDirectory.create(out, "tiny", root or Path("runs"))
    run.unlock()
    return run.path


def test_run_dir_is_refused_when_it_holds_anything(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(OutputError, match="not empty"):
        create(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_run_dir_may_be_an_existing_empty_folder_or_a_new_one(tmp_path: Path) -> None:
    assert create(tmp_path) == tmp_path
    nested = tmp_path / "a" / "b"
    assert create(nested) == nested and nested.is_dir()


def test_run_dir_that_is_a_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("x")
    with pytest.raises(OutputError):
        create(path)


def test_default_run_dirs_are_named_after_the_run_and_never_reused(tmp_path: Path) -> None:
    first = create(None, root=tmp_path)
    second = create(None, root=tmp_path)
    assert first != second
    assert first.parent == tmp_path and first.name.startswith("tiny-")
    assert second.name.startswith("tiny-")

"""The training loop, its callbacks, and a whole run from config to run directory.

``Trainer.fit`` runs mini-batch gradient descent: each epoch takes its learning rate from the
schedule, shuffles the training set with its own seeded generator, and for every batch does::

    loss  = network.train_step(X_batch, y_batch)          # forward + backward, grads filled
    grads = grads * min(1, grad_clip / ||grads||)         # optional global-norm clipping
    optimizer.update_step(grads, params, lr)              # in place over the flat buffers

then evaluates the validation split and hands the epoch's ``logs`` to the callbacks. A loss that
becomes NaN or infinite stops training at once with a ``TrainingError``.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from bpnn.callbacks import Callback
from bpnn.config import Config
from bpnn.errors import OutputError, TrainingError
from bpnn.evaluation import correct_count, evaluate
from bpnn.model import Model, make_seeds, model_contents
from bpnn.nn.network import Network
from bpnn.nn.optimizers import Optimizer, make_optimizer
from bpnn.nn.schedules import Schedule, make_schedule

# --- monitoring -------------------------------------------------------------------------------


def monitor_mode(monitor: str, mode: str = "auto") -> str:
    """``min`` for losses and errors, ``max`` for accuracy and r2 (``auto``), or as given."""
    if mode != "auto":
        return mode
    return "max" if monitor.endswith(("accuracy", "r2")) else "min"


def is_improvement(value: float, best: float | None, mode: str, min_delta: float = 0.0) -> bool:
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


# --- callbacks --------------------------------------------------------------------------------


class MetricsWriter(Callback):
    """Appends one JSON object per epoch to ``metrics.jsonl`` (flushed at once, never rewritten)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(logs) + "\n")


class Checkpointer(Callback):
    """Saves ``last.npz`` after every epoch and ``best.npz`` when ``monitor`` improves."""

    def __init__(
        self, folder: Path, monitor: str, mode: str = "auto", min_delta: float = 0.0
    ) -> None:
        self.folder, self.monitor, self.min_delta = folder, monitor, min_delta
        self.mode = monitor_mode(monitor, mode)
        self.best: float | None = None
        self.best_epoch: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        from bpnn import checkpoint

        value = logs[self.monitor]
        improved = is_improvement(value, self.best, self.mode, self.min_delta)
        if improved:
            self.best, self.best_epoch = value, epoch
        contents = self.trainer.checkpoint_contents(epoch, logs)
        checkpoint.save(self.folder / "last.npz", contents)
        if improved:
            checkpoint.save(self.folder / "best.npz", contents)

    def state(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch}

    def load_state(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch = state["best"], state["best_epoch"]


class EarlyStopping(Callback):
    """Stops training when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs, and (``restore_best``) puts the best weights back into the model at the end."""

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 10,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best: bool = True,
    ) -> None:
        self.monitor, self.patience, self.min_delta = monitor, patience, min_delta
        self.mode = monitor_mode(monitor, mode)
        self.restore_best = restore_best
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0
        self.best_weights: tuple[np.ndarray, dict[str, np.ndarray]] | None = None

    def on_train_begin(self, logs: dict[str, Any]) -> None:
        if self.trainer.start_epoch == 0:  # a resumed run keeps the state it was saved with
            self.best, self.best_epoch, self.wait, self.best_weights = None, None, 0, None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any]) -> None:
        if self.monitor not in logs:
            raise TrainingError(
                f"train.early_stopping.monitor: '{self.monitor}' is not a metric of this run "
                f"(metrics: {', '.join(k for k in logs if k != 'epoch')})"
            )
        value = logs[self.monitor]
        if is_improvement(value, self.best, self.mode, self.min_delta):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            network = self.trainer.model.network
            self.best_weights = (
                network.params.copy(),
                {k: v.copy() for k, v in network.buffers().items()},
            )
        else:
            self.wait += 1
            if self.wait >= self.patience:
                self.trainer.stop(
                    f"early_stopping: {self.monitor} did not improve for {self.patience} epochs "
                    f"(best {self.best:.6g} at epoch {self.best_epoch})"
                )

    def on_train_end(self, logs: dict[str, Any]) -> None:
        if (
            self.restore_best
            and self.best_weights is not None
            and self.trainer.stop_reason != "error"
        ):
            params, buffers = self.best_weights
            self.trainer.model.network.params[...] = params
            self.trainer.model.network.load_buffers(buffers)
            logs["restored_epoch"] = self.best_epoch

    def state(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state(self, state: dict[str, Any]) -> None:
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]


# --- the trainer ------------------------------------------------------------------------------


class Trainer:
    """Trains ``model`` on a ``Dataset`` (scaled arrays) with an optimizer and a schedule."""

    def __init__(
        self,
        model: Model,
        data: Any,
        *,
        optimizer: Optimizer,
        schedule: Schedule,
        epochs: int,
        batch_size: int,
        shuffle_rng: np.random.Generator,
        l2: float = 0.0,
        grad_clip: float | None = None,
        shuffle: bool = True,
        callbacks: Sequence[Callback] = (),
        start_epoch: int = 0,
    ) -> None:
        self.model, self.data = model, data
        self.network: Network = model.network
        self.optimizer, self.schedule = optimizer, schedule
        self.epochs, self.batch_size = epochs, batch_size
        self.shuffle_rng, self.shuffle = shuffle_rng, shuffle
        self.l2, self.grad_clip = l2, grad_clip
        self.callbacks = list(callbacks)
        self.start_epoch = start_epoch
        self.stop_reason: str | None = None
        self.batches_per_epoch = math.ceil(len(data.X_train) / batch_size)

    def stop(self, reason: str) -> None:
        """Ask the loop to end after the current epoch (used by early stopping)."""
        self.stop_reason = reason

    def _call(self, hook: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(*args)

    def train_epoch(self, epoch: int, lr: float) -> dict[str, float]:
        """One pass over the training set; returns the mean training loss (and accuracy)."""
        X, y = self.data.X_train, self.data.y_train
        n = len(X)
        order = self.shuffle_rng.permutation(n) if self.shuffle else np.arange(n)
        network, optimizer = self.network, self.optimizer
        classify = self.model.task != "regression"
        total_loss, total_weight, correct = 0.0, 0.0, 0
        for batch, start in enumerate(range(0, n, self.batch_size), start=1):
            index = order[start : start + self.batch_size]
            X_batch, y_batch = X[index], y[index]
            with np.errstate(over="ignore", invalid="ignore"):  # a NaN loss is our error
                loss = network.train_step(X_batch, y_batch, l2=self.l2)
            if not math.isfinite(loss):
                raise TrainingError(
                    f"the training loss became {loss} at epoch {epoch}, batch {batch}; stopped "
                    f"(try a lower optimizer.lr or set train.grad_clip)"
                )
            if self.grad_clip is not None:
                norm = float(np.sqrt(np.dot(network.grads, network.grads)))
                if norm > self.grad_clip:
                    network.grads *= self.grad_clip / norm
            optimizer.update_step(network.grads, network.params, lr)
            weight = network.loss.batch_weight(y_batch)  # the batch size, or its class weights
            total_loss += loss * weight
            total_weight += weight
            if classify:
                correct += correct_count(self.model.task, network.last_output, y_batch)
            self._call(
                "on_batch_end",
                batch,
                {"loss": loss, "running_loss": total_loss / total_weight},
            )
        logs = {"train_loss": total_loss / total_weight}
        if classify:
            logs["train_accuracy"] = correct / n
        return logs

    def fit(self) -> dict[str, Any]:
        """Train from ``start_epoch`` to ``epochs`` (or until stopped); returns the final logs.

        The callbacks reach the trainer as ``callback.trainer`` while ``fit`` runs; when it
        ends they let go of it, so that the training data can be freed with the trainer.
        """
        for callback in self.callbacks:
            callback.trainer = self
        try:
            return self._fit()
        finally:
            for callback in self.callbacks:
                del callback.trainer

    def _fit(self) -> dict[str, Any]:
        logs: dict[str, Any] = {}
        self._call("on_train_begin", logs)
        try:
            for epoch in range(self.start_epoch + 1, self.epochs + 1):
                lr = float(self.schedule.learning_rate(epoch - 1))
                self._call("on_epoch_begin", epoch, {"lr": lr})
                started = time.perf_counter()
                train_logs = self.train_epoch(epoch, lr)
                seconds = time.perf_counter() - started
                logs = {"epoch": epoch, **train_logs}
                if len(self.data.X_val):
                    logs.update(
                        evaluate(self.model, self.data.X_val, self.data.y_val, prefix="val_")
                    )
                logs.update({"lr": lr, "epoch_seconds": seconds})
                self.schedule.on_epoch_end(epoch - 1, logs)
                self.model.epoch = epoch
                self._call("on_epoch_end", epoch, logs)
                if self.stop_reason is not None:
                    break
            else:
                self.stop_reason = "completed"
        except BaseException:
            self.stop_reason = "error"
            self._call("on_train_end", {"stop_reason": "error"})
            raise
        end_logs = {"stop_reason": self.stop_reason, **logs}
        self._call("on_train_end", end_logs)
        return end_logs

    # --- state for checkpoints --------------------------------------------------------------
    def checkpoint_contents(self, epoch: int, logs: dict[str, Any]) -> Any:
        """Everything needed to use the model, and to resume training after ``epoch``."""
        trainer_state: dict[str, Any] = {
            "shuffle_rng": self.shuffle_rng.bit_generator.state,
            "stopped": self.stop_reason,
            "callbacks": {
                type(c).__name__: c.state() for c in self.callbacks if hasattr(c, "state")
            },
        }
        if self.network.dropout_rng is not None:
            trainer_state["dropout_rng"] = self.network.dropout_rng.bit_generator.state
        return model_contents(
            self.model,
            metrics=logs,
            optimizer=self.optimizer.state_dict(),
            schedule=self.schedule.state_dict(),
            trainer=trainer_state,
        )


# --- a whole run ------------------------------------------------------------------------------


def check_run_dir(out: Path) -> None:
    """Refuse an output folder that holds anything (or is a file): nothing is overwritten."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise OutputError(
            f"{out}: run directory already exists and is not empty; choose another --out"
        )


def prepare_run_dir(name: str, out: Path | None, root: Path = Path("runs")) -> Path:
    """The run directory: ``out`` if given (it must not exist or be empty), else
    ``runs/<name>-<YYYYmmdd-HHMMSS>``. Never reuses a folder that holds anything."""
    if out is not None:
        check_run_dir(out)
        out.mkdir(parents=True, exist_ok=True)
        return out
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    for attempt in range(1, 1000):
        candidate = root / (f"{name}-{stamp}" if attempt == 1 else f"{name}-{stamp}-{attempt}")
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            continue
    raise OutputError(f"{root}: cannot find a free run directory name for {name}")


def build_model(config: Config, data: Any, rng: np.random.Generator) -> Model:
    """A fresh model for ``data`` as the config describes, initialized from ``rng``."""
    from bpnn.model import build_network

    network = build_network(config, data.n_features, data.n_classes, data.n_targets, rng)
    return Model(
        network,
        config,
        input_scaling=data.input_scaling,
        target_scaling=data.target_scaling,
        classes=data.classes,
        feature_names=list(data.feature_names),
        target_name=data.target_name,
    )


def make_trainer(
    config: Config,
    model: Model,
    data: Any,
    shuffle_rng: np.random.Generator,
    callbacks: Sequence[Callback],
    start_epoch: int = 0,
) -> Trainer:
    optimizer = make_optimizer(config.optimizer.name, **config.optimizer_options())
    optimizer.build(model.network.params, model.network.weight_slice)
    schedule = make_schedule(
        config.schedule.name, config.optimizer.lr, config.train.epochs, **config.schedule.options
    )
    return Trainer(
        model,
        data,
        optimizer=optimizer,
        schedule=schedule,
        epochs=config.train.epochs,
        batch_size=config.train.batch_size,
        shuffle_rng=shuffle_rng,
        l2=config.l2_penalty(),
        grad_clip=config.train.grad_clip,
        shuffle=config.train.shuffle,
        callbacks=callbacks,
        start_epoch=start_epoch,
    )


def _callbacks(
    config: Config, run_dir: Path, data: Any, progress: Callback | None
) -> tuple[Checkpointer, EarlyStopping | None, list[Callback]]:
    stopping = config.train.early_stopping
    # best.npz follows early stopping's monitor, mode and min_delta, so the best checkpoint and
    # the weights early stopping restores are the same; else it is the lowest validation loss
    callbacks: list[Callback] = []
    early_stopping = None
    if stopping is not None:
        early_stopping = EarlyStopping(
            stopping.monitor,
            stopping.patience,
            stopping.min_delta,
            stopping.mode,
            stopping.restore_best,
        )
        callbacks.append(early_stopping)  # first, so that the checkpoint holds its new state
        checkpointer = Checkpointer(
            run_dir / "checkpoints", stopping.monitor, stopping.mode, stopping.min_delta
        )
    else:
        monitor = "val_loss" if len(data.X_val) else "train_loss"
        checkpointer = Checkpointer(run_dir / "checkpoints", monitor)
    # the checkpoint is written before the metrics line: a resume can add a lost line back
    callbacks += [checkpointer, MetricsWriter(run_dir / "metrics.jsonl")]
    if progress is not None:
        callbacks.append(progress)
    return checkpointer, early_stopping, callbacks


def _finish(
    run_dir: Path,
    test: tuple[np.ndarray, np.ndarray],
    samples: tuple[int, int, int],
    model: Model,
    checkpointer: Checkpointer,
    end: dict[str, Any],
    seconds: float,
) -> dict[str, Any]:
    """Evaluate best.npz on the test split ``(X_test, y_test)``, write summary.json and the
    plots. It is given the test split alone: the caller lets go of the training and validation
    arrays first, so the peak memory of a run stays that of its training."""
    from bpnn.model import load_model
    from bpnn.plots import plot_run

    best = load_model(run_dir / "checkpoints" / "best.npz")
    summary: dict[str, Any] = evaluate(best, *test, prefix="test_")
    n_train, n_val, n_test = samples
    summary.update(
        {
            "best_epoch": checkpointer.best_epoch,
            "best_" + checkpointer.monitor: checkpointer.best,
            "epochs_run": model.epoch,
            "stop_reason": end["stop_reason"],
            "total_seconds": seconds,
            "train_samples": n_train,
            "val_samples": n_val,
            "test_samples": n_test,
        }
    )
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    plot_run(run_dir)
    return summary


def _load_data(config: Config, log: Callable[[str], None]) -> Any:
    from bpnn.data import load_dataset

    return load_dataset(
        config.data, task=config.task, seed=config.seed, dtype=np.dtype(config.train.dtype), log=log
    )


def run_training(
    config: Config,
    run_dir: Path | None = None,
    *,
    root: Path = Path("runs"),
    progress: Callback | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> tuple[Path, dict[str, Any]]:
    """Train ``config`` into ``run_dir`` (created; it must not hold anything), by default
    ``root/NAME-TIME``, writing ``config.yaml``, ``metrics.jsonl``, ``checkpoints/``,
    ``summary.json`` and ``plots/``. The folder is made only once the data has loaded, so a
    data error leaves nothing behind. Returns the run directory and the summary."""
    started = time.perf_counter()
    if run_dir is not None:
        check_run_dir(run_dir)
    data = _load_data(config, log)
    run_dir = prepare_run_dir(config.name, run_dir, root)
    log(f"run directory: {run_dir}")
    (run_dir / "config.yaml").write_text(config.to_yaml(), encoding="utf-8")
    init_rng, shuffle_rng = make_seeds(config.seed)
    model = build_model(config, data, init_rng)
    checkpointer, _, callbacks = _callbacks(config, run_dir, data, progress)
    end = make_trainer(config, model, data, shuffle_rng, callbacks).fit()
    seconds = time.perf_counter() - started
    test, samples = (data.X_test, data.y_test), data.n_samples
    del data  # the trainer is gone, so this frees the training and validation arrays
    return run_dir, _finish(run_dir, test, samples, model, checkpointer, end, seconds)


def _read_metrics(path: Path) -> list[dict[str, Any]]:
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            raise TrainingError(f"{path}: line {number} is not JSON; cannot resume") from None
    return rows


def resume_training(
    run_dir: Path,
    *,
    epochs: int | None = None,
    progress: Callback | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> dict[str, Any]:
    """Continue the run in ``run_dir`` from ``checkpoints/last.npz``, exactly where it stopped.

    The model, optimizer state, learning-rate schedule, shuffling and dropout generators and
    the checkpointing and early-stopping state all come back from the checkpoint, so a run
    trained for ``k`` epochs and resumed to ``n`` gives the metrics of one ``n``-epoch run, bit
    for bit. ``metrics.jsonl`` is only appended to. ``epochs`` extends the run (its config.yaml
    is updated); a schedule whose rates depend on the total (cosine) refuses that.
    """
    from bpnn import checkpoint
    from bpnn.config import load_config
    from bpnn.model import load_model

    started = time.perf_counter()
    config_path, last_path = run_dir / "config.yaml", run_dir / "checkpoints" / "last.npz"
    metrics_path = run_dir / "metrics.jsonl"
    for path in (config_path, last_path, metrics_path):
        if not path.is_file():
            raise TrainingError(f"{run_dir}: no {path.name} (not a bpnn run directory)")
    config = load_config(config_path)
    contents = checkpoint.load(last_path)
    done = contents.epoch
    if epochs is not None and epochs != config.train.epochs:
        if epochs <= done:
            raise TrainingError(f"--epochs {epochs}: the run has already trained {done} epochs")
        if config.schedule.name == "cosine":
            raise TrainingError(
                f"--epochs {epochs}: the run's cosine schedule spreads its learning rates over "
                f"train.epochs={config.train.epochs}; extending it would change them"
            )
        config = config.model_copy(
            update={"train": config.train.model_copy(update={"epochs": epochs})}
        )
        (run_dir / "config.yaml").write_text(config.to_yaml(), encoding="utf-8")
    if done >= config.train.epochs:
        raise TrainingError(
            f"{run_dir}: already trained {done} of {config.train.epochs} epochs; "
            f"pass --epochs N to train on"
        )
    if contents.trainer.get("stopped"):
        raise TrainingError(f"{run_dir}: training stopped early ({contents.trainer['stopped']})")

    history = _read_metrics(metrics_path)
    logged = history[-1]["epoch"] if history else 0
    if logged > done:
        raise TrainingError(
            f"{metrics_path}: has epoch {logged} but last.npz is from epoch {done}; not resuming"
        )
    if logged == done - 1:  # stopped between the checkpoint and the metrics line: add it back
        with metrics_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(contents.metrics) + "\n")
    elif logged != done:
        raise TrainingError(f"{metrics_path}: ends at epoch {logged}, last.npz is from {done}")

    data = _load_data(config, log)
    model = load_model(last_path)
    model.config = config
    _, shuffle_rng = make_seeds(config.seed)
    shuffle_rng.bit_generator.state = contents.trainer["shuffle_rng"]
    if model.network.dropout_rng is not None:
        model.network.dropout_rng.bit_generator.state = contents.trainer["dropout_rng"]
    checkpointer, early_stopping, callbacks = _callbacks(config, run_dir, data, progress)
    states = contents.trainer.get("callbacks", {})
    checkpointer.load_state(states["Checkpointer"])
    if early_stopping is not None:
        early_stopping.load_state(states["EarlyStopping"])
        best = load_model(run_dir / "checkpoints" / "best.npz").network
        early_stopping.best_weights = (best.params.copy(), best.buffers())
    trainer = make_trainer(config, model, data, shuffle_rng, callbacks, start_epoch=done)
    trainer.optimizer.load_state_dict(contents.optimizer)
    trainer.schedule.load_state_dict(contents.schedule)
    log(f"resuming {run_dir} at epoch {done + 1} of {config.train.epochs}")
    end = trainer.fit()
    previous = 0.0
    if (run_dir / "summary.json").is_file():
        previous = json.loads((run_dir / "summary.json").read_text()).get("total_seconds", 0.0)
    seconds = previous + time.perf_counter() - started
    test, samples = (data.X_test, data.y_test), data.n_samples
    del data, trainer  # frees the training and validation arrays
    return _finish(run_dir, test, samples, model, checkpointer, end, seconds)

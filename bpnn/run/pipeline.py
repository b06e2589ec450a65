"""From a config to a trained run: data, network, trainer and callbacks, the summary.

``run_training`` is what ``bpnn train`` runs; the pieces (``load_data``, ``build_model``,
``make_trainer``, ``make_callbacks``) are what ``resume``, ``gradcheck``, ``explain``,
``lr-find`` and the benchmarks build the same way.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bpnn import checkpoint
from bpnn.callbacks import (
    CALLBACKS,
    Callback,
    CallbackContext,
    Checkpointer,
    EarlyStopping,
    MetricsWriter,
)
from bpnn.config import Config, load_config, memory_limit, short
from bpnn.data import SOURCES, Dataset, load_dataset
from bpnn.errors import BpnnError, ConfigError, DataError
from bpnn.evaluation import report
from bpnn.loss_weights import resolve_loss_weights
from bpnn.memory import check_fits, optimizer_buffers, training_bytes
from bpnn.model import (
    Model,
    build_network,
    load_model,
    make_seeds,
    network_loss,
    set_initial_weights,
)
from bpnn.nn.network import Network
from bpnn.nn.optimizers import Optimizer, make_optimizer
from bpnn.nn.schedules import Schedule, make_schedule
from bpnn.run.directory import Log, RunDirectory, no_log
from bpnn.training.diagnoses import diagnose
from bpnn.training.health import HealthMonitor
from bpnn.training.trainer import Trainer


def load_data(config: Config, log: Log = no_log) -> Dataset:
    """The config's data set, split and scaled, in the training dtype."""
    return load_dataset(
        config.data, task=config.task, seed=config.seed, dtype=np.dtype(config.train.dtype), log=log
    )


def check_network(config: Config, data: Dataset) -> None:
    """Refuse, before building it, a network that does not fit the data (class weights) or
    whose training would not fit in memory."""
    loss = network_loss(config, data.classes)  # refuses class weights that do not fit
    sizes = [
        data.n_features,
        *config.model.hidden,
        loss.output_size(data.n_classes, data.n_targets),
    ]
    needed = training_bytes(
        sizes,
        min(config.train.batch_size, max(len(data.X_train), 1)),  # the largest batch there is
        np.dtype(config.train.dtype).itemsize,
        optimizer_buffers(config.optimizer.name, config.optimizer_options()),
        config.model.batch_norm,
    )
    arrow = " -> ".join(map(str, sizes))
    shown = arrow if len(arrow) <= 60 else arrow[:57] + "..."
    check_fits(
        needed,
        f"training the network {shown}",
        memory_limit(config),
        "make model.hidden or train.batch_size smaller",
    )


def describe_data(config: Config) -> list[str]:
    """What a run of ``config`` says about a table source's data before training (target,
    features after encoding, missing values and what was done), for ``bpnn config show``;
    empty for other sources. A problem with the data is one of the lines, not an error."""
    if not SOURCES[config.data.source].tabular:
        return []
    lines: list[str] = []
    try:
        load_data(config, lines.append)
    except BpnnError as error:
        lines.append(f"error: {error}")
    return lines


def prepare_run(config: Config, log: Log = no_log) -> tuple[Dataset, Model]:
    """Every check a run of ``config`` makes before its first epoch, in the order ``train``
    makes them: the data loaded, split and scaled, the network checked against it (class
    weights, memory) and built (initial weights included). ``train`` trains what it returns;
    ``config check`` runs it and keeps nothing, so both refuse the same configs."""
    data = load_data(config, log)
    config = resolve_loss_weights(config, data.y_train, data.classes)
    check_network(config, data)
    init_rng, _ = make_seeds(config.seed)
    return data, build_model(config, data, init_rng)


def check_config(config: Config, log: Log = no_log) -> None:
    """What ``bpnn config check`` runs after reading the config: ``prepare_run``, saying
    nothing, unless the data would have to be downloaded first; then only the config itself is
    checked, and ``log`` says so."""
    download = SOURCES[config.data.source].download_needed(config.data)
    if download is not None:
        log(f"note: the data is not checked, train would download it first: {download}")
        return
    prepare_run(config)


def build_model(config: Config, data: Dataset, rng: np.random.Generator) -> Model:
    """A fresh model for ``data`` as the config describes, initialized from ``rng`` (and then
    from ``model.initial_weights`` when it names a file). Initial weights beyond the training
    dtype's range (``normal`` with std 1e300) are a ``ConfigError``. The model's config has
    the loss's weights resolved for the training split (``resolve_loss_weights``)."""
    config = resolve_loss_weights(config, data.y_train, data.classes)
    with np.errstate(over="ignore", invalid="ignore"):  # reported below, in one line
        network = build_network(config, data.n_features, data.classes, data.n_targets, rng)
    if not np.all(np.isfinite(network.params)):
        raise ConfigError(
            f"model.init: '{config.model.init.name}' with {short(config.model.init.options)} gives "
            f"initial weights beyond the {network.dtype.name} range; choose a smaller scale"
        )
    if config.model.initial_weights is not None:
        set_initial_weights(network, config.model.initial_weights)
    return Model(
        network,
        config,
        input_scaling=data.input_scaling,
        target_scaling=data.target_scaling,
        classes=data.classes,
        feature_names=list(data.feature_names),
        target_name=data.target_name,
        encoding=data.encoding,
    )


def build_optimizer(config: Config, network: Network) -> Optimizer:
    """The config's optimizer, its state built over the network's parameters: the one way the
    trainer, lr-find and explain --step make it."""
    optimizer = make_optimizer(config.optimizer.name, **config.optimizer_options())
    optimizer.build(network.params, network.weight_slice)
    return optimizer


def build_schedule(config: Config) -> Schedule:
    """The config's learning-rate schedule from ``optimizer.lr`` over ``train.epochs``."""
    return make_schedule(
        config.schedule.name, config.optimizer.lr, config.train.epochs, **config.schedule.options
    )


def make_trainer(
    config: Config,
    model: Model,
    data: Dataset,
    shuffle_rng: np.random.Generator,
    callbacks: Sequence[Callback],
    start_epoch: int = 0,
) -> Trainer:
    """The trainer of a config: its optimizer (built over the model's parameters), schedule and
    loop settings."""
    optimizer = build_optimizer(config, model.network)
    schedule = build_schedule(config)
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
        scores=config.epoch_scores(),
    )


def make_callbacks(
    config: Config,
    run: RunDirectory,
    data: Dataset,
    progress: Callback | None,
    *,
    log: Log = no_log,
    history: Sequence[dict[str, Any]] = (),
) -> tuple[Checkpointer, EarlyStopping | None, list[Callback]]:
    """The health monitor (``train.health``; before the others, so the logs they see hold its
    numbers; it says its diagnoses through ``log``, and ``history``, the epochs a resumed run
    already has, keeps it from saying them again), early stopping (so the checkpoint holds its
    new state), the checkpointer, the metrics writer (after the checkpoint: a resume can add a
    lost line back), the callbacks the config names (``train.callbacks``, in its order) and
    the progress. Every trainer puts the check of each batch's loss first itself.

    ``best.npz`` follows early stopping's monitor, mode and min_delta, so the best checkpoint
    and the weights early stopping restores are the same; else it is the lowest validation
    loss (the training loss without a validation split)."""
    stopping = config.train.early_stopping
    every = config.train.checkpoint_every
    for line in describe_splits(config, data):
        log(line)
    callbacks: list[Callback] = []
    if config.train.health:
        callbacks.append(HealthMonitor(log, history))
    early_stopping = None
    if stopping is not None:
        early_stopping = EarlyStopping(
            stopping.monitor,
            stopping.patience,
            stopping.min_delta,
            stopping.mode,
            stopping.restore_best,
        )
        callbacks.append(early_stopping)
        checkpointer = Checkpointer(
            run, stopping.monitor, stopping.mode, stopping.min_delta, every=every
        )
    else:
        checkpointer = Checkpointer(run, best_monitor(config, data), every=every)
    callbacks += [checkpointer, MetricsWriter(run)]
    context = CallbackContext(run, log, history)
    for named in config.train.callbacks:
        callbacks.append(CALLBACKS[named.name](context, **named.options))
    if progress is not None:
        callbacks.append(progress)
    return checkpointer, early_stopping, callbacks


def best_monitor(config: Config, data: Dataset) -> str:
    """The metric ``best.npz`` follows: early stopping's monitor, else the validation loss, or
    the training loss without a validation split."""
    if config.train.early_stopping is not None:
        return config.train.early_stopping.monitor
    return "val_loss" if len(data.X_val) else "train_loss"


def class_counts(data: Dataset) -> list[str]:
    """A classifier's class counts in each split, one line each (stratified splits keep the
    shares): what a new run says before its first epoch."""
    if data.task not in ("multiclass", "binary") or data.classes is None:
        return []
    lines = []
    for name, y in (("train", data.y_train), ("val", data.y_val), ("test", data.y_test)):
        if len(y):
            counts = np.bincount(y.astype(np.int64), minlength=len(data.classes))
            each = ", ".join(f"{c}: {n}" for c, n in zip(data.classes, counts, strict=True))
            lines.append(f"{name} split: {len(y)} samples ({each})")
    return lines


def describe_splits(config: Config, data: Dataset) -> list[str]:
    """What a run without a validation or a test split does instead (one line each): what
    ``best.npz``, early stopping and a plateau schedule follow, and where the final metrics are
    measured."""
    lines = []
    if not len(data.X_val):
        followers = [("best.npz", best_monitor(config, data))]
        if config.train.early_stopping is not None:
            followers.append(("early stopping", config.train.early_stopping.monitor))
        if "monitor" in config.schedule.options:
            followers.append((config.schedule.name, config.schedule.options["monitor"]))
        lines.append(
            "no validation split (data.val_fraction is 0): "
            + ", ".join(f"{name} follows {metric}" for name, metric in followers)
        )
    if not len(data.X_test):
        lines.append(
            "no test split (data.test_fraction is 0): the final metrics are best.npz's on the "
            "training split (train_*)"
        )
    return lines


def final_split(data: Dataset) -> tuple[np.ndarray, np.ndarray, str]:
    """The split a run's final metrics are measured on, with the prefix of their names: the test
    split (``test_``), or the training split (``train_``) when there is no test split
    (``data.test_fraction: 0``, the default for inline data)."""
    if len(data.X_test):
        return data.X_test, data.y_test, "test_"
    return data.X_train, data.y_train, "train_"


def final_weights(data: Dataset) -> np.ndarray | None:
    """The sample weights of ``final_split`` (a table's ``data.weight``), else None."""
    return data.w_test if len(data.X_test) else data.w_train


def finish_run(
    run: RunDirectory,
    test: tuple[np.ndarray, np.ndarray, str],
    samples: tuple[int, int, int],
    epochs_run: int,
    best: tuple[str, float | None, int | None],
    stop_reason: str,
    seconds: float,
    weights: np.ndarray | None = None,
) -> dict[str, Any]:
    """Evaluate best.npz on the test split ``(X_test, y_test, "test_")`` (or the training split
    ``(..., "train_")`` of a run without a test split), write summary.json and the plots. It is
    given that split alone: the caller lets go of the other arrays first, so the peak memory of
    a run stays that of its training."""
    best_model = load_model(run.checkpoint_path("best"))
    X, y, prefix = test
    full = report(best_model, X, y, prefix=prefix, weights=weights)
    summary: dict[str, Any] = {
        k: v for k, v in full.items() if k.startswith(prefix) and not isinstance(v, list | dict)
    }
    monitor, best_value, best_epoch = best
    n_train, n_val, n_test = samples
    summary.update(
        {
            "best_epoch": best_epoch,
            "best_" + monitor: best_value,
            "epochs_run": epochs_run,
            "stop_reason": stop_reason,
            "total_seconds": seconds,
            "train_samples": n_train,
            "val_samples": n_val,
            "test_samples": n_test,
        }
    )
    _add_diagnoses(run, summary)
    run.write_summary(summary)
    run.plot()
    if "confusion_matrix" in full and len(X):
        from bpnn.plots import plot_confusion_matrix  # start-up: matplotlib is loaded to draw

        split = "test set" if prefix == "test_" else "training set (no test split)"
        title = f"{best_model.config.name}: best.npz (epoch {best_epoch}), {split}"
        plot_confusion_matrix(
            full["confusion_matrix"],
            full["classes"],
            run.path / "plots" / "confusion_matrix.png",
            title,
        )
    return summary


def resume_hint(run: RunDirectory) -> str:
    """What to tell a user whose run was interrupted: where it stands and how to go on."""
    try:
        epoch = checkpoint.load(run.checkpoint_path("last")).epoch
    except Exception:  # only a hint: a broken checkpoint is reported by the resume itself
        return f"continue with: bpnn resume {run.path}"
    return f"last.npz holds epoch {epoch}; continue with: bpnn resume {run.path}"


def run_diagnoses(run: RunDirectory) -> list[dict[str, Any]]:
    """What ``bpnn.training.diagnoses.diagnose`` finds in the run's metrics, the update ratios
    judged at the base rate of the run's config (``optimizer.lr``), as the health callback judged
    them during training; the largest ``lr`` of the metrics only if config.yaml cannot be read."""
    try:
        base_lr: float | None = load_config(run.config_path).optimizer.lr
    except (BpnnError, OSError):
        base_lr = None
    return [d.as_dict() for d in diagnose(run.read_metrics(), base_lr=base_lr)]


def _add_diagnoses(run: RunDirectory, summary: dict[str, Any]) -> None:
    """``summary["diagnoses"]``: ``run_diagnoses`` (only when the metrics hold health numbers,
    i.e. ``train.health`` was on)."""
    with contextlib.suppress(DataError):
        if any("health" in row for row in run.read_metrics()):
            summary["diagnoses"] = run_diagnoses(run)


def record_failure(run: RunDirectory, error: BaseException, epochs_run: int) -> None:
    """Say in summary.json that the run failed (its checkpoints stay resumable)."""
    summary: dict[str, Any] = {
        "stop_reason": "error",
        "error": str(error) or type(error).__name__,
        "epochs_run": epochs_run,
    }
    _add_diagnoses(run, summary)
    with contextlib.suppress(OSError):
        run.write_summary(summary)


def run_training(
    config: Config,
    run_dir: Path | None = None,
    *,
    root: Path = Path("runs"),
    progress: Callback | None = None,
    log: Log = no_log,
) -> tuple[Path, dict[str, Any]]:
    """Train ``config`` into ``run_dir`` (see ``RunDirectory.create``), by default
    ``root/NAME-TIME``, writing ``config.yaml``, ``metrics.jsonl``, ``checkpoints/``,
    ``summary.json`` and ``plots/``. A failure before the first checkpoint leaves nothing behind
    (the directory is removed if this run made it). Returns the run directory and the summary."""
    started = time.perf_counter()
    created = run_dir is None or not Path(run_dir).exists()
    run = RunDirectory.create(run_dir, config.name, root)
    try:
        run.claim()
        run.remove_stale_temporaries()
        data, model = prepare_run(config, log)
        log(f"run directory: {run.path}")
        for line in class_counts(data):
            log(line)
        config = model.config  # its loss weights resolved: what resume and eval read back
        run.write_config(config)
        _, shuffle_rng = make_seeds(config.seed)
        checkpointer, _, callbacks = make_callbacks(config, run, data, progress, log=log)
        trainer = make_trainer(config, model, data, shuffle_rng, callbacks)
        try:
            end = trainer.fit()
        except BaseException as error:
            if run.holds_run() and not isinstance(error, KeyboardInterrupt):
                record_failure(run, error, model.epoch)
            raise
        seconds = time.perf_counter() - started
        test, samples, weights = final_split(data), data.n_samples, final_weights(data)
        del data, trainer  # the trainer is gone, so this frees the training and validation arrays
        best = (checkpointer.monitor, checkpointer.best, checkpointer.best_epoch)
        summary = finish_run(
            run, test, samples, model.epoch, best, end["stop_reason"], seconds, weights
        )
        return run.path, summary
    except BaseException as error:
        if not run.holds_run():
            run.remove_unfinished(created)
        elif isinstance(error, KeyboardInterrupt):
            error.resume_hint = resume_hint(run)  # type: ignore[attr-defined]
        raise
    finally:
        run.unlock()

"""The checks a config gets once its components are known: the data section against the loss and
the task, the memory a run needs, and the metrics its monitors watch.
"""

from __future__ import annotations

import inspect
from typing import Any

from bpnn.config.sections import Component, Config
from bpnn.data import SOURCES
from bpnn.data.options import DataConfig
from bpnn.errors import ConfigError
from bpnn.memory import check_fits, parse_size, training_bytes
from bpnn.metrics import epoch_metric_names
from bpnn.nn.schedules import SCHEDULES


def _resolve_data(data: DataConfig, loss: str, task: str) -> DataConfig:
    """Check that the source serves the loss's task; fill in ``scale`` (the source's default)
    and ``scale_target`` (on for regression losses)."""
    source = SOURCES[data.source]
    if task not in source.tasks:
        kind = "class labels" if "regression" not in source.tasks else "real-valued targets"
        hint = (
            "; set data.one_hot: true (the loss on one-hot targets) or loss: cross_entropy"
            if task == "regression"
            else ""
        )
        raise ConfigError(
            f"loss: '{loss}' is a {task} loss, but data.source '{data.source}' has {kind} "
            f"(it serves: {', '.join(source.tasks)}){hint}"
        )
    regression = task == "regression"
    if data.classes is not None:
        columns = SOURCES[data.source].target_columns(data)
        if regression:
            raise ConfigError(f"data.classes: only applies to class labels, not to '{loss}'")
        if task == "binary" and len(data.classes) != 2:
            raise ConfigError(
                f"data.classes: '{loss}' needs exactly 2 classes, got {len(data.classes)}"
            )
        if task == "multilabel" and len(data.classes) != columns:
            raise ConfigError(
                f"data.classes: names {len(data.classes)} labels for the {columns} target "
                "columns of data.y (one name per column)"
            )
    if data.scale_target and not regression:
        raise ConfigError(f"data.scale_target: only applies to regression losses, not '{loss}'")
    defaults: dict[str, Any] = {}
    if data.scale is None:
        defaults["scale"] = source.default_scale
    if data.scale_target is None:
        defaults["scale_target"] = regression and source.scale_targets
    return data.model_copy(update=defaults)


def memory_limit(config: Config) -> int | None:
    """``train.max_memory`` in bytes (None: the memory available is the limit)."""

    limit = config.train.max_memory
    return None if limit is None else parse_size(limit)


def _check_memory(config: Config) -> None:
    """What can be known without the data: the hidden layers alone, and a generated data set,
    must fit in memory (the run checks the whole network again once the data is loaded)."""

    limit = memory_limit(config)
    itemsize = 8 if config.train.dtype == "float64" else 4
    hidden = [1, *config.model.hidden, 1]
    # a batch of one: train.batch_size may exceed the data (the batch is then all of it); the
    # run checks the real batch once the data is loaded (``bpnn.run.check_network``)
    needed = training_bytes(hidden, 1, itemsize, 1, config.model.batch_norm)
    shown = str(config.model.hidden)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    check_fits(needed, f"model.hidden {shown}", limit, "make model.hidden smaller")
    data_bytes = SOURCES[config.data.source].estimated_bytes(config.data)
    if data_bytes is not None:
        check_fits(data_bytes, f"data '{config.data.source}'", limit, "generate fewer samples")


#: what a monitor the config leaves at its default watches without a validation split
#: (``data.val_fraction: 0``), as ``best.npz`` does: there is no ``val_loss`` to watch
NO_VALIDATION_MONITOR = "train_loss"


def _monitors_without_validation(config: Config) -> Config:
    """Without a validation split, early stopping's monitor and a schedule's (reduce_on_plateau),
    when the config does not name them, watch ``NO_VALIDATION_MONITOR``; a monitor the config
    names is checked as written (``_check_monitors``)."""
    if config.data.val_fraction > 0:
        return config
    update: dict[str, Any] = {}
    stopping = config.train.early_stopping
    if stopping is not None and "monitor" not in stopping.model_fields_set:
        stopping = stopping.model_copy(update={"monitor": NO_VALIDATION_MONITOR})
        update["train"] = config.train.model_copy(update={"early_stopping": stopping})
    schedule = config.schedule
    factory = SCHEDULES.get(schedule.name)  # an unknown name is reported by its check
    takes_monitor = factory is not None and "monitor" in inspect.signature(factory).parameters
    if takes_monitor and "monitor" not in schedule.options:
        options = {**schedule.options, "monitor": NO_VALIDATION_MONITOR}
        update["schedule"] = schedule.model_copy(update={"options": options})
    return config.model_copy(update=update)


def _check_monitors(config: Config, schedule: Component, task: str) -> None:
    """The metrics that early stopping and reduce_on_plateau watch must be metrics of the run."""
    has_validation = config.data.val_fraction > 0
    metrics = epoch_metric_names(task, has_validation)
    monitors = {"schedule.monitor": schedule.options.get("monitor")}
    if config.train.early_stopping is not None:
        monitors["train.early_stopping.monitor"] = config.train.early_stopping.monitor
    for i, name in enumerate(config.train.metrics):
        monitors[f"train.metrics[{i}]"] = name
    for key, monitor in monitors.items():
        if monitor is not None and monitor not in metrics:
            why = " (data.val_fraction is 0: no validation split)" if not has_validation else ""
            raise ConfigError(
                f"{key}: '{monitor}' is not a metric of this run{why}; choose from: "
                + ", ".join(metrics)
            )

"""Metrics of a model on data, ``bpnn eval`` and ``bpnn predict``.

The same ``evaluate`` serves validation during training, the test metrics in ``summary.json``
and ``bpnn eval``, so the three always agree.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bpnn.model import Model


def correct_count(task: str, output: np.ndarray, y: np.ndarray) -> int:
    """How many predictions in ``output`` (network probabilities) match class indices ``y``."""
    if task == "binary":
        return int(np.count_nonzero((output[:, 0] > 0.5) == (y == 1)))
    return int(np.count_nonzero(output.argmax(axis=1) == y))


def evaluate(model: Model, X: np.ndarray, y: np.ndarray, prefix: str = "") -> dict[str, float]:
    """Loss and task metrics of ``model`` on scaled features ``X`` and network targets ``y``:
    ``loss`` and ``accuracy`` for classification; ``loss`` (on the scaled targets), ``mae`` and
    ``r2`` (in the data's own units) for regression."""
    loss, output = model.network.evaluate(X, y)
    metrics = {f"{prefix}loss": loss}
    if model.task == "regression":
        scaling = model.target_scaling
        predicted = output if scaling is None else scaling.invert(output)
        actual = y if scaling is None else scaling.invert(y)
        residual = actual - predicted
        total = ((actual - actual.mean(axis=0)) ** 2).sum(axis=0)
        r2 = 1 - (residual**2).sum(axis=0) / np.where(total == 0, 1, total)
        metrics[f"{prefix}mae"] = float(np.abs(residual).mean())
        metrics[f"{prefix}r2"] = float(r2.mean())
    else:
        metrics[f"{prefix}accuracy"] = correct_count(model.task, output, y) / max(len(y), 1)
    return metrics


def evaluate_checkpoint(
    path: Path, log: Callable[[str], None] = lambda message: None
) -> dict[str, Any]:
    """Test metrics of a checkpoint on the test split of the data it was trained on, rebuilt from
    its config and seed: the keys and numbers of ``summary.json``."""
    from bpnn.data import load_dataset
    from bpnn.errors import DataError
    from bpnn.model import load_model

    model = load_model(path)
    config = model.config
    data = load_dataset(
        config.data, task=config.task, seed=config.seed, dtype=model.network.dtype, log=log
    )
    if data.n_features != model.n_features:
        raise DataError(
            f"{data.source}: has {data.n_features} features, "
            f"the checkpoint {path} expects {model.n_features}"
        )
    if model.classes is not None and (
        data.classes is None or list(data.classes) != list(model.classes)
    ):
        raise DataError(
            f"{data.source}: classes {data.classes} differ from the checkpoint's {model.classes}"
        )
    X_test = data.X_test
    same_scaling = np.array_equal(
        data.input_scaling.offset, model.input_scaling.offset
    ) and np.array_equal(data.input_scaling.factor, model.input_scaling.factor)
    if not same_scaling:
        log(
            f"warning: the data of {path} changed since training; "
            "scaling with the checkpoint's own scaling"
        )
        X_test = model.input_scaling.apply(data.input_scaling.invert(X_test), model.network.dtype)
    metrics: dict[str, Any] = evaluate(model, X_test, data.y_test, prefix="test_")
    metrics["epoch"] = model.epoch
    metrics["test_samples"] = len(X_test)
    return metrics


def evaluate_file(path: Path, data_file: Path) -> dict[str, Any]:
    """Metrics of a checkpoint on a new labelled file (CSV with the target column, or NPZ with
    ``X`` and ``y``): its features are checked against the model's and its labels against the
    model's classes; the checkpoint's own scaling is applied."""
    from bpnn.data import encode_labels, read_labelled
    from bpnn.model import load_model

    model = load_model(path)
    X, labels = read_labelled(
        data_file, feature_names=model.feature_names, target=model.target_name
    )
    if model.classes is not None:
        y = encode_labels(labels, model.classes, str(data_file))
    else:
        y = np.asarray(labels, dtype=np.float64).reshape(len(labels), -1)
        if y.shape[1] != model.network.sizes[-1]:
            from bpnn.errors import DataError

            raise DataError(
                f"{data_file}: has {y.shape[1]} target columns, the model predicts "
                f"{model.network.sizes[-1]}"
            )
    metrics: dict[str, Any] = evaluate(
        model, model.input_scaling.apply(X, model.network.dtype), model.targets(y), prefix="test_"
    )
    metrics["epoch"] = model.epoch
    metrics["test_samples"] = len(X)
    return metrics


def prediction_table(checkpoint: Path, input_file: Path) -> str:
    """CSV text with one row per sample of ``input_file``: ``label`` and ``p_<class>`` columns for
    classification, ``value`` (or ``value_<i>``) columns for regression."""
    from bpnn.data import read_inputs
    from bpnn.model import load_model

    model = load_model(checkpoint)
    X = read_inputs(
        input_file,
        feature_names=model.feature_names,
        n_features=model.n_features,
        target=model.target_name,
    )
    output = model.predict(X)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if model.classes is not None:
        writer.writerow(["label", *[f"p_{c}" for c in model.classes]])
        labels = model.classes[output.argmax(axis=1)]
        for label, row in zip(labels, output, strict=True):
            writer.writerow([label, *[f"{p:.6g}" for p in row]])
    else:
        names = (
            ["value"] if output.shape[1] == 1 else [f"value_{i}" for i in range(output.shape[1])]
        )
        writer.writerow(names)
        for row in output:
            writer.writerow([f"{v:.6g}" for v in row])
    return buffer.getvalue()

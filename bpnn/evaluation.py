"""Metrics of a model on arrays, and the prediction table of ``bpnn predict``.

The same ``evaluate`` serves validation during training, the test metrics in ``summary.json``
and ``bpnn eval``, so the three always agree.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from bpnn.data import read_inputs
from bpnn.model import Model, load_model


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


def prediction_table(checkpoint: Path, input_file: Path) -> str:
    """CSV text with one row per sample of ``input_file``: ``label`` and ``p_<class>`` columns for
    classification, ``value`` (or ``value_<i>``) columns for regression."""
    model = load_model(checkpoint)
    X = read_inputs(
        input_file,
        feature_names=model.feature_names,
        n_features=model.n_features,
        target=model.target_name,
    )
    model.scaled_inputs(X, str(input_file))  # a value beyond the dtype's range: one line
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

"""Metrics of a model on arrays, and the prediction table of ``bpnn predict``.

The same ``evaluate`` serves validation during training, the test metrics in ``summary.json``
and ``bpnn eval``, so the three always agree.
"""

from __future__ import annotations

import csv
import io
import json
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bpnn.data import samples_to_predict
from bpnn.errors import ConfigError
from bpnn.metrics import accuracy_name
from bpnn.model import Model, load_model
from bpnn.outputs import refuse_existing, write_new
from bpnn.scores import class_probabilities, classification_scores, regression_scores

Log = Callable[[str], None]


def correct_count(task: str, output: np.ndarray, y: np.ndarray) -> float:
    """How many predictions in ``output`` (network probabilities) match class indices ``y``;
    for several 0/1 labels ``y`` (multi-label) each sample counts the share of its labels
    predicted right (``p > 0.5`` against 1), so that over ``n`` samples ``correct / n`` is the
    mean over samples and labels."""
    if task == "multilabel":
        return np.count_nonzero((output > 0.5) == (y == 1)) / max(output.shape[1], 1)
    if task == "binary":
        return int(np.count_nonzero((output[:, 0] > 0.5) == (y == 1)))
    return int(np.count_nonzero(output.argmax(axis=1) == y))


def evaluate(
    model: Model,
    X: np.ndarray,
    y: np.ndarray,
    prefix: str = "",
    scores: bool = True,
    weights: np.ndarray | None = None,
) -> dict[str, float]:
    """Loss and task metrics of ``model`` on scaled features ``X`` and network targets ``y``:
    ``loss`` and ``accuracy`` for classification (multi-label: ``label_accuracy``, the mean over
    samples and labels of ``(p > 0.5) == t``); ``loss`` (on the scaled targets), ``mae``,
    ``r2`` and ``rmse = sqrt(mean((y - y_hat)^2))`` (in the data's own units) for regression;
    with ``scores``, also ``classification_scores`` or ``regression_scores``. ``weights`` (a
    weight per sample, a table's ``data.weight``) weigh every one: the loss and each metric are
    weighted means over the samples."""
    loss, output = model.network.evaluate(X, y, weights=weights)
    return _metrics(model, loss, output, y, prefix, scores, weights)


def _metrics(
    model: Model,
    loss: float,
    output: np.ndarray,
    y: np.ndarray,
    prefix: str,
    scores: bool = True,
    weights: np.ndarray | None = None,
) -> dict[str, float]:
    """``evaluate``'s metrics from the network's ``output`` (and ``loss``) on targets ``y``."""
    metrics = {f"{prefix}loss": loss}
    if model.task == "regression":
        scaling = model.target_scaling
        predicted = output if scaling is None else scaling.invert(output)
        actual = y if scaling is None else scaling.invert(y)
        residual = actual - predicted
        w = np.ones(len(actual)) if weights is None else np.asarray(weights, dtype=np.float64)
        w = w.reshape(-1, 1)
        centre = (w * actual).sum(axis=0) / w.sum() if len(actual) else 0.0
        total = (w * (actual - centre) ** 2).sum(axis=0)
        r2 = 1 - (w * residual**2).sum(axis=0) / np.where(total == 0, 1, total)
        metrics[f"{prefix}mae"] = float(np.average(np.abs(residual).mean(axis=1), weights=w[:, 0]))
        metrics[f"{prefix}r2"] = float(r2.mean())
        squared = np.average((residual**2).mean(axis=1), weights=w[:, 0])
        metrics[f"{prefix}rmse"] = float(np.sqrt(squared))
        if scores:
            metrics.update(_prefixed(prefix, regression_scores(actual, predicted, weights)))
    else:
        accuracy = f"{prefix}{accuracy_name(model.task)}"
        metrics[accuracy] = correct_share(model.task, output, y, weights)
        if scores:
            found = classification_scores(model.task, output, y, weights)
            metrics.update(_prefixed(prefix, found))
    return metrics


def correct_share(
    task: str, output: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None
) -> float:
    """``correct_count / n``, or with ``weights`` the weighted share of right predictions."""
    if weights is None or len(y) == 0:
        return correct_count(task, output, y) / max(len(y), 1)
    if task == "multilabel":
        right = ((output > 0.5) == (y == 1)).mean(axis=1)
    elif task == "binary":
        right = (output[:, 0] > 0.5) == (y == 1)
    else:
        right = output.argmax(axis=1) == y
    return float(np.average(right, weights=weights))


def _prefixed(prefix: str, values: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}{name}": value for name, value in values.items()}


def predicted_classes(task: str, output: np.ndarray) -> np.ndarray:
    """Class indices from network probabilities (``p > 0.5`` for one sigmoid output); for
    multi-label outputs the 0/1 matrix of the labels that apply (``p > 0.5``)."""
    if task == "multilabel":
        return (output > 0.5).astype(np.int64)
    if task == "binary":
        return (output[:, 0] > 0.5).astype(np.int64)
    return output.argmax(axis=1)


def classification_report(
    classes: Sequence[Any], y: np.ndarray, predicted: np.ndarray
) -> dict[str, Any]:
    """Per-class precision, recall, F1 and support and the confusion matrix of class indices
    ``y`` (true) and ``predicted`` (scikit-learn's ``precision_recall_fscore_support`` and
    ``confusion_matrix``): ``precision = TP / (TP + FP)``, ``recall = TP / (TP + FN)``,
    ``F1 = 2 precision recall / (precision + recall)`` (0 where a denominator is 0); the matrix
    has a row per true class and a column per predicted class, in the order of ``classes``."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    labels = list(range(len(classes)))
    with warnings.catch_warnings():  # one class in a tiny set: the labels say which it is
        warnings.filterwarnings("ignore", message="A single label was found")
        precision, recall, f1, support = precision_recall_fscore_support(
            y, predicted, labels=labels, zero_division=0
        )
        matrix = confusion_matrix(y, predicted, labels=labels).tolist()
    names = [str(c) for c in classes]
    return {
        "classes": names,
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(names)
        },
        "confusion_matrix": matrix,
    }


def multilabel_report(
    labels: Sequence[Any], y: np.ndarray, predicted: np.ndarray
) -> dict[str, Any]:
    """Per-label precision, recall, F1 and support of 0/1 label columns ``y`` (true) and
    ``predicted``, each label a yes/no of its own (as ``classification_report`` has them for a
    class; support: the samples that have the label), and each label's confusion counts
    ``[[TN, FP], [FN, TP]]`` (rows: true no/yes, columns: predicted no/yes)."""
    names = [str(label) for label in labels]
    per_label: dict[str, Any] = {}
    matrices = []
    for i, name in enumerate(names):
        true, guess = y[:, i] == 1, predicted[:, i] == 1
        tp = int(np.count_nonzero(true & guess))
        fp = int(np.count_nonzero(~true & guess))
        fn = int(np.count_nonzero(true & ~guess))
        tn = int(np.count_nonzero(~true & ~guess))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_label[name] = {
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": tp + fn,
        }
        matrices.append([[tn, fp], [fn, tp]])
    return {"labels": names, "per_label": per_label, "label_confusion": matrices}


def report(
    model: Model,
    X: np.ndarray,
    y: np.ndarray,
    prefix: str = "test_",
    weights: np.ndarray | None = None,
) -> dict[str, Any]:
    """``evaluate`` and, for classification, ``classification_report`` of ``model`` on scaled
    features ``X`` and network targets ``y`` (the metrics weighted by ``weights``; the
    per-class report and confusion matrix count samples). Also returns the predictions (class
    indices, or values in the data's units) and the true values, for plots."""
    loss, output = model.network.evaluate(X, y, weights=weights)  # one pass for every number
    metrics: dict[str, Any] = _metrics(model, loss, output, y, prefix, True, weights)
    if model.task == "regression":
        scaling = model.target_scaling
        predicted = output if scaling is None else scaling.invert(output)
        actual = y if scaling is None else scaling.invert(y)
        return {**metrics, "predicted": predicted, "actual": actual}
    predicted = predicted_classes(model.task, output)
    assert model.classes is not None
    describe = multilabel_report if model.task == "multilabel" else classification_report
    metrics.update(describe(list(model.classes), y, predicted))
    probabilities = (
        output if model.task == "multilabel" else class_probabilities(model.task, output)
    )
    return {**metrics, "predicted": predicted, "actual": y, "probabilities": probabilities}


#: the text of a prediction: float32 values round-trip through 9 significant digits
NUMBER_FORMAT = "%.9g"
PREDICTION_FORMATS = ("csv", "jsonl")


def predictions(
    checkpoint: Path,
    input_file: Path,
    *,
    id_column: str | None = None,
    log: Log | None = None,
) -> tuple[list[str], list[list[Any]]]:
    """The predictions for each sample of ``input_file``: column names and one row per sample,
    ``label`` and ``p_<class>`` for classification (multi-label: ``labels``, the list of labels
    with ``p > 0.5``, and ``p_<label>``), ``value`` (or ``value_<i>``) for regression, after the
    ``id_column`` copied through as written when asked for. A row the model cannot predict (a
    missing value, ``data.missing: drop``) keeps its place with ``None`` cells."""
    model = load_model(checkpoint)
    samples = samples_to_predict(
        model.inputs, input_file, id_column=id_column, log=log or (lambda message: None)
    )
    # scaled once: a value beyond the dtype's range is one line naming the file
    output = model.predict_scaled(model.scaled_inputs(samples.X, str(input_file)))
    rows: list[list[Any]]
    if model.task == "multilabel":
        assert model.classes is not None
        names = ["labels", *[f"p_{c}" for c in model.classes]]
        sets = [[c.item() for c in model.classes[row > 0.5]] for row in output]
        rows = [[labels, *row.tolist()] for labels, row in zip(sets, output, strict=True)]
    elif model.classes is not None:
        names = ["label", *[f"p_{c}" for c in model.classes]]
        labels = model.classes[output.argmax(axis=1)]
        rows = [[label.item(), *row.tolist()] for label, row in zip(labels, output, strict=True)]
    else:
        names = (
            ["value"] if output.shape[1] == 1 else [f"value_{i}" for i in range(output.shape[1])]
        )
        rows = output.tolist()
    if samples.kept is not None:  # rows left out keep their place, with empty cells
        table: list[list[Any]] = [[None] * len(names) for _ in range(samples.n_rows)]
        for position, row in zip(np.flatnonzero(samples.kept), rows, strict=True):
            table[position] = row
        rows = table
    if id_column is not None and samples.ids is not None:
        names = [id_column, *names]
        rows = [[identifier, *row] for identifier, row in zip(samples.ids, rows, strict=True)]
    return names, rows


def format_predictions(names: list[str], rows: list[list[Any]], fmt: str = "csv") -> str:
    """``predictions`` as CSV (a header row; a multi-label row's labels joined by ``;``) or JSON
    lines (``fmt="jsonl"``: one object per row, labels as a list, ``null`` for an empty cell).
    Numbers are written with ``%.9g``, enough for a float32 to read back exactly."""
    check_prediction_format(fmt)
    if fmt == "jsonl":
        return "".join(
            json.dumps(dict(zip(names, _json_cells(row), strict=True))) + "\n" for row in rows
        )
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(names)
    writer.writerows([_csv_cell(v) for v in row] for row in rows)
    return buffer.getvalue()


def check_prediction_format(fmt: str) -> None:
    """A ``ConfigError`` unless ``fmt`` is one of ``PREDICTION_FORMATS``."""
    if fmt not in PREDICTION_FORMATS:
        raise ConfigError(f"--format: {fmt!r} is not one of {', '.join(PREDICTION_FORMATS)}")


def check_prediction_request(fmt: str = "csv", out: Path | None = None) -> None:
    """What ``predict`` checks before it reads any sample: a known ``fmt``, and an ``out`` that
    does not exist yet (an ``OutputError`` naming it), so that nothing is read, from standard
    input least of all, for a table that could not be written."""
    check_prediction_format(fmt)
    if out is not None:
        refuse_existing([out], "--out")


def prediction_table(
    checkpoint: Path,
    input_file: Path,
    *,
    id_column: str | None = None,
    fmt: str = "csv",
    log: Log | None = None,
) -> str:
    """``predictions`` of ``input_file`` as text (``format_predictions``)."""
    check_prediction_request(fmt)
    names, rows = predictions(checkpoint, input_file, id_column=id_column, log=log)
    return format_predictions(names, rows, fmt)


def write_predictions(
    checkpoint: Path,
    input_file: Path,
    out: Path,
    *,
    id_column: str | None = None,
    fmt: str = "csv",
    log: Log | None = None,
) -> int:
    """``prediction_table`` written to ``out``, a new file (never over one); the number of
    rows written."""
    check_prediction_request(fmt, out)
    names, rows = predictions(checkpoint, input_file, id_column=id_column, log=log)
    write_new(out, format_predictions(names, rows, fmt), "--out")
    return len(rows)


def _csv_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list):  # a multi-label row's labels
        return ";".join(map(str, value))
    if isinstance(value, float):
        return NUMBER_FORMAT % value
    return str(value)


def _json_cells(row: list) -> list:
    """Floats rounded to ``%.9g`` (as numbers), the rest as they are."""
    return [float(NUMBER_FORMAT % v) if isinstance(v, float) else v for v in row]

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
    model: Model, X: np.ndarray, y: np.ndarray, prefix: str = "", scores: bool = True
) -> dict[str, float]:
    """Loss and task metrics of ``model`` on scaled features ``X`` and network targets ``y``:
    ``loss`` and ``accuracy`` for classification (multi-label: ``label_accuracy``, the mean over
    samples and labels of ``(p > 0.5) == t``); ``loss`` (on the scaled targets), ``mae``,
    ``r2`` and ``rmse = sqrt(mean((y - y_hat)^2))`` (in the data's own units) for regression;
    with ``scores``, also ``classification_scores`` or ``regression_scores``."""
    loss, output = model.network.evaluate(X, y)
    return _metrics(model, loss, output, y, prefix, scores)


def _metrics(
    model: Model, loss: float, output: np.ndarray, y: np.ndarray, prefix: str, scores: bool = True
) -> dict[str, float]:
    """``evaluate``'s metrics from the network's ``output`` (and ``loss``) on targets ``y``."""
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
        metrics[f"{prefix}rmse"] = float(np.sqrt((residual**2).mean()))
        if scores:
            metrics.update(_prefixed(prefix, regression_scores(actual, predicted)))
    else:
        accuracy = f"{prefix}{accuracy_name(model.task)}"
        metrics[accuracy] = correct_count(model.task, output, y) / max(len(y), 1)
        if scores:
            metrics.update(_prefixed(prefix, classification_scores(model.task, output, y)))
    return metrics


def _prefixed(prefix: str, values: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}{name}": value for name, value in values.items()}


#: the bins of the expected calibration error: equal widths over the confidence [0, 1]
CALIBRATION_BINS = 15


def calibration_bins(
    confidence: np.ndarray,
    correct: np.ndarray,
    weights: np.ndarray | None = None,
    bins: int = CALIBRATION_BINS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (weighted) count, share right and mean confidence of the predictions in each of
    ``bins`` equal bins of ``confidence``; bin ``b`` holds ``(b / bins, (b + 1) / bins]`` (a
    confidence of 0 goes into the first). Empty bins have NaN shares."""
    w = np.ones(len(confidence)) if weights is None else np.asarray(weights, dtype=np.float64)
    confidence = np.asarray(confidence, dtype=np.float64)
    which = np.clip(np.ceil(confidence * bins).astype(np.int64) - 1, 0, bins - 1)
    count = np.bincount(which, weights=w, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        right = np.bincount(which, weights=w * correct, minlength=bins) / count
        sure = np.bincount(which, weights=w * confidence, minlength=bins) / count
    return count, right, sure


def expected_calibration_error(
    confidence: np.ndarray,
    correct: np.ndarray,
    weights: np.ndarray | None = None,
    bins: int = CALIBRATION_BINS,
) -> float:
    """``ECE = sum_b (n_b / n) |accuracy_b - confidence_b|`` over ``bins`` equal bins of the
    ``confidence`` of each prediction (the probability of the class predicted), ``correct``
    whether it was right (Guo et al. 2017); ``weights`` count a sample ``w_i`` times. 0 for a
    model whose 80 % predictions are right 80 % of the time, in every bin."""
    if len(confidence) == 0:
        return float("nan")
    count, right, sure = calibration_bins(confidence, correct, weights, bins)
    if not count.sum() > 0:
        return float("nan")
    filled = count > 0
    return float((count[filled] * np.abs(right[filled] - sure[filled])).sum() / count.sum())


def class_probabilities(task: str, output: np.ndarray) -> np.ndarray:
    """The probability of every class, ``(batch, classes)``: the network's output, or for one
    sigmoid output (binary) the two columns ``1 - p`` and ``p``."""
    if task == "binary":
        p = output[:, 0].astype(np.float64)
        return np.column_stack([1 - p, p])
    return output.astype(np.float64)


#: what ``classification_scores`` returns, in the order of the metric table
SCORE_NAMES = (
    "f1_macro",
    "f1_weighted",
    "precision",
    "recall",
    "balanced_accuracy",
    "roc_auc",
    "pr_auc",
    "log_loss",
    "brier",
    "ece",
)


def classification_scores(
    task: str, output: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None
) -> dict[str, float]:
    """The scores practitioners choose a classifier by, from the network's outputs ``output``
    and the class indices ``y`` (scikit-learn's functions; ``weights``: a weight per sample):
    macro and weighted F1, precision and recall (of class 1 for a binary task, the mean over
    classes otherwise), balanced accuracy, ROC AUC (one-vs-rest for several classes), PR AUC
    (average precision), log loss, Brier score (the mean over samples of
    ``sum_k (p_k - t_k)^2``; binary: ``(p - t)^2``) and ``expected_calibration_error``.

    A score a split cannot define is NaN: the AUCs with one class present or outputs that are
    not finite; log loss, Brier and ECE when the outputs are not probabilities (squared error
    on identity outputs; one-hot sigmoid outputs, which need not sum to 1, are normalised for
    the log loss). Empty for a multi-label task, whose labels are scored in its report."""
    if task not in ("binary", "multiclass") or len(y) == 0:
        return {}
    probabilities = class_probabilities(task, output)
    if probabilities.shape[1] < 2:  # a model of one class (inline data): nothing to tell apart
        return dict.fromkeys(SCORE_NAMES, float("nan"))
    y = np.asarray(y, dtype=np.int64)
    predicted = probabilities.argmax(axis=1) if task != "binary" else (output[:, 0] > 0.5) * 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a class with no prediction: 0 by zero_division
        scores = _label_scores(task, y, predicted, probabilities.shape[1], weights)
        scores.update(_ranking_scores(task, y, probabilities, weights))
        scores.update(_probability_scores(task, y, probabilities, weights))
    return {name: float(scores[name]) for name in SCORE_NAMES}


def _label_scores(
    task: str, y: np.ndarray, predicted: np.ndarray, n_classes: int, weights: np.ndarray | None
) -> dict[str, float]:
    """The scores of the labels predicted: F1, precision, recall, balanced accuracy."""
    from sklearn import metrics as sk

    common = {"labels": list(range(n_classes)), "sample_weight": weights, "zero_division": 0}
    average = "binary" if task == "binary" else "macro"
    return {
        "f1_macro": sk.f1_score(y, predicted, average="macro", **common),
        "f1_weighted": sk.f1_score(y, predicted, average="weighted", **common),
        "precision": sk.precision_score(y, predicted, average=average, **common),
        "recall": sk.recall_score(y, predicted, average=average, **common),
        "balanced_accuracy": sk.balanced_accuracy_score(y, predicted, sample_weight=weights),
    }


def _ranking_scores(
    task: str, y: np.ndarray, probabilities: np.ndarray, weights: np.ndarray | None
) -> dict[str, float]:
    """ROC AUC and average precision: class 1 for a binary task; else one class against the
    rest, the mean over the classes the split has (scikit-learn's ``multi_class="ovr"``,
    ``average="macro"`` when every class is present)."""
    from sklearn import metrics as sk

    present = np.unique(y)
    if len(present) < 2 or not np.all(np.isfinite(probabilities)):
        return {"roc_auc": float("nan"), "pr_auc": float("nan")}
    columns = [1] if task == "binary" else list(present)
    onehot = np.eye(probabilities.shape[1])[y]
    roc = [
        sk.roc_auc_score(onehot[:, k], probabilities[:, k], sample_weight=weights) for k in columns
    ]
    average = [
        sk.average_precision_score(onehot[:, k], probabilities[:, k], sample_weight=weights)
        for k in columns
    ]
    return {"roc_auc": float(np.mean(roc)), "pr_auc": float(np.mean(average))}


def _probability_scores(
    task: str, y: np.ndarray, probabilities: np.ndarray, weights: np.ndarray | None
) -> dict[str, float]:
    """Log loss, Brier score and ECE: NaN unless every output is a probability in [0, 1]."""
    from sklearn import metrics as sk

    if not np.all((probabilities >= 0) & (probabilities <= 1)):  # NaN included
        return dict.fromkeys(("log_loss", "brier", "ece"), float("nan"))
    onehot = np.eye(probabilities.shape[1])[y]
    sums = probabilities.sum(axis=1, keepdims=True)
    normalised = probabilities / np.where(sums > 0, sums, 1)
    labels = list(range(probabilities.shape[1]))
    if task == "binary":
        brier = sk.brier_score_loss(y, probabilities[:, 1], sample_weight=weights)
    else:
        brier = float(np.average(((probabilities - onehot) ** 2).sum(axis=1), weights=weights))
    confidence = probabilities.max(axis=1)
    return {
        "log_loss": sk.log_loss(y, normalised, labels=labels, sample_weight=weights),
        "brier": brier,
        "ece": expected_calibration_error(confidence, probabilities.argmax(axis=1) == y, weights),
    }


def regression_scores(
    actual: np.ndarray, predicted: np.ndarray, weights: np.ndarray | None = None
) -> dict[str, float]:
    """MAPE ``mean |y - y_hat| / max(|y|, eps)`` and the median absolute error, in the data's
    own units (scikit-learn's functions; several targets: the mean over them)."""
    from sklearn import metrics as sk

    if len(actual) == 0:
        return {}
    return {
        "mape": float(sk.mean_absolute_percentage_error(actual, predicted, sample_weight=weights)),
        "median_ae": float(sk.median_absolute_error(actual, predicted, sample_weight=weights)),
    }


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


def report(model: Model, X: np.ndarray, y: np.ndarray, prefix: str = "test_") -> dict[str, Any]:
    """``evaluate`` and, for classification, ``classification_report`` of ``model`` on scaled
    features ``X`` and network targets ``y``. Also returns the predictions (class indices, or
    values in the data's units) and the true values, for plots."""
    loss, output = model.network.evaluate(X, y)  # one forward pass for every number
    metrics: dict[str, Any] = _metrics(model, loss, output, y, prefix)
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

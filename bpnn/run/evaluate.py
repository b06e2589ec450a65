"""A checkpoint's metrics and reports: ``bpnn eval`` on the data it was trained on, or on a
labelled file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from bpnn.data import Dataset, encode_labels, label_columns, labelled_samples, load_dataset
from bpnn.errors import ConfigError, DataError
from bpnn.evaluation import report
from bpnn.model import Model, load_model
from bpnn.outputs import output_set, refuse_existing
from bpnn.run.directory import Log, no_log
from bpnn.run.pipeline import final_split, final_weights
from bpnn.scores import calibration_bins


def _report(
    model: Model,
    X: np.ndarray,
    y: np.ndarray,
    plots: Path | None,
    title: str,
    log: Log,
    prefix: str = "test_",
    weights: np.ndarray | None = None,
) -> dict[str, Any]:
    """The metrics of ``model`` (named ``prefix`` + metric) with, for classification, the
    per-class table and the confusion matrix; with ``plots``, the confusion matrix
    (classification) or the predicted values against the true ones (regression) drawn there as
    PNG (never over a file; ``wrote PATH`` is logged)."""
    if plots is not None and model.task == "multilabel":
        raise ConfigError(
            "--plots: draws a confusion matrix of classes or predicted values, not the "
            "per-label report of a multi-label model (see the per-label table or --json)"
        )
    full = report(model, X, y, prefix=prefix, weights=weights)
    predicted, actual = full.pop("predicted"), full.pop("actual")
    probabilities = full.pop("probabilities", None)
    if plots is not None:
        _draw_report(model.task, full, predicted, actual, probabilities, plots, title, prefix, log)
    return full


#: the figures ``eval --plots`` draws for a classifier and for a regression
CLASSIFIER_PLOTS = ("confusion_matrix.png", "roc.png", "precision_recall.png", "reliability.png")
REGRESSION_PLOTS = ("predictions.png",)


def _draw_report(
    task: str,
    full: dict[str, Any],
    predicted: np.ndarray,
    actual: np.ndarray,
    probabilities: np.ndarray | None,
    plots: Path,
    title: str,
    prefix: str,
    log: Log,
) -> None:
    """``eval --plots``: a regression's predicted against true values; a classifier's
    confusion matrix, ROC and precision-recall curves and reliability diagram (none over a
    file: every one is refused before the first is drawn)."""
    from bpnn import plots as draw  # start-up: matplotlib

    option = "--plots folder"
    names = REGRESSION_PLOTS if task == "regression" else CLASSIFIER_PLOTS
    targets = [plots / name for name in names]
    refuse_existing(targets, option)
    with output_set(plots, option):
        if task == "regression":
            draw.plot_predictions(actual, predicted, targets[0], title, option)
        else:
            assert probabilities is not None
            classes = full["classes"]
            draw.plot_confusion_matrix(full["confusion_matrix"], classes, targets[0], title, option)
            draw.plot_roc(actual, probabilities, classes, targets[1], title, option)
            draw.plot_precision_recall(actual, probabilities, classes, targets[2], title, option)
            ece = full.get(f"{prefix}ece", float("nan"))
            bins = calibration_bins(
                probabilities.max(axis=1), probabilities.argmax(axis=1) == actual
            )
            draw.plot_reliability(*bins, targets[3], title, ece, option)
    for target in targets:
        log(f"wrote {target}")


def evaluate_checkpoint(path: Path, log: Log = no_log, plots: Path | None = None) -> dict[str, Any]:
    """Test metrics of a checkpoint on the test split of the data it was trained on, rebuilt from
    its config and seed: the keys and numbers of ``summary.json`` (``train_*`` on the training
    split for a run without a test split), with the per-class report and confusion matrix of a
    classifier (see ``_report``)."""
    model = load_model(path)
    config = model.config
    data = checkpoint_dataset(model, path, log)
    X_test, y_test, prefix = final_split(data)
    if prefix != "test_":
        log(
            f"{path}: trained without a test split (data.test_fraction is 0): the metrics are "
            "on its training split (train_*), as in summary.json; --data FILE evaluates on a file"
        )
    if data.input_scaling != model.input_scaling:
        log(
            f"warning: the data of {path} changed since training; "
            "scaling with the checkpoint's own scaling"
        )
        X_test = model.input_scaling.apply(data.input_scaling.invert(X_test), model.network.dtype)
    split = "test set" if prefix == "test_" else "training set (no test split)"
    title = f"{config.name}: {path.name}, {split}"
    weights = final_weights(data)  # a table's data.weight: as in summary.json
    metrics = _report(model, X_test, y_test, plots, title, log, prefix, weights)
    return _ordered(metrics, model.epoch, len(X_test), prefix)


def checkpoint_dataset(model: Model, path: Path, log: Log = no_log) -> Dataset:
    """The data set the checkpoint ``path`` of ``model`` was trained on, rebuilt from its config
    and seed (the same splits); a ``DataError`` when it no longer fits the model (its width,
    its classes)."""
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
    return data


def _ordered(
    metrics: dict[str, Any], epoch: int, samples: int, prefix: str = "test_"
) -> dict[str, Any]:
    """The scalar metrics, ``epoch`` and ``{prefix}samples``, then the per-class report."""
    scalars = {k: v for k, v in metrics.items() if not isinstance(v, list | dict)}
    rest = {k: v for k, v in metrics.items() if k not in scalars}
    return {**scalars, "epoch": epoch, f"{prefix}samples": samples, **rest}


def evaluate_file(
    path: Path, data_file: Path, log: Log = no_log, plots: Path | None = None
) -> dict[str, Any]:
    """Metrics of a checkpoint on a new labelled file (a table with the target column, or NPZ
    with ``X`` and ``y``): its columns are read as ``predict`` reads them (the checkpoint's
    table encoding; extra columns left out, through ``log``), its labels checked against the
    model's classes; the checkpoint's own scaling is applied."""
    model = load_model(path)
    X, y = labelled_file(model, data_file, log)
    X_scaled = model.scaled_inputs(X, str(data_file))  # beyond the dtype's range: one line
    title = f"{model.config.name}: {path.name} on {data_file.name}"
    metrics = _report(model, X_scaled, y, plots, title, log)
    return _ordered(metrics, model.epoch, len(X))


def labelled_file(
    model: Model, data_file: Path, log: Log = no_log
) -> tuple[np.ndarray, np.ndarray]:
    """The raw (unscaled) features of a labelled file for ``model``, read as ``predict`` reads
    them, and its targets as the network reads them (``Model.targets``): labels checked against
    the model's classes, target columns against its outputs."""
    X, labels = labelled_samples(model.inputs, data_file, log=log)
    if model.task in ("multiclass", "binary"):
        y = encode_labels(labels, model.classes, str(data_file))
    else:
        if model.task == "multilabel":
            y = label_columns(labels, str(data_file))
        else:
            y = np.asarray(labels, dtype=np.float64).reshape(len(labels), -1)
        if y.shape[1] != model.network.sizes[-1]:
            raise DataError(
                f"{data_file}: has {y.shape[1]} target columns, the model predicts "
                f"{model.network.sizes[-1]}"
            )
    return X, model.targets(y)

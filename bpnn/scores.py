"""The scores practitioners choose a model by, beyond the loss and the accuracy: F1, precision,
recall, balanced accuracy, ROC and PR AUC, log loss, Brier score and the expected calibration
error of a classifier; MAPE and the median absolute error of a regression. scikit-learn's
functions compute them (``tests/test_scores.py`` checks each against them); the metric table
(``bpnn.metrics``) names them, ``bpnn.evaluation.evaluate`` reports them.
"""

from __future__ import annotations

import warnings

import numpy as np

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

"""Training curves, the confusion matrix and predicted-against-true scatter as PNG files
(matplotlib, imported only here and only when a plot is drawn)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bpnn.metrics import headline_metrics
from bpnn.outputs import atomic_file, new_file, own_folder


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(figure: Any, path: Path, option: str | None = None) -> None:
    """Write ``figure`` as a PNG and close it: a new file the user chose with ``option``
    (``--out``), never written over, or, without one, a file of a run or sweep directory,
    replaced atomically (``bpnn.outputs``)."""
    try:
        if option is None:
            with atomic_file(path, binary=True) as handle:
                figure.savefig(handle, format="png")
        else:
            with new_file(path, option, binary=True) as handle:
                figure.savefig(handle, format="png")
    finally:
        _pyplot().close(figure)


def _epoch_axis(axes: Any) -> None:
    """Whole epochs on the x axis (never 2.5)."""
    from matplotlib.ticker import MaxNLocator

    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("epoch")


def _readable_log_axis(axes: Any, values: Sequence[float]) -> None:
    """A log y axis labelled in plain numbers (0.05, 0.1, 0.2, 0.5 rather than 10^-1 alone):
    minor ticks are labelled too when the curve spans less than two decades."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axes.set_yscale("log")
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    axes.yaxis.set_major_formatter(plain)
    low, high = min(values), max(values)
    if high / low < 100:  # within a decade or two: label 2 and 5 (or more) of each decade
        subs = (2.0, 3.0, 4.0, 5.0, 6.0, 8.0) if high / low < 10 else (2.0, 5.0)
        axes.yaxis.set_minor_locator(LogLocator(subs=subs, numticks=12))
        axes.yaxis.set_minor_formatter(plain)
    else:
        axes.yaxis.set_minor_formatter(NullFormatter())


def _mark_best(axes: Any, best_epoch: int | None) -> None:
    if best_epoch is not None:
        axes.axvline(
            best_epoch,
            color="tab:green",
            linestyle="--",
            linewidth=1,
            label=f"best epoch {best_epoch}",
        )


def plot_history(
    history: list[dict[str, Any]], folder: Path, title: str, best_epoch: int | None = None
) -> list[Path]:
    """Write one figure per metric of the epochs in ``history`` (train and validation curves):
    ``loss.png``, ``accuracy.png`` (classification) or ``mae.png``, ``r2.png``, ``rmse.png``
    (regression), and ``lr.png`` (the learning rate per epoch) into ``folder``, each titled
    ``title`` (the config's name) with ``best_epoch`` marked; returns the files written."""
    if not history:
        return []
    plt = _pyplot()
    own_folder(folder)
    epochs = [row["epoch"] for row in history]
    written = []
    for metric in headline_metrics():
        keys = [
            f"{split}_{metric.name}"
            for split in ("train", "val")
            if f"{split}_{metric.name}" in history[0]
        ]
        if not keys:
            continue
        figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
        for key in keys:
            values = [row.get(key) for row in history]
            axes.plot(epochs, values, marker="o", markersize=3, label=key)
        values = [row[k] for row in history for k in keys if row.get(k) is not None]
        if metric.log_scale and values and all(v > 0 for v in values):
            _readable_log_axis(axes, values)
        _mark_best(axes, best_epoch)
        _epoch_axis(axes)
        axes.set_ylabel(metric.label)
        axes.grid(True, which="both", alpha=0.3)
        axes.legend()
        axes.set_title(f"{title}: {metric.label}")
        figure.tight_layout()
        path = folder / f"{metric.name}.png"
        save_figure(figure, path)
        written.append(path)
    rates = [row.get("lr") for row in history]
    if all(isinstance(rate, int | float) for rate in rates):
        figure, axes = plt.subplots(figsize=(6, 2.5), dpi=100)
        axes.plot(epochs, rates, color="tab:purple", drawstyle="steps-mid")
        if min(rates) > 0 and max(rates) / min(rates) > 20:
            _readable_log_axis(axes, rates)
        _mark_best(axes, best_epoch)
        _epoch_axis(axes)
        axes.set_ylabel("learning rate")
        axes.grid(True, which="both", alpha=0.3)
        axes.set_title(f"{title}: learning rate")
        figure.tight_layout()
        path = folder / "lr.png"
        save_figure(figure, path)
        written.append(path)
    return written


def plot_confusion_matrix(
    matrix: Sequence[Sequence[int]],
    classes: Sequence[str],
    path: Path,
    title: str,
    option: str | None = None,
) -> Path:
    """The confusion matrix as a heatmap: a row per true class, a column per predicted class,
    each cell with its count; colours are the share of the row (the recall of that class)."""
    plt = _pyplot()
    counts = np.asarray(matrix)
    totals = counts.sum(axis=1, keepdims=True)
    share = counts / np.where(totals == 0, 1, totals)
    n = len(classes)
    size = min(12.0, max(4.5, 0.55 * n + 2.5))
    figure, axes = plt.subplots(figsize=(size, size * 0.9), dpi=100)
    image = axes.imshow(share, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label="share of the true class")
    axes.set_xticks(
        range(n),
        labels=list(classes),
        rotation=45 if n * max(map(len, classes)) > 40 else 0,
        ha="right" if n * max(map(len, classes)) > 40 else "center",
    )
    axes.set_yticks(range(n), labels=list(classes))
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    for i in range(n):
        for j in range(n):
            axes.text(
                j,
                i,
                str(counts[i, j]),
                ha="center",
                va="center",
                fontsize=9 if n <= 12 else 6,
                color="white" if share[i, j] > 0.5 else "black",
            )
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    axes.set_title(f"{title}\naccuracy {accuracy:.4f} on {counts.sum()} samples", fontsize=10)
    figure.tight_layout()
    save_figure(figure, path, option)
    return path


def _curves_per_class(y: np.ndarray, probabilities: np.ndarray, classes: Sequence[str]) -> list:
    """``(name, is_positive, score)`` of each curve: class 1 alone for two classes, else one
    per class against the rest (a class the split has no sample of is left out)."""
    if probabilities.shape[1] == 2:
        return [(str(classes[1]), y == 1, probabilities[:, 1])]
    return [
        (str(name), y == k, probabilities[:, k])
        for k, name in enumerate(classes)
        if 0 < np.count_nonzero(y == k) < len(y)
    ]


def plot_roc(
    y: np.ndarray,
    probabilities: np.ndarray,
    classes: Sequence[str],
    path: Path,
    title: str,
    option: str | None = None,
) -> Path:
    """ROC curves (scikit-learn's ``roc_curve``): the true positive rate against the false
    positive rate as the threshold falls, with each curve's area; the diagonal is chance."""
    from sklearn.metrics import auc, roc_curve

    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(5.5, 5), dpi=100)
    for name, positive, score in _curves_per_class(y, probabilities, classes):
        fpr, tpr, _ = roc_curve(positive, score)
        axes.plot(fpr, tpr, linewidth=1.5, label=f"{name} (AUC {auc(fpr, tpr):.3f})")
    axes.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="chance")
    labels = ("false positive rate", "true positive rate", "lower right")
    return _save_curves(figure, axes, labels, f"{title}\nROC on {len(y)} samples", path, option)


def _save_curves(
    figure: Any, axes: Any, labels: tuple[str, str, str], title: str, path: Path, option: str | None
) -> Path:
    """The unit square of a ROC or precision-recall figure: ``labels`` are the x and y axis
    labels and where the legend goes."""
    axes.set_xlabel(labels[0])
    axes.set_ylabel(labels[1])
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small", loc=labels[2])
    axes.set_title(title, fontsize=10)
    figure.tight_layout()
    save_figure(figure, path, option)
    return path


def plot_precision_recall(
    y: np.ndarray,
    probabilities: np.ndarray,
    classes: Sequence[str],
    path: Path,
    title: str,
    option: str | None = None,
) -> Path:
    """Precision-recall curves (``precision_recall_curve``) with each one's average precision;
    a dotted line at each class's share, the precision of a model that guesses."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(5.5, 5), dpi=100)
    for name, positive, score in _curves_per_class(y, probabilities, classes):
        precision, recall, _ = precision_recall_curve(positive, score)
        average = average_precision_score(positive, score)
        (line,) = axes.step(recall, precision, where="post", label=f"{name} (AP {average:.3f})")
        axes.axhline(positive.mean(), color=line.get_color(), linestyle=":", linewidth=1)
    heading = f"{title}\nprecision-recall on {len(y)} samples"
    return _save_curves(figure, axes, ("recall", "precision", "lower left"), heading, path, option)


def plot_reliability(
    count: np.ndarray,
    share_right: np.ndarray,
    mean_confidence: np.ndarray,
    path: Path,
    title: str,
    ece: float,
    option: str | None = None,
) -> Path:
    """The reliability diagram of ``bpnn.evaluation.calibration_bins``: in each bin of the
    confidence (the probability of the class predicted), the share of right predictions
    against the mean confidence; a calibrated model lies on the diagonal. Below, how many
    predictions each bin holds."""
    plt = _pyplot()
    bins, filled = len(count), count > 0
    figure, (axes, below) = plt.subplots(
        2, 1, figsize=(5.5, 6), dpi=100, sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    axes.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="calibrated")
    axes.plot(
        mean_confidence[filled], share_right[filled], marker="o", color="tab:blue", label="model"
    )
    axes.set_ylabel("share right")
    axes.set_ylim(0, 1.02)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize="small", loc="upper left")
    axes.set_title(f"{title}\nreliability, ECE {ece:.4f} on {count.sum():g} samples", fontsize=10)
    below.bar(np.arange(bins) / bins, count, width=1 / bins, align="edge", alpha=0.6)
    below.set_xlabel("confidence (probability of the class predicted)")
    below.set_ylabel("samples")
    below.set_xlim(0, 1)
    figure.tight_layout()
    save_figure(figure, path, option)
    return path


def plot_predictions(
    actual: np.ndarray, predicted: np.ndarray, path: Path, title: str, option: str | None = None
) -> Path:
    """Predicted against true values (the first target column), with the line y = x on which
    perfect predictions lie."""
    plt = _pyplot()
    true = np.asarray(actual, dtype=np.float64).reshape(len(actual), -1)[:, 0]
    guess = np.asarray(predicted, dtype=np.float64).reshape(len(predicted), -1)[:, 0]
    figure, axes = plt.subplots(figsize=(5.5, 5), dpi=100)
    axes.scatter(true, guess, s=12, alpha=0.6, color="tab:blue", label="samples")
    low, high = float(min(true.min(), guess.min())), float(max(true.max(), guess.max()))
    axes.plot([low, high], [low, high], color="tab:red", linewidth=1, label="y = x")
    rmse = float(np.sqrt(np.mean((true - guess) ** 2)))
    axes.set_xlabel("true value")
    axes.set_ylabel("predicted value")
    axes.set_aspect("equal", adjustable="datalim")
    axes.grid(True, alpha=0.3)
    axes.legend()
    axes.set_title(f"{title}\nRMSE {rmse:.4g} on {len(true)} samples", fontsize=10)
    figure.tight_layout()
    save_figure(figure, path, option)
    return path


def plot_lr_find(
    lrs: list[float],
    losses: list[float],
    smoothed: list[float],
    suggested_lr: float,
    path: Path,
    title: str,
    option: str | None = None,
) -> Path:
    """The learning-rate range test: loss against rate on a log axis, the smoothed curve over
    the raw one, the suggested rate marked."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6, 4), dpi=100)
    axes.plot(lrs, losses, color="0.7", linewidth=1, label="loss")
    axes.plot(lrs, smoothed, linewidth=2, label="smoothed loss")
    axes.axvline(
        suggested_lr, color="tab:red", linestyle="--", label=f"suggested {suggested_lr:.3g}"
    )
    axes.set_xscale("log")
    axes.set_xlabel("learning rate")
    axes.set_ylabel("training loss")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    axes.set_title(f"{title}: learning-rate range test")
    figure.tight_layout()
    save_figure(figure, path, option)
    return path


def plot_importance(
    columns: Sequence[str],
    means: Sequence[float],
    stds: Sequence[float],
    path: Path,
    title: str,
    score: str,
    option: str | None = None,
) -> Path:
    """Permutation importance as horizontal bars, the most important column on top, with the
    standard deviation over the repeats as error bars: how much ``score`` drops when a column's
    values are shuffled."""
    plt = _pyplot()
    height = 1.2 + 0.3 * len(columns)
    figure, axes = plt.subplots(figsize=(6.5, min(height, 30)), dpi=100)
    rows = np.arange(len(columns))
    axes.barh(rows, means, xerr=stds, color="tab:blue", ecolor="0.3", capsize=3)
    axes.set_yticks(rows, labels=list(columns))
    axes.invert_yaxis()
    axes.axvline(0, color="0.5", linewidth=1)
    axes.set_xlabel(f"drop in {score} when the column is shuffled")
    axes.grid(True, axis="x", alpha=0.3)
    axes.set_title(f"{title}: permutation importance", fontsize=10)
    figure.tight_layout()
    save_figure(figure, path, option)
    return path


def plot_health(history: list[dict[str, Any]], folder: Path, title: str) -> list[Path]:
    """``health.png``: each layer's gradient norm and update ratio against the epoch (log
    scale), from the ``health`` entries of ``history``; nothing when there are none."""
    rows = [row for row in history if isinstance(row.get("health"), dict)]
    if not rows:
        return []
    plt = _pyplot()
    own_folder(folder)
    layers = sorted({key for row in rows for key in row["health"]}, key=int)
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(7.5, 6), dpi=100, sharex=True)
    for key, axes in (("grad_norm", top), ("update_ratio", bottom)):
        for layer in layers:
            points = [
                (row["epoch"], row["health"][layer][key])
                for row in rows
                if layer in row["health"] and (row["health"][layer].get(key) or 0) > 0
            ]
            if points:
                epochs, values = zip(*points, strict=True)
                axes.plot(epochs, values, marker="o", markersize=3, label=f"layer {layer}")
        axes.set_yscale("log")
        axes.grid(True, which="both", alpha=0.3)
        if axes.get_lines():  # nothing to label when every value is 0 or null
            axes.legend(fontsize="small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    top.set_ylabel("gradient norm ||dL/dW||")
    bottom.set_ylabel("update ratio ||dW|| / ||W||")
    bottom.axhline(1e-3, color="0.5", linestyle=":", linewidth=1)
    bottom.set_xlabel("epoch")
    top.set_title(f"{title}: gradient health per layer")
    figure.tight_layout()
    path = folder / "health.png"
    save_figure(figure, path)
    return [path]


def plot_overlay(
    histories: dict[str, list[dict[str, Any]]], out: Path, option: str | None = None
) -> list[Path]:
    """Several runs' curves overlaid, one figure per metric, each curve labelled by its run's
    name: ``out`` (a ``.png``) for the loss, and ``out``'s stem with ``-accuracy``, ``-mae``,
    ... beside it for the others. Solid lines are validation curves, dashed ones training
    curves (one run's colour for both)."""
    plt = _pyplot()
    written = []
    for metric in headline_metrics():
        keys = [f"{split}_{metric.name}" for split in ("train", "val")]
        present = [
            key for key in keys if any(rows and key in rows[0] for rows in histories.values())
        ]
        if not present:
            continue
        figure, axes = plt.subplots(figsize=(7, 4.5), dpi=100)
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for i, (name, rows) in enumerate(histories.items()):
            for key in present:
                if not rows or key not in rows[0]:
                    continue
                axes.plot(
                    [row["epoch"] for row in rows],
                    [row.get(key) for row in rows],
                    color=colors[i % len(colors)],
                    linestyle="-" if key.startswith("val") or len(present) == 1 else "--",
                    label=f"{name} ({key.split('_')[0]})" if len(present) > 1 else name,
                )
        values = [row.get(k) for rows in histories.values() for row in rows for k in present]
        if metric.log_scale and all(v is not None and v > 0 for v in values):
            axes.set_yscale("log")
        axes.set_xlabel("epoch")
        axes.set_ylabel(metric.label)
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize="small")
        title = " vs ".join(histories) if len(histories) <= 3 else f"{len(histories)} runs"
        axes.set_title(f"{title}: {metric.label}")
        figure.tight_layout()
        path = _overlay_path(out, metric.name)
        save_figure(figure, path, option)
        written.append(path)
    return written


def _overlay_path(out: Path, metric: str) -> Path:
    return out if metric == "loss" else out.with_name(f"{out.stem}-{metric}.png")


def overlay_paths(out: Path) -> list[Path]:
    """Every file ``plot_overlay(..., out)`` may write (to refuse overwriting any of them)."""
    return [_overlay_path(out, metric.name) for metric in headline_metrics()]

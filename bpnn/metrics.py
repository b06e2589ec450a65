"""The one definition of every metric a run reports.

A metric has a base name (``loss``, ``accuracy``, ``f1_macro``, ``roc_auc``, ``mae``...), the
tasks it applies to, the splits it is measured on, whether lower or higher is better, and how
it is shown. The names a run writes to ``metrics.jsonl`` and ``summary.json`` are
``{split}_{base}``: ``train_loss``, ``val_accuracy``, ``test_r2``... Config checks
(early-stopping and plateau monitors), the progress lines, the CLI summary and the plots all
read this table, so a metric is added here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass

TASKS = ("multiclass", "binary", "multilabel", "regression")
CLASSIFICATION = ("multiclass", "binary")  # one class per sample (multilabel: a set of labels)
SPLITS = ("train", "val", "test")
#: the splits measured after an epoch on the whole split (the training split's metrics are
#: gathered batch by batch while the weights change)
HELD_OUT = ("val", "test")


@dataclass(frozen=True)
class Metric:
    """One base metric: ``name`` is what follows the split prefix (``val_`` + ``accuracy``)."""

    name: str
    mode: str  # "min" when lower is better, "max" when higher is better
    tasks: tuple[str, ...]
    splits: tuple[str, ...]
    label: str  # axis label of its plot
    short: str  # its name in narrow progress lines
    decimals: int = 4
    log_scale: bool = False  # plotted on a log axis when every value is positive
    #: shown in the progress lines, the end-of-training summary and the ``runs`` table, and
    #: drawn in a run's plots; the others (the scores of ``classification_scores``...) are
    #: logged in ``metrics.jsonl`` and ``summary.json``, printed by ``bpnn eval`` and may be
    #: monitored, swept and sorted by like any other
    headline: bool = True


def _score(
    name: str, mode: str, tasks: tuple[str, ...], label: str, short: str, **kw: bool
) -> Metric:
    """A metric measured on the held-out splits and kept out of the headlines."""
    return Metric(name, mode, tasks, HELD_OUT, label, short, headline=False, **kw)


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("loss", "min", TASKS, SPLITS, "loss", "loss", log_scale=True),
        Metric("accuracy", "max", CLASSIFICATION, SPLITS, "accuracy", "acc"),
        # multi-label: the mean over samples and outputs of (p > 0.5) == t, each output a
        # yes/no of its own (Keras' binary_accuracy; not the share of exactly right label sets)
        Metric("label_accuracy", "max", ("multilabel",), SPLITS, "accuracy per label", "lacc"),
        # the scores practitioners choose a classifier by, on the validation and test splits
        # (bpnn.evaluation.classification_scores: scikit-learn's functions). precision and
        # recall: of the positive class for a binary task, the mean over classes otherwise
        _score("f1_macro", "max", CLASSIFICATION, "F1 (mean over classes)", "f1"),
        _score("f1_weighted", "max", CLASSIFICATION, "F1 (weighted by support)", "f1w"),
        _score("precision", "max", CLASSIFICATION, "precision", "prec"),
        _score("recall", "max", CLASSIFICATION, "recall", "rec"),
        _score("balanced_accuracy", "max", CLASSIFICATION, "balanced accuracy", "bacc"),
        _score("roc_auc", "max", CLASSIFICATION, "ROC AUC", "auc"),
        _score("pr_auc", "max", CLASSIFICATION, "PR AUC (average precision)", "ap"),
        _score("log_loss", "min", CLASSIFICATION, "log loss", "nll", log_scale=True),
        _score("brier", "min", CLASSIFICATION, "Brier score", "brier"),
        _score("ece", "min", CLASSIFICATION, "expected calibration error", "ece"),
        Metric("mae", "min", ("regression",), HELD_OUT, "mean absolute error", "mae"),
        Metric("r2", "max", ("regression",), HELD_OUT, "R²", "r2"),
        Metric("rmse", "min", ("regression",), HELD_OUT, "root mean squared error", "rmse"),
        _score("mape", "min", ("regression",), "mean absolute percentage error", "mape"),
        _score("median_ae", "min", ("regression",), "median absolute error", "medae"),
    )
}

#: values every epoch's logs carry besides the metrics
EPOCH_FIELDS = ("epoch", "lr", "epoch_seconds")


def headline_metrics() -> list[Metric]:
    """The metrics drawn in a run's plots and shown in its progress lines, in table order."""
    return [m for m in METRICS.values() if m.headline]


def is_headline(name: str) -> bool:
    """Whether the metric ``name`` (``val_f1_macro``) is a headline one; True for any name
    that is no metric (early stopping's checks name those)."""
    found = split_and_base(name)
    return found is None or found[1].headline


def split_and_base(name: str) -> tuple[str, Metric] | None:
    """``"val_accuracy"`` -> ``("val", METRICS["accuracy"])``; None for any other name."""
    split, _, base = name.partition("_")
    metric = METRICS.get(base)
    if split in SPLITS and metric is not None and split in metric.splits:
        return split, metric
    return None


def metric_names(
    task: str | None = None, splits: tuple[str, ...] = SPLITS, headline: bool = False
) -> list[str]:
    """Every metric name a run of ``task`` (any task: None) reports on ``splits``, in table
    order (``headline``: only the metrics shown in progress lines and summaries)."""
    return [
        f"{split}_{m.name}"
        for split in splits
        for m in METRICS.values()
        if (task is None or task in m.tasks) and split in m.splits and (m.headline or not headline)
    ]


def accuracy_name(task: str) -> str | None:
    """The base name of ``task``'s accuracy (``accuracy``, ``label_accuracy``; None for a
    regression): what the trainer and ``evaluate`` report it as."""
    names = (m.name for m in METRICS.values() if "accuracy" in m.name and task in m.tasks)
    return next(names, None)


def epoch_metric_names(task: str, has_validation: bool) -> list[str]:
    """The metrics each epoch's logs hold (what early stopping and schedules may monitor)."""
    return metric_names(task, ("train", "val") if has_validation else ("train",))


def mode_of(name: str, mode: str = "auto") -> str:
    """``min`` or ``max``: how ``name`` improves (``auto``), or ``mode`` when it is given."""
    if mode != "auto":
        return mode
    found = split_and_base(name)
    return found[1].mode if found else "min"


def is_improvement(value: float, best: float | None, mode: str, min_delta: float = 0.0) -> bool:
    """Whether ``value`` beats ``best`` by more than ``min_delta`` in direction ``mode``."""
    if best is None:
        return True
    return value < best - min_delta if mode == "min" else value > best + min_delta


def format_value(name: str, value: float, fewer_decimals: int = 0) -> str:
    """A metric's value as progress lines and summaries show it (``fewer_decimals`` than its
    own, down to 2, where a narrow terminal needs the room)."""
    found = split_and_base(name)
    decimals = found[1].decimals if found else 4
    return f"{value:.{max(2, decimals - fewer_decimals)}f}"


def short_name(name: str) -> str:
    """A metric's name in narrow progress lines: the training split goes without its prefix
    (``train_loss`` -> ``loss``, ``train_accuracy`` -> ``acc``, ``val_accuracy`` -> ``val_acc``)."""
    found = split_and_base(name)
    if found is None:
        return name
    split, metric = found
    return metric.short if split == "train" else f"{split}_{metric.short}"

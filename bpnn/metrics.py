"""The one definition of every metric a run reports.

A metric has a base name (``loss``, ``accuracy``, ``label_accuracy``, ``mae``, ``r2``), the
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


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("loss", "min", TASKS, SPLITS, "loss", "loss", log_scale=True),
        Metric("accuracy", "max", CLASSIFICATION, SPLITS, "accuracy", "acc"),
        # multi-label: the mean over samples and outputs of (p > 0.5) == t, each output a
        # yes/no of its own (Keras' binary_accuracy; not the share of exactly right label sets)
        Metric("label_accuracy", "max", ("multilabel",), SPLITS, "accuracy per label", "lacc"),
        Metric("mae", "min", ("regression",), ("val", "test"), "mean absolute error", "mae"),
        Metric("r2", "max", ("regression",), ("val", "test"), "R²", "r2"),
        Metric("rmse", "min", ("regression",), ("val", "test"), "root mean squared error", "rmse"),
    )
}

#: values every epoch's logs carry besides the metrics
EPOCH_FIELDS = ("epoch", "lr", "epoch_seconds")


def split_and_base(name: str) -> tuple[str, Metric] | None:
    """``"val_accuracy"`` -> ``("val", METRICS["accuracy"])``; None for any other name."""
    split, _, base = name.partition("_")
    metric = METRICS.get(base)
    if split in SPLITS and metric is not None and split in metric.splits:
        return split, metric
    return None


def metric_names(task: str | None = None, splits: tuple[str, ...] = SPLITS) -> list[str]:
    """Every metric name a run of ``task`` (any task: None) reports on ``splits``, in table
    order."""
    return [
        f"{split}_{m.name}"
        for split in splits
        for m in METRICS.values()
        if (task is None or task in m.tasks) and split in m.splits
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

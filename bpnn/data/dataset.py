"""From a config's ``data`` section to scaled train / validation / test arrays.

``load_dataset(config.data, task=..., seed=...)`` is the one entry point for training::

    raw samples  --(split: test, then validation; stratified for classes)-->  train / val / test
    train split  --(fit)-->  input Scaling (and a target Scaling for regression)
    every split  --(apply)-->  float32 arrays the network reads

Every randomness comes from ``np.random.default_rng(seed)``: the same config and seed give the
same arrays, bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from bpnn.data.sources import SOURCES, Log, Raw, listing
from bpnn.data.splits import (
    check_features,
    class_labels,
    class_list,
    encode_labels,
    label_columns,
    regression_targets,
    split,
)
from bpnn.data.table import TableEncoding
from bpnn.data.table_columns import first_missing, missing_error
from bpnn.errors import DataError
from bpnn.metrics import TASKS
from bpnn.scaling import Scaling

if TYPE_CHECKING:
    from bpnn.data.options import DataConfig


def _no_log(message: str) -> None:
    """The default ``log``: say nothing."""


@dataclass(frozen=True, eq=False)
class Dataset:
    """The three splits, ready for the network, and what is needed to read new data the same way.

    ``X_*``: scaled features, shape (n, features). ``y_*``: int64 class indices, shape (n,), for
    ``multiclass`` and ``binary``; 0/1 floats, shape (n, labels), for ``multilabel`` (``classes``:
    the label names, one per column); scaled float targets, shape (n, targets), for
    ``regression``.
    """

    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    task: str
    classes: np.ndarray | None  # original labels; classes[i] is class index i; None for regression
    feature_names: list[str]
    input_scaling: Scaling  # fitted on the training split only
    target_scaling: Scaling | None  # regression targets with scale_target, else None
    source: str  # for messages: "digits", or the path of the data file
    # the table's label column, or its 0/1 label columns (multi-label); None for other sources
    target_name: str | list[str] | None = None
    encoding: TableEncoding | None = None  # a table's columns -> features (table sources)
    #: a weight per sample of each split (a table's ``data.weight`` column), else None: the
    #: loss and the metrics weigh each sample by it
    w_train: np.ndarray | None = None
    w_val: np.ndarray | None = None
    w_test: np.ndarray | None = None

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_classes(self) -> int | None:
        return None if self.classes is None else len(self.classes)

    @property
    def n_targets(self) -> int:
        """Regression targets per sample (1 for classification)."""
        return int(self.y_train.shape[1]) if self.y_train.ndim == 2 else 1

    @property
    def n_samples(self) -> tuple[int, int, int]:
        return len(self.X_train), len(self.X_val), len(self.X_test)


def load_dataset(
    config: DataConfig,
    *,
    task: str,
    seed: int,
    dtype: Any = np.float32,
    log: Log | None = None,
) -> Dataset:
    """Load ``config.source``, split it, fit the scalings on the training split, apply them.

    ``task`` follows from the loss: ``multiclass`` (cross_entropy), ``binary``
    (binary_cross_entropy) or ``regression`` (mse, mae, huber). ``log`` receives the messages
    meant for the user (downloads); nothing is printed.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    log = log or _no_log
    rng = np.random.default_rng(seed)
    generator_seed, test_seed, val_seed = (int(s) for s in rng.integers(0, 2**31 - 1, size=3))

    source = SOURCES[config.source]
    raw = source.load(config, seed=generator_seed, log=log)
    if raw.table is None:  # a table's columns are checked as they are encoded
        check_features(raw.X, raw.feature_names, raw.name, dtype)
        if raw.X_test is not None:
            check_features(raw.X_test, raw.feature_names, raw.test_name or raw.name, dtype)

    # targets: class indices (and the class list), 0/1 columns (multilabel), or float columns
    if task in ("regression", "multilabel"):
        targets = regression_targets if task == "regression" else label_columns
        classes = None if task == "regression" else label_names(raw, config.classes)
        y = targets(raw.y, raw.name)
        y_test = None if raw.y_test is None else targets(raw.y_test, raw.test_name or raw.name)
        strata = None
    else:
        labels = class_labels(raw.y, raw.name, raw.continuous)
        observed = np.unique(labels)
        if len(observed) < source.min_classes:
            raise DataError(
                f"data '{raw.name}' has a single class ({listing(observed)}); nothing to learn"
            )
        hint = "; name both in data.classes" if "classes" in source.keys else ""
        classes = class_list(observed, config.classes, task, raw.name, hint)
        y = encode_labels(labels, classes, raw.name)
        y_test = None
        if raw.y_test is not None:
            test_labels = class_labels(raw.y_test, raw.test_name or raw.name, raw.continuous)
            y_test = encode_labels(test_labels, classes, raw.test_name or raw.name)
        strata = y
    if raw.target_name is not None:
        log(_target_line(raw, y, classes))
    if raw.plan is not None and raw.plan.missing == "error":
        missing_error(raw.name, raw.plan.missing_counts, first_missing(raw.table, raw.where))

    # splits: the explicit test set as given, else test_fraction; then val_fraction of the rest
    everything = np.arange(len(y))
    test = everything[:0]
    explicit_test = raw.X_test is not None or raw.table_test is not None
    if not explicit_test:
        trainval, test = split(
            everything, strata, classes, config.test_fraction, test_seed, raw.name, "test"
        )
    else:
        trainval = everything
    train, val = split(
        trainval,
        None if strata is None else strata[trainval],
        classes,
        config.val_fraction,
        val_seed,
        raw.name,
        "validation",
    )
    encoding = None
    if raw.table is not None:  # a table: fit its encoding on the training split, apply it
        encoding, (X_train, X_val, X_test) = _encode(raw, train, val, test, log)
    else:
        X_test = raw.X_test if explicit_test else raw.X[test]
        X_train, X_val = raw.X[train], raw.X[val]
    if not explicit_test:
        y_test = y[test]

    method = config.scale or source.default_scale
    input_scaling = Scaling.fit(X_train, method)
    target_scaling = None
    y_train, y_val = y[train], y[val]
    if task == "multilabel":
        y_train, y_val, y_test = (np.asarray(t, dtype=dtype) for t in (y_train, y_val, y_test))
    if task == "regression":
        with np.errstate(over="ignore", invalid="ignore"):  # checked below
            if config.scale_target is not False:
                target_scaling = Scaling.fit(y_train, "standard")
                y_train, y_val, y_test = (
                    target_scaling.apply(t, dtype) for t in (y_train, y_val, y_test)
                )
            else:
                y_train, y_val, y_test = (
                    np.asarray(t, dtype=dtype) for t in (y_train, y_val, y_test)
                )

    if not (
        np.all(np.isfinite(input_scaling.offset)) and np.all(np.isfinite(input_scaling.factor))
    ):
        bad = ~(np.isfinite(input_scaling.offset) & np.isfinite(input_scaling.factor))
        columns = [raw.feature_names[j] for j in np.flatnonzero(bad)]
        raise DataError(
            f"{raw.name}: the {method} scaling of column(s) {listing(columns)} is not finite "
            "(values too large to square); rescale them"
        )
    w_train = w_val = w_test = None
    if raw.weights is not None:
        w_train, w_val = raw.weights[train], raw.weights[val]
        w_test = raw.weights_test if explicit_test else raw.weights[test]
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = [input_scaling.apply(part, dtype) for part in (X_train, X_val, X_test)]
    for what, parts in (("feature", scaled), ("target", (y_train, y_val, y_test))):
        if any(p.dtype.kind == "f" and not np.isfinite(p).all() for p in parts):
            raise DataError(
                f"{raw.name}: {what} values beyond the {np.dtype(dtype).name} range once scaled; "
                "rescale them or set train.dtype: float64"
            )
    return Dataset(
        X_train=scaled[0],
        y_train=y_train,
        X_val=scaled[1],
        y_val=y_val,
        X_test=scaled[2],
        y_test=y_test,
        task=task,
        classes=classes,
        feature_names=list(raw.feature_names if encoding is None else encoding.feature_names),
        input_scaling=input_scaling,
        target_scaling=target_scaling,
        source=raw.name,
        target_name=raw.target_name,
        encoding=encoding,
        w_train=w_train,
        w_val=w_val,
        w_test=w_test,
    )


def _encode(
    raw: Raw, train: np.ndarray, val: np.ndarray, test: np.ndarray, log: Log
) -> tuple[TableEncoding, list[np.ndarray]]:
    """Fit a table's encoding on its training rows; the encoded features of the training,
    validation and test rows (the explicit test table's, when there is one), each written
    straight from the table. Says what it did with each column through ``log``."""
    plan = raw.plan
    encoding = TableEncoding.fit(
        raw.table,
        plan.kinds,
        rows=train,
        missing=plan.missing,
        impute=plan.impute,
        unknown_category=plan.unknown_category,
        missing_counts=plan.missing_counts,
        source=raw.name,
    )
    for line in encoding.describe():
        log(line)
    parts = [train, val] if raw.table_test is not None else [train, val, test]
    splits = encoding.transform_parts(raw.table, parts, raw.name, where=raw.where)
    if raw.table_test is not None:
        test_name = raw.test_name or raw.name
        X_test, _ = encoding.transform(raw.table_test, test_name, where=raw.test_where)
        splits.append(X_test)
    names = [raw.name, raw.name, raw.test_name or raw.name]
    for i, (X, name) in enumerate(zip(splits, names, strict=True)):
        if i == 0 or len(X):  # an empty split is one of fraction 0: no such split, no samples
            check_features(X, encoding.feature_names, name)
    raw.table = raw.table_test = None  # the raw cells are no longer needed
    return encoding, splits


def label_names(raw: Raw, declared: list[Any] | None) -> np.ndarray:
    """The names of a multi-label data set's columns: ``data.classes`` when given, else the
    table's target columns, else ``0 .. k-1``."""
    if declared is not None:
        return np.asarray(declared)
    if isinstance(raw.target_name, list):
        return np.asarray(raw.target_name)
    width = int(np.asarray(raw.y).reshape(len(raw.y), -1).shape[1])
    return np.arange(width)


def _target_line(raw: Raw, y: np.ndarray, classes: np.ndarray | None) -> str:
    """The target column, and its classes or value range; says so when it is the default."""
    how = " (the last column; set data.target to choose another)" if raw.target_defaulted else ""
    if isinstance(raw.target_name, list):  # 0/1 columns: how often each label applies
        counts = ", ".join(
            f"{name} {int(n)}" for name, n in zip(raw.target_name, y.sum(axis=0), strict=True)
        )
        return (
            f"targets: {len(raw.target_name)} label columns (0/1, multi-label) in "
            f"{len(y)} rows, 1s per label: {counts}"
        )
    if classes is not None:
        return f"target: '{raw.target_name}'{how}: {len(classes)} classes: {listing(classes)}"
    return (
        f"target: '{raw.target_name}'{how}: values from {float(np.min(y)):.6g} "
        f"to {float(np.max(y)):.6g}"
    )

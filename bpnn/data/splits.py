"""Splits, labels and feature checks: from a source's raw samples to the arrays of each split.

Labels become class indices ``0 .. K-1`` in the order of ``np.unique`` or of ``data.classes``
(``Dataset.classes`` maps them back); several 0/1 target columns stay columns (multi-label);
splits are seeded and stratified for classes.
"""

from __future__ import annotations

import numpy as np

from bpnn.data.sources import is_number, listing, one_line, quoted, scalar
from bpnn.errors import DataError


def split(
    indices: np.ndarray,
    strata: np.ndarray | None,
    classes: np.ndarray | None,
    fraction: float,
    seed: int,
    name: str,
    part: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Split ``indices`` into (kept, taken), ``fraction`` of them taken, stratified by ``strata``
    (class indices into ``classes``) when given."""
    if fraction == 0:
        return indices, indices[:0]
    if strata is not None and classes is not None:
        counts = np.bincount(strata, minlength=len(classes))
        if counts.min() < 2:
            label = scalar(classes[counts.argmin()])
            raise DataError(
                f"data '{name}': class {quoted(label)} has only {counts.min()} sample(s) for the "
                f"stratified {part} split; each class needs at least 2"
            )
    try:
        from sklearn.model_selection import train_test_split  # start-up: loaded on use

        kept, taken = train_test_split(
            indices, test_size=fraction, stratify=strata, random_state=seed
        )
    except ValueError as error:
        kind = "stratified " if strata is not None else ""
        raise DataError(
            f"data '{name}': too few samples for the {kind}{part} split: {one_line(error)}"
        ) from None
    return kept, taken


def flat_rows(X: np.ndarray) -> np.ndarray:
    """``X`` as (samples, features): every axis after the first flattened (images -> pixels);
    also for zero samples, where ``reshape(0, -1)`` is undefined."""
    return X.reshape(len(X), int(np.prod(X.shape[1:], dtype=np.int64)))


def check_width(X: np.ndarray, n_features: int, name: str) -> np.ndarray:
    """``X`` when it has ``n_features`` columns (the training data's), else a ``DataError``."""
    if X.shape[1] != n_features:
        raise DataError(
            f"{name}: {X.shape[1]} features per sample, but the training data has {n_features}"
        )
    return X


def check_features(X: np.ndarray, names: list[str], name: str, dtype: object = None) -> None:
    """Features must be numbers, at least one row and one column, finite, and (``dtype``, the
    training dtype) within its range: 1e300 is finite in float64 but infinite in float32."""
    if X.dtype.kind not in "biuf":
        raise DataError(f"{name}: features must be numbers, got dtype {X.dtype}")
    if len(X) == 0:
        raise DataError(f"{name}: no samples (0 rows)")
    if X.ndim != 2 or X.shape[1] == 0:
        raise DataError(f"{name}: no feature columns (shape {X.shape})")
    if X.dtype.kind == "f":
        bad = ~np.isfinite(X)
        if bad.any():
            columns = [names[j] for j in np.flatnonzero(bad.any(axis=0))]
            raise DataError(
                f"{name}: {int(bad.sum())} NaN/inf feature value(s), in column(s) "
                f"{listing(columns)}"
            )
        if dtype is not None and np.dtype(dtype).itemsize < X.dtype.itemsize:
            limit = float(np.finfo(np.dtype(dtype)).max)
            huge = np.abs(X) > limit
            if huge.any():
                columns = [names[j] for j in np.flatnonzero(huge.any(axis=0))]
                raise DataError(
                    f"{name}: {int(huge.sum())} value(s) beyond the {np.dtype(dtype).name} range "
                    f"(|x| > {limit:.3g}) in column(s) {listing(columns)}; rescale them or set "
                    "train.dtype: float64"
                )


def class_labels(y: np.ndarray, name: str, continuous: bool) -> np.ndarray:
    """Labels as a 1-D array of ints or strings (never floats or objects), or a DataError."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(f"{name}: class labels must be one column, got shape {y.shape}")
    if y.dtype.kind == "S":
        y = y.astype(str)
    if y.dtype.kind == "f" and not continuous:
        continuous = not (np.all(np.isfinite(y)) and np.array_equal(y, np.round(y)))
    if continuous:
        raise DataError(f"loss needs class labels, but data '{name}' has continuous targets")
    if y.dtype.kind in "biuf":
        return y.astype(np.int64)
    if y.dtype.kind != "U":
        raise DataError(f"{name}: labels must be numbers or strings, got dtype {y.dtype}")
    return y


def class_list(
    observed: np.ndarray, declared: list | None, task: str, name: str, hint: str = ""
) -> np.ndarray:
    """The classes of a classification: ``declared`` (``data.classes``: the order, and classes
    no row shows) or the ``observed`` labels; a binary loss on labels that are all 0 or all 1
    has the classes 0 and 1. A binary loss needs exactly 2 (a ``DataError`` ending in
    ``hint``)."""
    if declared is not None:
        classes = np.asarray(declared)
    elif (
        task == "binary"
        and len(observed) == 1
        and observed.dtype.kind in "iu"
        and int(observed[0]) in (0, 1)
    ):
        classes = np.array([0, 1], dtype=observed.dtype)
    else:
        classes = observed
    if task == "binary" and len(classes) != 2:
        raise DataError(
            f"binary_cross_entropy needs exactly 2 classes, but data '{name}' has "
            f"{len(classes)}: {listing(classes)}{hint}"
        )
    return classes


def label_columns(y: np.ndarray, name: str) -> np.ndarray:
    """Several yes/no labels per sample (multi-label targets) as int64 0/1 columns, shape
    (n, labels), or a ``DataError`` naming the first value that is not 0 or 1."""
    y = np.asarray(y)
    if y.dtype.kind == "b":
        y = y.astype(np.int64)
    if y.dtype.kind not in "iuf":
        example = y.ravel()[0] if y.size else ""
        raise DataError(
            f"binary_cross_entropy on several target columns needs 0/1 values, but data "
            f"'{name}' has labels like {quoted(str(example))}"
        )
    y = y.reshape(len(y), -1)
    bad = ~((y == 0) | (y == 1))
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        raise DataError(
            f"binary_cross_entropy on several target columns needs 0/1 values, but data "
            f"'{name}' has {quoted(y[row, column])} in row {row}, column {column}"
        )
    return y.astype(np.int64)


def regression_targets(y: np.ndarray, name: str) -> np.ndarray:
    """Targets as float64 columns, shape (n, targets)."""
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        example = y.ravel()[0] if y.size else ""
        raise DataError(
            f"regression loss needs numeric targets, but data '{name}' has labels like "
            f"{quoted(str(example))}"
        )
    y = y.astype(np.float64).reshape(len(y), -1)
    if not np.all(np.isfinite(y)):
        raise DataError(f"{name}: {int((~np.isfinite(y)).sum())} NaN/inf target value(s)")
    return y


def encode_labels(labels: np.ndarray, classes: np.ndarray, source: str) -> np.ndarray:
    """Original labels -> int64 class indices (``classes[index] == label``).

    Labels read as text ("3") are compared as numbers when the classes are numbers, and numbers
    as text when the classes are strings. A label that is not a class is a ``DataError``.
    """
    labels = np.asarray(labels)
    classes = np.asarray(classes)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.dtype.kind == "S":
        labels = labels.astype(str)
    if classes.dtype.kind in "biuf" and labels.dtype.kind == "U":
        try:
            labels = labels.astype(np.float64)
        except ValueError:
            first = next(v for v in labels if not is_number(v))
            raise DataError(
                f"{source}: label {quoted(first)} is not one of the classes ({listing(classes)})"
            ) from None
    elif classes.dtype.kind == "U" and labels.dtype.kind != "U":
        labels = labels.astype(str)
    if len(classes) == 0:
        raise DataError(f"{source}: no classes to encode labels with")
    order = np.argsort(classes, kind="stable")
    sorted_classes = classes[order]
    position = np.clip(np.searchsorted(sorted_classes, labels), 0, len(classes) - 1)
    known = sorted_classes[position] == labels
    if not np.all(known):
        unknown = labels[~known]
        raise DataError(
            f"{source}: label {quoted(unknown[0])} is not one of the classes "
            f"({listing(classes)})"
            + (f"; {len(unknown)} labels are unknown" if len(unknown) > 1 else "")
        )
    return order[position].astype(np.int64)

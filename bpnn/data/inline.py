"""``inline``: the samples written in the config itself, ``data.X`` (rows) and ``data.y``.

Made for worked examples: a whole hand calculation fits in one config file. Its defaults keep
the numbers as written: no test or validation split (``test_fraction`` and ``val_fraction`` 0),
no input scaling (``scale: none``), targets unscaled, a single row or a single class allowed.
``y`` holds class labels (numbers or strings), one value per row, or a row of values per row
for a regression with several outputs or, with ``binary_cross_entropy``, a row of 0/1 values
per row (several yes/no labels: a ``multilabel`` run).

``classes`` lists the classes when the rows do not show them all (one row is a worked example's
normal size): the class order, and what a binary loss's 0 and 1 stand for. Without it a binary
loss on labels that are all 0 or all 1 has the classes 0 and 1. For several 0/1 columns it
names the labels, one per column.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from bpnn.data.sources import (
    ALL_TASKS,
    Log,
    Raw,
    Source,
    generic_names,
    register,
)
from bpnn.errors import DataError

if TYPE_CHECKING:
    from bpnn.data.options import DataConfig


def short_list(values: list[Any], limit: int = 60) -> str:
    """``values`` as text, cut to ``limit`` characters."""
    text = str(values)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class InlineSource(Source):
    """The rows of ``data.X`` with the targets of ``data.y``."""

    name = "inline"
    fields: ClassVar[dict[str, tuple[Any, Any]]] = {
        "X": (list[list[float]] | None, None),
        "y": (list[Any] | None, None),
        "classes": (list[int | str] | None, None),  # the classes and their order
    }
    tasks = (*ALL_TASKS, "multilabel")  # rows of 0/1 with binary_cross_entropy
    required = ("X", "y")
    default_scale = "none"
    defaults: ClassVar[dict[str, Any]] = {"test_fraction": 0.0, "val_fraction": 0.0}
    scale_targets = False
    min_classes = 1

    def check(self, config: DataConfig) -> None:
        X, y = config.X or [], config.y or []
        if not X:
            raise ValueError("data.X: needs at least one row")
        widths = {len(row) for row in X}
        if len(widths) > 1 or 0 in widths:
            raise ValueError(
                f"data.X: every row needs the same number of values (at least one), got "
                f"{sorted(widths)}"
            )
        if len(y) != len(X):
            raise ValueError(f"data.y: has {len(y)} entries for {len(X)} rows of data.X")
        rows = [isinstance(v, list) for v in y]
        if any(rows) and not all(rows):
            raise ValueError("data.y: either one value per row or a list of values per row")
        if all(rows) and len({len(v) for v in y}) > 1:
            raise ValueError("data.y: every row of values needs the same length")
        classes = config.classes
        if classes is not None:
            kinds = {type(c) for c in classes}
            if not classes or not (kinds <= {int} or kinds == {str}):
                raise ValueError(
                    "data.classes: must be a list of whole numbers or of strings, "
                    f"got {short_list(classes)}"
                )
            if len(set(classes)) != len(classes):
                raise ValueError(f"data.classes: lists a class twice: {short_list(classes)}")

    def target_columns(self, config: DataConfig) -> int:
        """The length of ``data.y``'s rows when they are lists, else 1."""
        y = config.y or []
        return len(y[0]) if y and isinstance(y[0], list) else 1

    def load(self, config: DataConfig, *, seed: int, log: Log) -> Raw:
        X = np.asarray(config.X, dtype=np.float64)
        try:
            y = np.asarray(config.y)
        except ValueError as error:
            raise DataError(f"data.y: {error}") from None
        if y.dtype.kind == "O":
            raise DataError("data.y: values must be numbers, or labels of one kind")
        return Raw(X, y, generic_names(X.shape[1]), "inline")


register(InlineSource())
